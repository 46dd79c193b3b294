"""Run loggers: readable lines on stdout (``kubectl logs`` is the viewer), JSON on request.

Handlers are installed on the ``headwater`` logger the first time a run starts, never at
import, so ``import headwater`` stays cheap and an application that configures logging
itself is not surprised. ``HEADWATER_LOG_FORMAT=json`` switches to one JSON object per
line; ``HEADWATER_LOG_LEVEL`` sets the level (default ``INFO``).

``log_prints=True`` turns ``print()`` calls made inside that run into INFO log records.
``print`` is replaced once by a wrapper that consults a context variable, so code
outside such runs (and other threads) prints exactly as before.
"""

from __future__ import annotations

import builtins
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import MutableMapping
from typing import Any

from headwater import contract
from headwater.context import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from headwater.secrets import redact

LOGGER_NAME = "headwater"
_configured = False

TEXT_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(run_label)s - %(message)s"


class _TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "run_label"):
            record.run_label = record.name
        return redact(super().format(record))


class _JsonFormatter(logging.Formatter):
    _extras = ("flow_run_id", "flow_run_name", "task_run_id", "task_run_name")

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in self._extras:
            value = getattr(record, key, None)
            if value is not None:
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str))


def make_formatter(log_format: str | None = None) -> logging.Formatter:
    """The formatter for ``log_format`` (``text`` or ``json``; default from the env)."""
    chosen = (log_format or os.environ.get(contract.ENV_LOG_FORMAT) or "text").lower()
    return _JsonFormatter() if chosen == "json" else _TextFormatter()


def setup_logging(force: bool = False) -> None:
    """Attach the stdout handler to the ``headwater`` logger (once per process)."""
    global _configured  # noqa: PLW0603 - process-wide, set once
    if _configured and not force:
        return
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, "_headwater", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler._headwater = True  # type: ignore[attr-defined]
    handler.setFormatter(make_formatter())
    logger.addHandler(handler)
    logger.setLevel(os.environ.get(contract.ENV_LOG_LEVEL, "INFO").upper())
    logger.propagate = False
    _configured = True
    _install_print_hook()


class RunLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the run's ids and a readable ``Flow run 'x'`` label to every record."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return msg, kwargs


def flow_run_logger(flow_run_id: str, flow_run_name: str, flow_name: str) -> RunLoggerAdapter:
    """The logger for a flow run."""
    return RunLoggerAdapter(
        logging.getLogger(f"{LOGGER_NAME}.flow_runs"),
        {
            "flow_run_id": flow_run_id,
            "flow_run_name": flow_run_name,
            "flow_name": flow_name,
            "run_label": f"Flow run {flow_run_name!r}",
        },
    )


def task_run_logger(
    task_run_id: str, task_run_name: str, flow_run_id: str | None, flow_run_name: str | None
) -> RunLoggerAdapter:
    """The logger for a task run."""
    return RunLoggerAdapter(
        logging.getLogger(f"{LOGGER_NAME}.task_runs"),
        {
            "task_run_id": task_run_id,
            "task_run_name": task_run_name,
            "flow_run_id": flow_run_id,
            "flow_run_name": flow_run_name,
            "run_label": f"Task run {task_run_name!r}",
        },
    )


def get_run_logger() -> RunLoggerAdapter:
    """The logger of the task or flow run that is executing (Prefect's ``get_run_logger``).

    Raises :class:`~headwater.exceptions.MissingContextError` (a ``RuntimeError``) outside
    a run, naming the fix, as Prefect does.
    """
    setup_logging()
    task_ctx = TASK_RUN_CONTEXT.get()
    if task_ctx is not None:
        flow_run = task_ctx.flow_run_context.flow_run if task_ctx.flow_run_context else None
        return task_run_logger(
            task_ctx.task_run.id,
            task_ctx.task_run.name,
            flow_run.id if flow_run else None,
            flow_run.name if flow_run else None,
        )
    flow_ctx = FLOW_RUN_CONTEXT.get()
    if flow_ctx is not None:
        run = flow_ctx.flow_run
        return flow_run_logger(run.id, run.name, run.flow_name)
    from headwater.exceptions import MissingContextError

    raise MissingContextError(
        "get_run_logger() was called outside a flow or task run; call it inside a function "
        "decorated with @flow or @task, or use logging.getLogger(...) elsewhere."
    )


# --- log_prints ------------------------------------------------------------------------

LOG_PRINTS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "headwater_log_prints", default=False
)
_original_print = builtins.print
_hook_installed = False


def _print(*args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
           flush: bool = False) -> None:
    if LOG_PRINTS.get() and (file is None or file is sys.stdout):
        text = (sep if sep is not None else " ").join(str(a) for a in args)
        get_run_logger().info(text)
        return
    _original_print(*args, sep=sep, end=end, file=file, flush=flush)


def _install_print_hook() -> None:
    global _hook_installed  # noqa: PLW0603 - process-wide, set once
    if not _hook_installed:
        builtins.print = _print
        _hook_installed = True
