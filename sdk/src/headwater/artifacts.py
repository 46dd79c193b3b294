"""Artifacts: markdown, tables, links, images and progress a run publishes for people.

Each artifact is a JSON file under ``artifacts/<flow-run-id>/`` in result storage and an
entry of the run record; its key (or id, when it has no key) is listed in the run
summary so ``FlowRun.status`` points at it. Keys follow Prefect's rule: lowercase
letters, digits and dashes.

A progress artifact is the one kind that changes: :func:`update_progress_artifact`
rewrites its file and its record entry. It finds the artifact by the id
:func:`create_progress_artifact` returned, in this process (a flow run's pod).
"""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from headwater.context import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from headwater.secrets import redact

if TYPE_CHECKING:
    from headwater.context import RunTree
    from headwater.results import ResultStorage

_KEY = re.compile(r"^[a-z0-9-]+$")


def _check_key(key: str | None) -> None:
    if key is not None and not _KEY.match(key):
        raise ValueError(
            f"artifact key {key!r} is not valid: use only lowercase letters, digits and "
            "dashes, e.g. 'daily-report'"
        )


@dataclass
class _Written:
    """Where a progress artifact was written, so it can be updated (the run tree is
    referred to weakly: a finished run's tree is not kept alive by its artifacts)."""

    record: dict[str, Any]
    storage: ResultStorage
    path: str
    tree: weakref.ref[RunTree] | None


_progress: dict[str, _Written] = {}
_progress_lock = threading.Lock()


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
    path = f"artifacts/{flow_run_id}/{key or artifact_id}.json"
    tree = flow_ctx.tree if flow_ctx else None
    _write(storage, path, record, tree, first=True)
    if tree is not None:
        with tree.lock:
            tree.artifacts.append(key or artifact_id)
    if kind == "progress":
        with _progress_lock:
            _progress[artifact_id] = _Written(record, storage, path,
                                              weakref.ref(tree) if tree else None)
    return artifact_id


def _write(storage: ResultStorage, path: str, record: dict[str, Any], tree: RunTree | None,
           *, first: bool = False) -> None:
    """Write ``record`` (secrets masked) to its file and to ``tree``'s run record:
    appended the ``first`` time, else in place of the entry with the same id."""
    text = redact(json.dumps(record, default=str, indent=1))
    storage.write(path, text.encode())
    if tree is None:
        return
    from headwater.runrecord import iso_ms

    entry = json.loads(text)
    entry["created"] = iso_ms(record["created"])
    with tree.lock:
        records = tree.artifact_records
        if first:
            records.append(entry)
        else:
            # A new dict, not a change to the old one: a flush may be encoding it.
            records[:] = [entry if old.get("id") == entry["id"] else old for old in records]
        tree.artifact_revision += 1


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


def _progress_value(progress: float) -> float:
    if isinstance(progress, bool) or not isinstance(progress, int | float) or not (
            0 <= progress <= 100):
        raise ValueError(f"progress must be a number from 0 to 100 (a percentage), got "
                         f"{progress!r}")
    return float(progress)


def create_progress_artifact(progress: float, key: str | None = None,
                             description: str | None = None) -> str:
    """Publish how far something has got, in percent (0–100); returns the artifact id,
    which :func:`update_progress_artifact` takes."""
    return _create("progress", _progress_value(progress), key, description)


def update_progress_artifact(artifact_id: str, progress: float,
                             description: str | None = None) -> str:
    """Set the progress (0–100) of an artifact :func:`create_progress_artifact` made in
    this process, and its description when given; returns ``artifact_id``."""
    value = _progress_value(progress)
    with _progress_lock:
        written = _progress.get(str(artifact_id))
        if written is None:
            raise ValueError(
                f"no progress artifact {artifact_id!r} was created in this process: pass "
                "the id create_progress_artifact returned (in the same flow run)")
        record = dict(written.record, data=value)
        if description is not None:
            record["description"] = description
        written.record = record
    _write(written.storage, written.path, record, written.tree() if written.tree else None)
    return str(artifact_id)


def create_image_artifact(image_url: str, key: str | None = None,
                          description: str | None = None) -> str:
    """Publish an image by its address; the UI shows ``http``/``https`` images inline."""
    if not isinstance(image_url, str) or not image_url.strip():
        raise ValueError(f"image_url must be the image's address, e.g. "
                         f"'https://example.com/chart.png', got {image_url!r}")
    return _create("image", image_url, key, description)


def read_artifact(storage_path: str, flow_run_id: str, key: str) -> dict[str, Any]:
    """Read an artifact back from a storage location (for tools and tests)."""
    from headwater.results import resolve_storage

    data = resolve_storage(storage_path).read(f"artifacts/{flow_run_id}/{key}.json")
    if data is None:
        raise KeyError(f"no artifact {key!r} for flow run {flow_run_id} in {storage_path}")
    result: dict[str, Any] = json.loads(data)
    return result
