"""Artifacts: markdown, tables and links a run publishes for people to read.

Each artifact is a JSON file under ``artifacts/<flow-run-id>/`` in result storage; its
key (or id, when it has no key) is listed in the run summary so ``FlowRun.status``
points at it. Keys follow Prefect's rule: lowercase letters, digits and dashes.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from headwater.context import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from headwater.secrets import redact

_KEY = re.compile(r"^[a-z0-9-]+$")


def _check_key(key: str | None) -> None:
    if key is not None and not _KEY.match(key):
        raise ValueError(
            f"artifact key {key!r} is not valid: use only lowercase letters, digits and "
            "dashes, e.g. 'daily-report'"
        )


def _create(kind: str, data: Any, key: str | None, description: str | None) -> str:
    from headwater.results import resolve_storage

    _check_key(key)
    from headwater.engine import _new_id

    artifact_id = _new_id()
    flow_ctx = FLOW_RUN_CONTEXT.get()
    task_ctx = TASK_RUN_CONTEXT.get()
    flow_run_id = flow_ctx.flow_run.id if flow_ctx else "no-flow-run"
    record = {
        "id": artifact_id,
        "key": key,
        "type": kind,
        "description": description,
        "data": data,
        "flowRunId": flow_ctx.flow_run.id if flow_ctx else None,
        "taskRunId": task_ctx.task_run.id if task_ctx else None,
        "created": time.time(),
    }
    storage = flow_ctx.result_store().storage if flow_ctx else resolve_storage(None)
    text = redact(json.dumps(record, default=str, indent=1))
    storage.write(f"artifacts/{flow_run_id}/{key or artifact_id}.json", text.encode())
    if flow_ctx is not None:
        from headwater.runrecord import iso_ms

        entry = json.loads(text)
        entry["created"] = iso_ms(record["created"])
        with flow_ctx.tree.lock:
            flow_ctx.tree.artifacts.append(key or artifact_id)
            flow_ctx.tree.artifact_records.append(entry)
    return artifact_id


def create_markdown_artifact(markdown: str, key: str | None = None,
                             description: str | None = None) -> str:
    """Publish a markdown report; returns the artifact id."""
    return _create("markdown", markdown, key, description)


def create_table_artifact(table: list[dict[str, Any]] | dict[str, list[Any]] | list[list[Any]],
                          key: str | None = None, description: str | None = None) -> str:
    """Publish a table (rows as dicts, columns as a dict of lists, or a list of rows)."""
    if not isinstance(table, (list, dict)):
        raise TypeError("create_table_artifact: table must be a list of rows or a dict of "
                        f"columns, not {type(table).__name__}")
    return _create("table", table, key, description)


def create_link_artifact(link: str, link_text: str | None = None, key: str | None = None,
                         description: str | None = None) -> str:
    """Publish a link to something the run produced."""
    return _create("link", {"link": link, "link_text": link_text}, key, description)


def read_artifact(storage_path: str, flow_run_id: str, key: str) -> dict[str, Any]:
    """Read an artifact back from a storage location (for tools and tests)."""
    from headwater.results import resolve_storage

    data = resolve_storage(storage_path).read(f"artifacts/{flow_run_id}/{key}.json")
    if data is None:
        raise KeyError(f"no artifact {key!r} for flow run {flow_run_id} in {storage_path}")
    result: dict[str, Any] = json.loads(data)
    return result
