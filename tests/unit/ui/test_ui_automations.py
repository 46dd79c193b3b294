"""The Automations pages: what fires each, what it does, how its deliveries went."""

from __future__ import annotations

import re
from typing import Any

from headwater_operator.ui.state import UiState

from tests.unit.ui.uifixtures import NOW, fill, stamp, ui_client


def automation(name: str, *, namespace: str = "default", **status: Any) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Automation",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "creationTimestamp": stamp(NOW)},
            "spec": {"trigger": {"runPhase": {"phases": ["Failed", "Crashed"],
                                              "selector": {"deployments": ["etl"]}}},
                     "actions": [{"notify": {"blockRef": {"name": "team-slack"},
                                             "subject": "{{ run.name }} {{ run.phase }}"}},
                                 {"suspend": {}}]},
            "status": status}


DELIVERED = {
    "delivered": 2, "failed": 1, "retried": 3,
    "conditions": [{"type": "Ready", "status": "True", "reason": "Watching",
                    "lastTransitionTime": stamp(NOW)}],
    "lastDeliveries": [
        {"action": 0, "type": "notify", "outcome": "Delivered", "run": "etl-2",
         "time": "2026-03-02T11:50:00Z", "attempts": 3},
        {"action": 1, "type": "suspend", "outcome": "Failed", "run": "etl-2",
         "time": "2026-03-02T11:51:00Z", "attempts": 8,
         "message": "Deployment default/etl not found"}],
    "ledger": [
        {"id": "uid-etl-1/Failed/1", "run": "etl-1", "time": "2026-03-02T10:00:00Z",
         "actions": [{"action": 0, "state": "Delivered", "attempts": 1},
                     {"action": 1, "state": "Delivered", "attempts": 1}]},
        {"id": "uid-etl-2/Failed/1", "run": "etl-2", "time": "2026-03-02T11:45:00Z",
         "actions": [{"action": 0, "state": "Delivered", "attempts": 3},
                     {"action": 1, "state": "Failed", "attempts": 8}]}],
}


def cells(page: str, testid: str) -> list[list[str]]:
    rows = re.findall(rf'<tr data-testid="{testid}">(.*?)</tr>', page, re.S)
    return [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows]


async def test_the_list_shows_trigger_actions_counts_and_the_last_delivery() -> None:
    state = fill(UiState(), ("Automation", automation("on-failure", **DELIVERED)),
                 ("Automation", automation("quiet", namespace="data")))
    async with ui_client(state) as client:
        page = await (await client.get("/automations")).text()
        only_data = await (await client.get("/automations?namespace=data")).text()
    assert cells(page, "automation-row") == [
        ["quiet", "data", "runPhase Failed,Crashed",
         "notify (Block team-slack), suspend (the run&#39;s Deployment)", "0", "0",
         "none yet", "unknown"],
        ["on-failure", "default", "runPhase Failed,Crashed",
         "notify (Block team-slack), suspend (the run&#39;s Deployment)", "2", "1",
         "Failed 2026-03-02T11:51:00Z", "Ready"]]
    assert re.search(r'<a [^>]*href="/automations"[^>]*>Automations</a>', page)
    assert [row[0] for row in cells(only_data, "automation-row")] == ["quiet"]


async def test_the_detail_shows_each_action_and_the_ledger_newest_first() -> None:
    state = fill(UiState(), ("Automation", automation("on-failure", **DELIVERED)))
    async with ui_client(state) as client:
        page = await (await client.get("/automations/default/on-failure")).text()
        missing = await client.get("/automations/default/nope")
    assert "2 delivered, 1 failed, 3 attempts retried" in page
    assert '<dt>Selects</dt><dd><code>{&#34;deployments&#34;: [&#34;etl&#34;]}</code></dd>' in page
    assert cells(page, "automation-action") == [
        ["0", "notify", "Block team-slack", "Delivered for etl-2 2026-03-02T11:50:00Z", "3", ""],
        ["1", "suspend", "the run&#39;s Deployment",
         "Failed for etl-2 2026-03-02T11:51:00Z", "8", "Deployment default/etl not found"]]
    ledger = cells(page, "ledger-row")
    assert [row[1] for row in ledger] == ["etl-2", "etl-1"]
    assert ledger[0][3] == "#0 Delivered (3 attempts), #1 Failed (8 attempts)"
    # A template is shown as written, never rendered.
    assert "{{ run.name }} {{ run.phase }}" in page
    assert missing.status == 404
