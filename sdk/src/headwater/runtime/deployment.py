"""The Deployment the current run belongs to, as ``prefect.runtime.deployment`` offers it.

Read from the environment the operator gives a flow-run pod (:mod:`headwater.contract`);
every attribute is empty for a run that is not a Deployment's (a local run, or a FlowRun
that references a Flow directly):

* ``id``: the Deployment's ``metadata.uid`` (``HEADWATER_DEPLOYMENT_ID``);
* ``name``: its name (``HEADWATER_DEPLOYMENT_NAME``);
* ``version``: its ``metadata.generation`` when the pod was made, a string that changes
  with every edit of its spec (``HEADWATER_DEPLOYMENT_VERSION``);
* ``flow_run_id``: the FlowRun's ``metadata.uid`` (``HEADWATER_FLOW_RUN_ID``);
* ``parameters``: the run's parameters as the operator merged them (Flow < Deployment <
  Schedule < FlowRun, ``HEADWATER_PARAMETERS``), before the flow function's own defaults.

Each attribute can be overridden with ``HEADWATER__RUNTIME__DEPLOYMENT__<ATTRIBUTE>``
(:mod:`headwater.runtime.overrides`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from headwater import contract
from headwater.runtime import overrides

__all__ = ["flow_run_id", "id", "name", "parameters", "version"]
_MODULE = "deployment"


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _id() -> str | None:
    return _env(contract.ENV_DEPLOYMENT_ID)


def _name() -> str | None:
    return _env(contract.ENV_DEPLOYMENT_NAME)


def _version() -> str | None:
    return _env(contract.ENV_DEPLOYMENT_VERSION)


def _flow_run_id() -> str | None:
    return _env(contract.ENV_FLOW_RUN_ID)


def _parameters() -> dict[str, Any]:
    if _flow_run_id() is None:
        return {}
    try:
        value = json.loads(os.environ.get(contract.ENV_PARAMETERS) or "{}")
    except json.JSONDecodeError:
        return {}  # `headwater execute` has already failed the run with the reason
    return value if isinstance(value, dict) else {}


_FIELDS: dict[str, Callable[[], Any]] = {
    "id": _id,
    "name": _name,
    "version": _version,
    "flow_run_id": _flow_run_id,
    "parameters": _parameters,
}
ATTRIBUTES = tuple(_FIELDS)


__getattr__ = overrides.module_getattr(_MODULE, _FIELDS)


def __dir__() -> list[str]:
    return sorted(__all__)
