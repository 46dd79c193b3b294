"""The current task run, as ``prefect.runtime.task_run`` offers it.

Attributes (read when accessed; empty values outside a task run): ``id``, ``name``,
``task_name``, ``run_count``, ``parameters``, ``tags``; ``ui_url`` is the page of the
FlowRun the task runs in (the UI lists its task runs there; ``None`` as for
``flow_run.ui_url``); ``api_url`` is always ``None``: a task run is not a Kubernetes
object. Each attribute can be overridden with ``HEADWATER__RUNTIME__TASK_RUN__<ATTRIBUTE>``
(:mod:`headwater.runtime.overrides`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from headwater.context import TASK_RUN_CONTEXT
from headwater.runtime import overrides

__all__ = ["api_url", "id", "name", "parameters", "run_count", "tags", "task_name", "ui_url"]
_MODULE = "task_run"


def _id() -> str | None:
    ctx = TASK_RUN_CONTEXT.get()
    return ctx.task_run.id if ctx else None


def _name() -> str | None:
    ctx = TASK_RUN_CONTEXT.get()
    return ctx.task_run.name if ctx else None


def _task_name() -> str | None:
    ctx = TASK_RUN_CONTEXT.get()
    return ctx.task.name if ctx else None


def _run_count() -> int:
    ctx = TASK_RUN_CONTEXT.get()
    return ctx.task_run.run_count if ctx else 0


def _parameters() -> dict[str, Any]:
    ctx = TASK_RUN_CONTEXT.get()
    return dict(ctx.parameters) if ctx else {}


def _tags() -> list[str]:
    ctx = TASK_RUN_CONTEXT.get()
    return sorted(ctx.task_run.tags) if ctx else []


def _ui_url() -> str | None:
    if TASK_RUN_CONTEXT.get() is None:
        return None
    from headwater.runtime import flow_run

    url: str | None = flow_run._ui_url()
    return url


def _api_url() -> str | None:
    return None


_FIELDS: dict[str, Callable[[], Any]] = {
    "id": _id,
    "name": _name,
    "task_name": _task_name,
    "run_count": _run_count,
    "parameters": _parameters,
    "tags": _tags,
    "ui_url": _ui_url,
    "api_url": _api_url,
}
ATTRIBUTES = tuple(_FIELDS)


__getattr__ = overrides.module_getattr(_MODULE, _FIELDS)


def __dir__() -> list[str]:
    return sorted(__all__)
