"""Prefect's alerting pattern: a flow whose ``on_failure`` hook loads a Slack webhook
block and notifies the channel (Prefect 3: ``prefect.blocks.notifications``)."""

from __future__ import annotations

from typing import Any

from headwater import flow
from headwater.blocks.notifications import SlackWebhook


def alert_oncall(flow: Any, flow_run: Any, state: Any) -> None:
    SlackWebhook.load("oncall").notify(
        body=f"Flow run {flow_run.name} of {flow.name} failed: {state.message}",
        subject=f"{flow.name} failed")


@flow(name="load-orders", on_failure=[alert_oncall])
def load_orders(fail: bool = True) -> int:
    if fail:
        raise RuntimeError("the orders API answered 503")
    return 0


if __name__ == "__main__":
    load_orders()
