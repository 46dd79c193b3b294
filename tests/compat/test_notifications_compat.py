"""A Prefect-style flow that alerts Slack from its ``on_failure`` hook, run as a pod
runs it (``headwater execute`` in a fresh process), against a local receiver that
checks Slack's payload format: once from the local store, once from the blocks the
operator would mount. The webhook URL must appear nowhere but the store's 0600 secrets
file and the mount."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from headwater.blocks.stores.local import LocalBlockStore
from isolated_home import headwater_home
from notification_receivers import HTTPReceiver, http_receiver, slack_problems

__all__ = ["headwater_home"]  # the autouse fixture: each test its own HEADWATER_HOME

FLOW = Path(__file__).parent / "flows_notifications" / "alert_on_failure.py"
SLACK_PATH = "/services/T0001/B0002/compat-token-5e7a1f"


receiver = pytest.fixture(http_receiver)


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    return {**env, "HEADWATER_HOME": str(home), **extra}


def run_flow(env: dict[str, str], tmp_path: Path) -> tuple[dict[str, Any], str]:
    summary_path = tmp_path / f"summary-{len(list(tmp_path.glob('summary-*')))}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "headwater", "execute", "--entrypoint",
         f"{FLOW}:load_orders", "--summary-path", str(summary_path)],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    return json.loads(summary_path.read_text()), proc.stdout + proc.stderr


def written(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*")
                   if p.is_file() and not p.name.endswith(".secrets.json"))


def test_a_failed_flow_alerts_slack_from_the_store_and_from_a_pod_mount(
        tmp_path: Path, headwater_home: Path, receiver: HTTPReceiver) -> None:
    url = receiver.route(SLACK_PATH, "slack")
    env = env_for(headwater_home)
    save = ("import sys\nfrom headwater.blocks.notifications import SlackWebhook\n"
            "SlackWebhook(url=sys.stdin.read()).save('oncall')\n")
    subprocess.run([sys.executable, "-c", save], env=env, input=url, text=True,
                   check=True, timeout=60)

    summary, output = run_flow(env, tmp_path)

    # The pod's view: the block's document in HEADWATER_BLOCKS, its url as a file.
    store = LocalBlockStore(headwater_home / "blocks")
    mount = tmp_path / "mount"
    (mount / "oncall").mkdir(parents=True)
    (mount / "oncall" / "url").write_text(store.read_secret("oncall", "url"))
    pod_home = tmp_path / "pod-home"
    pod_env = env_for(pod_home, HEADWATER_BLOCKS=json.dumps(
        {"oncall": store.read("oncall").to_json()}), HEADWATER_BLOCKS_DIR=str(mount))
    pod_summary, pod_output = run_flow(pod_env, tmp_path)

    assert summary["state"] == pod_summary["state"] == "Failed"
    assert len(receiver.requests) == 2, (output, pod_output)
    for request in receiver.requests:
        body = request.json()
        assert slack_problems(body) == []
        assert body["blocks"][0]["text"]["text"] == "load-orders failed"
        assert "the orders API answered 503" in body["blocks"][1]["text"]["text"]
    for text in (output, pod_output, json.dumps(summary), json.dumps(pod_summary),
                 pod_env["HEADWATER_BLOCKS"], written(headwater_home), written(pod_home)):
        assert SLACK_PATH not in text
