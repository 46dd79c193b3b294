"""The current flow run, as ``prefect.runtime.flow_run`` offers it.

Attributes (read when accessed; empty values outside a run):

* ``id``, ``name``, ``flow_name``, ``flow_version``, ``parameters``, ``tags``,
  ``run_count``, ``scheduled_start_time`` (the tick of a scheduled run, else when the
  run started, else now), ``parent_flow_run_id`` and ``root_flow_run_id`` (subflows),
  ``deployment_name``;
* ``parent_deployment_id``: for a subflow, the Deployment its pod runs for
  (``HEADWATER_DEPLOYMENT_ID``); ``None`` for a top-level run;
* ``ui_url``: the FlowRun's page in the Headwater UI, when the operator knows the UI's
  address (``HEADWATER_UI_URL``) and the run is a FlowRun (``HEADWATER_NAMESPACE``,
  ``HEADWATER_FLOW_RUN_NAME``); a subflow has the page of the FlowRun it runs in;
* ``api_url``: the FlowRun object on the Kubernetes API server, from the
  ``KUBERNETES_SERVICE_HOST``/``_PORT`` every pod has; ``None`` off a cluster;
* ``job_variables``: always ``{}``. Headwater runs have no job variables: a pod's
  settings come from its Deployment's ``runTemplate``.

Outside a run, ``id``, ``name``, ``flow_name``, ``run_count``, ``deployment_name`` and
``scheduled_start_time`` fall back to the environment the operator gives the pod
(:mod:`headwater.contract`). Each attribute can be overridden with
``HEADWATER__RUNTIME__FLOW_RUN__<ATTRIBUTE>`` (:mod:`headwater.runtime.overrides`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from headwater import contract
from headwater.context import FLOW_RUN_CONTEXT, FlowRun, FlowRunContext
from headwater.runtime import overrides

__all__ = [
    "api_url",
    "deployment_name",
    "flow_name",
    "flow_version",
    "id",
    "job_variables",
    "name",
    "parameters",
    "parent_deployment_id",
    "parent_flow_run_id",
    "root_flow_run_id",
    "run_count",
    "scheduled_start_time",
    "tags",
    "ui_url",
]
_MODULE = "flow_run"


def _context() -> FlowRunContext | None:
    return FLOW_RUN_CONTEXT.get()


def _run() -> FlowRun | None:
    ctx = FLOW_RUN_CONTEXT.get()
    return ctx.flow_run if ctx else None


def _id() -> str | None:
    run = _run()
    return run.id if run else os.environ.get(contract.ENV_FLOW_RUN_ID)


def _name() -> str | None:
    run = _run()
    return run.name if run else os.environ.get(contract.ENV_FLOW_RUN_NAME)


def _flow_name() -> str | None:
    run = _run()
    return run.flow_name if run else os.environ.get(contract.ENV_FLOW_NAME)


def _flow_version() -> str | None:
    ctx = _context()
    return ctx.flow.version if ctx else None


def _parameters() -> dict[str, Any]:
    run = _run()
    return dict(run.parameters) if run else {}


def _tags() -> list[str]:
    run = _run()
    return sorted(run.tags) if run else []


def _run_count() -> int:
    run = _run()
    if run is not None:
        return run.run_count
    return int(os.environ.get(contract.ENV_ATTEMPT, "0") or 0)


def _scheduled_start_time() -> datetime:
    run = _run()
    if run is not None and run.scheduled_start_time is not None:
        return datetime.fromtimestamp(run.scheduled_start_time, tz=UTC)
    text = os.environ.get(contract.ENV_SCHEDULED_TIME)
    if text:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if run is not None and run.start_time is not None:
        return datetime.fromtimestamp(run.start_time, tz=UTC)
    return datetime.now(tz=UTC)


def _parent_flow_run_id() -> str | None:
    run = _run()
    return run.parent_flow_run_id if run else None


def _parent_deployment_id() -> str | None:
    if _parent_flow_run_id() is None:
        return None
    return os.environ.get(contract.ENV_DEPLOYMENT_ID) or None


def _root_flow_run_id() -> str | None:
    ctx = _context()
    return ctx.tree.root.id if ctx else os.environ.get(contract.ENV_FLOW_RUN_ID)


def _deployment_name() -> str | None:
    run = _run()
    if run is not None and run.deployment_name:
        return run.deployment_name
    return os.environ.get(contract.ENV_DEPLOYMENT_NAME) or None


def _ui_url() -> str | None:
    env = os.environ
    return contract.run_ui_url(env.get(contract.ENV_UI_URL), env.get(contract.ENV_NAMESPACE),
                               env.get(contract.ENV_FLOW_RUN_NAME))


def _api_url() -> str | None:
    env = os.environ
    return contract.run_api_url(env.get("KUBERNETES_SERVICE_HOST"),
                                env.get("KUBERNETES_SERVICE_PORT"),
                                env.get(contract.ENV_NAMESPACE),
                                env.get(contract.ENV_FLOW_RUN_NAME))


def _job_variables() -> dict[str, Any]:
    return {}


_FIELDS: dict[str, Callable[[], Any]] = {
    "id": _id,
    "name": _name,
    "flow_name": _flow_name,
    "flow_version": _flow_version,
    "parameters": _parameters,
    "tags": _tags,
    "run_count": _run_count,
    "scheduled_start_time": _scheduled_start_time,
    "parent_flow_run_id": _parent_flow_run_id,
    "root_flow_run_id": _root_flow_run_id,
    "parent_deployment_id": _parent_deployment_id,
    "deployment_name": _deployment_name,
    "ui_url": _ui_url,
    "api_url": _api_url,
    "job_variables": _job_variables,
}
ATTRIBUTES = tuple(_FIELDS)


__getattr__ = overrides.module_getattr(_MODULE, _FIELDS)


def __dir__() -> list[str]:
    return sorted(__all__)
