"""Prefect-style flow files that use blocks and variables (issue #14), run as a pod runs
them: ``headwater execute --entrypoint <file>:<flow>`` in a fresh process.

The flows are in ``flows_blocks/``: a custom credentials block with a ``SecretStr``
nested in a read/write block over a SQLite "warehouse" (the seed tutorial's
``SnowflakeConnector``/``SnowflakePandas`` pattern), registered by one flow and used by
an ingestion flow and a reporting flow; and an async flow. They run once against the
local store, then as in a flow-run pod, from the blocks the operator would mount. The
warehouse password must appear nowhere but the store's 0600 secrets file and the mount.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from headwater.blocks.stores.local import LocalBlockStore
from isolated_home import headwater_home

__all__ = ["headwater_home"]  # the autouse fixture: each test its own HEADWATER_HOME

FLOWS = Path(__file__).parent / "flows_blocks"
PASSWORD = "wh-pass-7f3a9c21"
API_TOKEN = "tok-2b8e6d40f1"


@dataclass
class Run:
    summary: dict[str, Any]
    output: str


def execute(entrypoint: str, env: dict[str, str], tmp_path: Path, *params: str) -> Run:
    summary_path = tmp_path / f"summary-{len(list(tmp_path.glob('summary-*')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "headwater", "execute", "--entrypoint",
         f"{FLOWS / entrypoint}", "--summary-path", str(summary_path),
         *[arg for param in params for arg in ("--param", param)]],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    summary = json.loads(summary_path.read_text())
    assert summary["state"] == "Completed", (summary, proc.stdout, proc.stderr)
    return Run(summary, proc.stdout + proc.stderr)


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(home)
    return env


def everything_written(root: Path) -> str:
    """Every file under ``root`` except the local store's secrets files."""
    return "".join(p.read_text(errors="replace") for p in root.rglob("*")
                   if p.is_file() and not p.name.endswith(".secrets.json")
                   and p.suffix != ".db")


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    sys.path.insert(0, str(FLOWS))
    try:
        from warehouse_blocks import create_warehouse  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(FLOWS))
    path = tmp_path / "warehouse.db"
    create_warehouse(str(path), "etl", PASSWORD)
    return path


def test_two_flows_share_a_nested_credentials_block(tmp_path: Path, headwater_home: Path,
                                                   warehouse: Path) -> None:
    env = base_env(headwater_home)
    env["HEADWATER_SECRET_WAREHOUSE_PASSWORD"] = PASSWORD
    runs = [execute("register_blocks.py:register_blocks", env, tmp_path,
                    f"database={warehouse}")]
    del env["HEADWATER_SECRET_WAREHOUSE_PASSWORD"]  # from here on, only the block has it
    runs.append(execute("ingest_orders.py:ingest_orders", env, tmp_path, "count=6"))
    runs.append(execute("orders_report.py:orders_report", env, tmp_path))

    assert "registered the warehouse for etl (password ********)" in runs[0].output
    assert "wrote 6 orders" in runs[1].output
    with sqlite3.connect(warehouse) as connection:
        assert connection.execute("select count(*), sum(amount) from raw_orders").fetchone() \
            == (6, 525)
    report = json.loads((headwater_home / "blocks" / "last-orders-report.json").read_text())
    assert report["data"]["value"] == {"orders": 6, "revenue": 525, "threshold": 100,
                                       "big_orders": [4, 5, 6]}

    for run in runs:
        assert PASSWORD not in run.output
        assert PASSWORD not in json.dumps(run.summary)
    assert PASSWORD not in everything_written(headwater_home)  # records, logs, documents
    secrets_file = headwater_home / "blocks" / "warehouse-creds.secrets.json"
    assert json.loads(secrets_file.read_text()) == {"password": PASSWORD}


def test_the_report_flow_runs_in_a_pod_from_mounted_blocks(
        tmp_path: Path, headwater_home: Path, warehouse: Path) -> None:
    env = base_env(headwater_home)
    env["HEADWATER_SECRET_WAREHOUSE_PASSWORD"] = PASSWORD
    execute("register_blocks.py:register_blocks", env, tmp_path, f"database={warehouse}")
    del env["HEADWATER_SECRET_WAREHOUSE_PASSWORD"]
    execute("ingest_orders.py:ingest_orders", env, tmp_path, "count=4")

    # What the operator gives a pod of a Deployment with spec.blocks: [warehouse] and
    # spec.variables: [big_order_threshold]: the documents (nested one included), the
    # secret fields as files, the variables; and no access to the laptop's store.
    store = LocalBlockStore(headwater_home / "blocks")
    mount = tmp_path / "mount"
    documents = {}
    for name in ("warehouse", "warehouse-creds"):
        doc = store.read(name)
        documents[name] = doc.to_json()
        for field in doc.secrets:
            (mount / name).mkdir(parents=True, exist_ok=True)
            (mount / name / field).write_text(store.read_secret(name, field))
    pod_home = tmp_path / "pod-home"
    pod_env = base_env(pod_home)
    pod_env.update(HEADWATER_BLOCKS=json.dumps(documents), HEADWATER_BLOCKS_DIR=str(mount),
                   HEADWATER_VARIABLES=json.dumps({"big_order_threshold": 75}))

    run = execute("orders_report.py:orders_report", pod_env, tmp_path)
    assert "'threshold': 75, 'big_orders': [3, 4]" in run.output
    assert "ends with this pod" in run.output  # the report block went to the pod's disk
    assert PASSWORD not in run.output
    assert PASSWORD not in pod_env["HEADWATER_BLOCKS"]
    assert PASSWORD not in everything_written(pod_home)


def test_an_async_flow_awaits_blocks_and_variables(tmp_path: Path,
                                                   headwater_home: Path) -> None:
    env = base_env(headwater_home)
    setup = (
        "from headwater.blocks.system import JSON, Secret\n"
        f"Secret(value={API_TOKEN!r}).save('api-token')\n"
        "JSON(value={'mode': 'incremental'}).save('pipeline-settings')\n")
    subprocess.run([sys.executable, "-c", setup], env=env, check=True, timeout=60)

    first = execute("async_settings.py:async_settings", env, tmp_path)
    second = execute("async_settings.py:async_settings", env, tmp_path)
    assert "calling the API with token ******** in mode incremental" in first.output
    variable = json.loads((headwater_home / "variables" / "runs_seen.json").read_text())
    assert variable == {"name": "runs_seen", "value": 2}
    for run in (first, second):
        assert API_TOKEN not in run.output
    assert API_TOKEN not in everything_written(headwater_home)
