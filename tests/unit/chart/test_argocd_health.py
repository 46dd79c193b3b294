"""The Argo CD health checks published in docs/argocd-health.md behave as documented.

The Lua is taken from the doc itself (the ConfigMap snippets users copy) and run in a
real Lua interpreter (lupa), the way Argo CD calls it: with ``obj`` as a global table.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from chartkit import REPO_ROOT
from lupa import LuaRuntime  # type: ignore[import-untyped,unused-ignore]

DOC = REPO_ROOT / "docs" / "argocd-health.md"


def _scripts() -> dict[str, str]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    flowrun = yaml.safe_load(blocks[0])["data"]
    ready = yaml.safe_load("data:\n" + blocks[1])["data"]
    scripts: dict[str, str] = {**flowrun, **ready}
    return scripts


def _health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    check = lua.execute(f"return function(obj)\n{script}\nend")
    result = check(lua.table_from(obj, recursive=True))
    return str(result["status"]), str(result["message"])


FLOWRUN = "resource.customizations.health.headwater.dev_FlowRun"


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        ("Scheduled", "Progressing"),
        ("Pending", "Progressing"),
        ("Running", "Progressing"),
        ("Late", "Progressing"),
        ("AwaitingConcurrencySlot", "Progressing"),
        ("AwaitingRetry", "Progressing"),
        ("Retrying", "Progressing"),
        ("Cancelling", "Progressing"),
        ("Completed", "Healthy"),
        ("Failed", "Degraded"),
        ("Crashed", "Degraded"),
        ("Cancelled", "Suspended"),
        ("SomethingNew", "Unknown"),
    ],
)
def test_flowrun_phase_maps_to_argo_health(phase: str, status: str) -> None:
    got, message = _health(
        _scripts()[FLOWRUN], {"status": {"phase": phase, "message": "exit code 1"}}
    )
    assert got == status
    assert message == f"{phase}: exit code 1"


def test_flowrun_without_status_is_progressing() -> None:
    status, message = _health(_scripts()[FLOWRUN], {"spec": {}})
    assert status == "Progressing"
    assert "operator" in message


def test_ready_condition_drives_deployment_health() -> None:
    script = _scripts()["resource.customizations.health.headwater.dev_Deployment"]

    def ready(value: str) -> dict[str, Any]:
        return {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": value,
                        "reason": "FlowNotFound",
                        "message": "no flow",
                    }
                ]
            }
        }

    assert _health(script, ready("True"))[0] == "Healthy"
    assert _health(script, ready("False")) == ("Degraded", "FlowNotFound: no flow")
    assert _health(script, {})[0] == "Progressing"
    paused = {**ready("True"), "spec": {"paused": True}}
    assert _health(script, paused)[0] == "Suspended"
