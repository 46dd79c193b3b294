"""A flow file written for Prefect's ``deploy()``/``serve()`` becomes a Headwater install
with one command: ``headwater deploy file.py:flow ...`` writes valid Flow, Deployment and
Schedule manifests, and ``flow.deploy()`` in the file's ``__main__`` block writes the same.

The manifests are checked with the operator's offline validation (CRD schema, CEL rules,
models: what the API server and the operator would refuse); tests/api/test_deploy.py
applies them to the emulator and runs them in the sandbox.
"""

from __future__ import annotations

import io
import json
import runpy
import shutil
from contextlib import redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater.cli import build_parser
from headwater.cli import main as headwater_main
from headwater_operator.api.validation import validate_manifest
from headwater_operator.cli.common import Io

FLOWS = Path(__file__).parent / "flows"


def deploy(*argv: str) -> tuple[int, str, str]:
    """``headwater deploy <argv>``: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["deploy", *argv])
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    return args.func(args), out.getvalue(), err.getvalue()


def read_dir(directory: Path) -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
            for path in sorted(directory.iterdir())}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory holding the Prefect-style flow files, as the working directory
    (the image's working directory mirrors it: entrypoints are relative to it)."""
    shutil.copytree(FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_one_command_turns_a_prefect_deploy_file_into_valid_manifests(project: Path) -> None:
    code, out, err = deploy("flows/deployed.py:sync", "--name", "nightly-sync",
                            "--image", "ghcr.io/acme/warehouse:2.3", "--cron", "0 3 * * *",
                            "--timezone", "Europe/Paris", "--param", "table=customers",
                            "--output-dir", "k8s")
    assert code == 0, err
    files = read_dir(project / "k8s")
    assert sorted(files) == ["deployment-nightly-sync.yaml", "flow-warehouse-sync.yaml",
                             "schedule-nightly-sync.yaml"]
    assert out.splitlines() == [f"wrote k8s/{name}" for name in (
        "flow-warehouse-sync.yaml", "deployment-nightly-sync.yaml",
        "schedule-nightly-sync.yaml")]
    for doc in files.values():
        assert validate_manifest(doc) == [], doc
    flow = files["flow-warehouse-sync.yaml"]
    assert flow["spec"]["image"] == "ghcr.io/acme/warehouse:2.3"
    assert flow["spec"]["entrypoint"] == "flows/deployed.py:sync"
    assert (flow["spec"]["retries"], flow["spec"]["retryDelaySeconds"]) == (1, 30)
    assert flow["spec"]["description"] == "Copy a table into the warehouse."
    # parametersSchema is exactly what `headwater schema` prints for the entrypoint.
    printed = io.StringIO()
    with redirect_stdout(printed):
        assert headwater_main(["schema", "flows/deployed.py:sync"]) == 0
    assert flow["spec"]["parametersSchema"] == json.loads(printed.getvalue())
    assert set(flow["spec"]["parametersSchema"]["properties"]) == {"table", "limit",
                                                                  "full_refresh"}
    deployment = files["deployment-nightly-sync.yaml"]
    assert deployment["spec"] == {"flowRef": {"name": "warehouse-sync"},
                                  "parameters": {"table": "customers"}}
    schedule = files["schedule-nightly-sync.yaml"]
    assert schedule["spec"] == {"deploymentRef": {"name": "nightly-sync"},
                                "cron": "0 3 * * *", "timezone": "Europe/Paris"}


def test_flow_deploy_in_the_file_writes_what_the_command_writes(project: Path) -> None:
    with pytest.warns(UserWarning, match="work_pool_name='kubernetes-pool' is ignored"):
        runpy.run_path("flows/deployed.py", run_name="__main__")
    from_python = read_dir(project / "manifests" / "nightly-sync")
    code, _, err = deploy("flows/deployed.py:sync", "--name", "nightly-sync",
                          "--image", "ghcr.io/acme/warehouse:2.3", "--cron", "0 3 * * *",
                          "--param", "table=customers", "--tag", "warehouse",
                          "--output-dir", "from-cli")
    assert code == 0, err
    assert from_python == read_dir(project / "from-cli")
    assert from_python["deployment-nightly-sync.yaml"]["spec"]["tags"] == ["warehouse"]


def test_a_serve_file_deploys_with_all_its_schedules_from_python(project: Path) -> None:
    # The flow file written for serve(): its schedules (3, one inactive, one with its own
    # parameters) go through flow.deploy() from Python, as Prefect users call it.
    namespace = runpy.run_path("flows/scheduled_serve.py")  # not as __main__: no serve()
    refresh = namespace["refresh"]
    schedules = [namespace["Cron"]("0 6 * * 1-5", timezone="Europe/Paris"),
                 namespace["RRule"]("RRULE:FREQ=WEEKLY;BYDAY=SA", active=False)]
    stdout = io.StringIO()
    with redirect_stdout(stdout):
        name = refresh.deploy("refresh-orders", image="ghcr.io/acme/refresh:1",
                              schedules=schedules, output_dir="out", namespace="data")
    assert name == "refresh-orders"
    files = read_dir(project / "out")
    assert sorted(files) == ["deployment-refresh-orders.yaml", "flow-refresh.yaml",
                             "schedule-refresh-orders-1.yaml",
                             "schedule-refresh-orders-2.yaml"]
    for doc in files.values():
        assert validate_manifest(doc) == [], doc
        assert doc["metadata"]["namespace"] == "data"
    assert files["schedule-refresh-orders-2.yaml"]["spec"]["suspend"] is True


def test_printed_without_output_dir_as_one_yaml_stream(project: Path) -> None:
    code, out, err = deploy("flows/scheduled_serve.py:refresh", "--name", "refresh",
                            "--image", "ghcr.io/acme/refresh:1", "--interval", "14400")
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [doc["kind"] for doc in docs] == ["Flow", "Deployment", "Schedule"]
    assert docs[2]["spec"]["interval"] == "4h"
    assert not (project / "manifests").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--cron", "0 6 * *"], "must have five fields"),
    (["--cron", "0 6 * * *", "--timezone", "Mars/Olympus"], "is not an IANA time zone"),
    (["--rrule", "FREQ=FORTNIGHTLY"], "spec.rrule"),
    (["--interval", "0.5"], "not a whole number of seconds"),
    (["--concurrency-limit", "0"], "concurrency_limit must be a whole number"),
])
def test_bad_input_names_the_field_and_writes_nothing(project: Path, argv: list[str],
                                                      message: str) -> None:
    code, _, err = deploy("flows/deployed.py:sync", "--name", "nightly", "--image",
                          "ghcr.io/acme/warehouse:2.3", *argv, "--output-dir", "k8s")
    assert code == 2
    assert message in err
    assert not (project / "k8s").exists()


def test_a_flow_file_outside_the_project_is_refused(project: Path, tmp_path_factory:
                                                    pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "deployed.py"
    shutil.copy(FLOWS / "deployed.py", elsewhere)
    code, _, err = deploy(f"{elsewhere}:sync", "--name", "nightly", "--image", "img:1")
    assert code == 2
    assert "is outside" in err
    assert "path inside the image" in err


def test_entrypoint_root_matches_the_runtime_image_layout(project: Path) -> None:
    # images/runtime: `COPY flows/ /opt/flows/`, working directory /opt/flows.
    code, out, err = deploy("flows/deployed.py:sync", "--entrypoint-root", "flows",
                            "--name", "nightly", "--image", "img:1")
    assert code == 0, err
    assert next(yaml.safe_load_all(out))["spec"]["entrypoint"] == "deployed.py:sync"
    module = runpy.run_path("flows/deployed.py")
    module["sync"].deploy("nightly", image="img:1", entrypoint_root="flows",
                          output_dir="py")
    flow = read_dir(project / "py")["flow-warehouse-sync.yaml"]
    assert flow["spec"]["entrypoint"] == "deployed.py:sync"
