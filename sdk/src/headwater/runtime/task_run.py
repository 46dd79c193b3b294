"""The current task run: ``id``, ``name``, ``task_name``, ``run_count``, ``parameters``,
``tags``."""

from __future__ import annotations

from typing import Any

from headwater.context import TASK_RUN_CONTEXT

ATTRIBUTES = ("id", "name", "task_name", "run_count", "parameters", "tags")


def __getattr__(attr: str) -> Any:
    ctx = TASK_RUN_CONTEXT.get()
    if attr == "id":
        return ctx.task_run.id if ctx else None
    if attr == "name":
        return ctx.task_run.name if ctx else None
    if attr == "task_name":
        return ctx.task.name if ctx else None
    if attr == "run_count":
        return ctx.task_run.run_count if ctx else 0
    if attr == "parameters":
        return dict(ctx.parameters) if ctx else {}
    if attr == "tags":
        return sorted(ctx.task_run.tags) if ctx else []
    raise AttributeError(f"headwater.runtime.task_run has no attribute {attr!r}; available: "
                         f"{', '.join(ATTRIBUTES)}")
