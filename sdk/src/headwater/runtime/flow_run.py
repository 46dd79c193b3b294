"""The current flow run: ``id``, ``name``, ``parameters``, ``scheduled_start_time``,
``run_count``, ``flow_name``, ``flow_version``, ``deployment_name``, ``tags``,
``parent_flow_run_id``, ``root_flow_run_id``, ``ui_url`` (``None`` when unknown).

``ui_url`` is the FlowRun's page in the Headwater UI: set when the operator knows the UI's
address (``HEADWATER_UI_URL``) and the run is a FlowRun (``HEADWATER_NAMESPACE``,
``HEADWATER_FLOW_RUN_NAME``); a subflow has the page of the FlowRun it runs in."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from headwater import contract
from headwater.context import FLOW_RUN_CONTEXT, FlowRun

ATTRIBUTES = ("id", "name", "parameters", "scheduled_start_time", "run_count", "flow_name",
              "flow_version", "deployment_name", "tags", "parent_flow_run_id",
              "root_flow_run_id", "ui_url")


def _current() -> FlowRun | None:
    ctx = FLOW_RUN_CONTEXT.get()
    return ctx.flow_run if ctx else None


def _tree_attribute(attr: str) -> Any:
    """Attributes that need the flow object or the run tree, not just the run record."""
    ctx = FLOW_RUN_CONTEXT.get()
    if attr == "tags":
        return sorted(ctx.flow_run.tags) if ctx else []
    if attr == "parent_flow_run_id":
        return ctx.flow_run.parent_flow_run_id if ctx else None
    if attr == "root_flow_run_id":
        return ctx.tree.root.id if ctx else os.environ.get(contract.ENV_FLOW_RUN_ID)
    return ctx.flow.version if ctx else None  # flow_version


def _scheduled(run: FlowRun | None) -> datetime | None:
    if run is not None and run.scheduled_start_time is not None:
        return datetime.fromtimestamp(run.scheduled_start_time, tz=UTC)
    text = os.environ.get(contract.ENV_SCHEDULED_TIME)
    if text:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if run is not None and run.start_time is not None:
        return datetime.fromtimestamp(run.start_time, tz=UTC)
    return None


def __getattr__(attr: str) -> Any:
    run = _current()
    if attr == "id":
        return run.id if run else os.environ.get(contract.ENV_FLOW_RUN_ID)
    if attr == "name":
        return run.name if run else os.environ.get(contract.ENV_FLOW_RUN_NAME)
    if attr == "parameters":
        return dict(run.parameters) if run else {}
    if attr == "scheduled_start_time":
        return _scheduled(run)
    if attr == "run_count":
        return run.run_count if run else int(os.environ.get(contract.ENV_ATTEMPT, "0") or 0)
    if attr == "flow_name":
        return run.flow_name if run else os.environ.get(contract.ENV_FLOW_NAME)
    if attr == "deployment_name":
        if run is not None and run.deployment_name:
            return run.deployment_name
        return os.environ.get(contract.ENV_DEPLOYMENT_NAME)
    if attr == "ui_url":
        return contract.run_ui_url(os.environ.get(contract.ENV_UI_URL),
                                   os.environ.get(contract.ENV_NAMESPACE),
                                   os.environ.get(contract.ENV_FLOW_RUN_NAME))
    if attr in ("tags", "parent_flow_run_id", "root_flow_run_id", "flow_version"):
        return _tree_attribute(attr)
    raise AttributeError(f"headwater.runtime.flow_run has no attribute {attr!r}; available: "
                         f"{', '.join(ATTRIBUTES)}")
