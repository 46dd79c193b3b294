"""The run store: where each flow-run attempt's run record and logs are kept, and how to
read them back.

The SDK writes (:mod:`headwater.runrecord`); the operator records each attempt's location
in ``FlowRun.status.runRecords`` and deletes a pruned run's records; the CLI (and the UI)
read them. All three address the store through this module, so the layout is written
down once. ``docs/run-store.md`` documents it for people.

Layout, version 1, under the store's root (any path or fsspec URL)::

    flowruns/v1/<namespace>/<flowrun>/<attempt>/record.json
    flowruns/v1/<namespace>/<flowrun>/<attempt>/logs/000000.jsonl
    flowruns/v1/<namespace>/<flowrun>/<attempt>/logs/000001.jsonl   (…)

* ``<flowrun>`` is the FlowRun's name and ``<attempt>`` its 1-based attempt (one pod
  each). A run outside the cluster (``python flow.py``) uses namespace ``_local`` (an
  underscore is never in a Kubernetes namespace) and the root flow run's id.
* ``record.json`` is the whole record (schema: ``headwater/data/run-record.schema.json``),
  rewritten in place at most every 2 seconds while the run runs and once more when it
  ends (``complete: true``). A reader always sees a whole record: local writes are
  renamed into place and object-store puts are atomic.
* ``logs/`` holds log lines as JSON Lines, in segments read in name order. The writer
  appends by rewriting the newest segment until it passes 1 MiB and then starts the next,
  so object stores (which cannot append) stay usable and no flush rewrites more than one
  segment.

It must stay import-light (standard library and :mod:`headwater.results` only); fsspec is
imported only for fsspec URLs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from headwater import contract

LAYOUT: str = "flowruns/v1"
"""The first path segments of every record: the layout's version is part of the path."""
LOCAL_NAMESPACE: str = "_local"
"""The namespace segment of runs started outside the cluster."""
RECORD_FILE: str = "record.json"
LOGS_DIR: str = "logs"
SCHEMA_VERSION: str = "headwater.dev/run-record/v1"
"""``schemaVersion`` of every record this layout holds."""
OFF: str = "off"
"""``HEADWATER_RUN_STORE=off``: write no run record."""


def flowrun_path(namespace: str, flowrun: str) -> str:
    """The directory of every attempt of one FlowRun, relative to the store root."""
    return f"{LAYOUT}/{namespace}/{flowrun}"


def attempt_path(namespace: str, flowrun: str, attempt: int) -> str:
    """The directory of one attempt, relative to the store root."""
    return f"{flowrun_path(namespace, flowrun)}/{attempt}"


def join(root: str, path: str) -> str:
    """``root`` (a path or URL) and a relative ``path`` joined with one ``/``."""
    return f"{root.rstrip('/')}/{path}"


def attempt_url(root: str, namespace: str, flowrun: str, attempt: int) -> str:
    """The full location of one attempt's directory (what ``status.runRecords`` holds)."""
    return join(root, attempt_path(namespace, flowrun, attempt))


def split_url(url: str) -> tuple[str, str]:
    """``(root, relative path)`` of a location inside a store (``…/flowruns/v1/…``).

    Raises ``ValueError`` naming the expected shape when ``url`` is not such a location.
    """
    marker = f"/{LAYOUT}/"
    head, sep, tail = url.rstrip("/").rpartition(marker)
    if not sep or not tail:
        raise ValueError(f"{url!r} is not a run-store location: expected "
                         f"'<root>/{LAYOUT}/<namespace>/<flowrun>[/<attempt>]'")
    return head or "/", f"{LAYOUT}/{tail}"


def segment_name(index: int) -> str:
    """The name of log segment ``index`` inside an attempt directory."""
    return f"{LOGS_DIR}/{index:06d}.jsonl"


@dataclass(frozen=True)
class Location:
    """Where this process's root flow run writes its record."""

    root: str
    namespace: str
    flowrun: str
    attempt: int

    @property
    def path(self) -> str:
        """The attempt's directory relative to :attr:`root`."""
        return attempt_path(self.namespace, self.flowrun, self.attempt)

    @property
    def url(self) -> str:
        """The attempt's full location."""
        return join(self.root, self.path)


def store_root(env: Mapping[str, str] | None = None) -> str | None:
    """The run store root from the environment, or ``None`` when records are off.

    ``HEADWATER_RUN_STORE`` when set (``off`` disables records), else the result storage
    root (``HEADWATER_RESULT_STORAGE``, ``HEADWATER_HOME``, ``~/.headwater``).
    """
    env = os.environ if env is None else env
    value = env.get(contract.ENV_RUN_STORE, "").strip()
    if value.lower() == OFF:
        return None
    if value:
        return value
    from headwater.results import default_storage_location

    return default_storage_location(env)


def location_for(root_flow_run_id: str, flowrun_name: str | None = None,
                 attempt: int | None = None,
                 env: Mapping[str, str] | None = None) -> Location | None:
    """Where the root flow run ``root_flow_run_id`` writes its record (``None``: off).

    In a flow-run pod the operator's contract variables name the FlowRun
    (``HEADWATER_NAMESPACE``, ``HEADWATER_FLOW_RUN_NAME``, ``HEADWATER_ATTEMPT``);
    elsewhere the run is ``_local/<root flow run id>/1``.
    """
    env = os.environ if env is None else env
    root = store_root(env)
    if root is None:
        return None
    namespace = env.get(contract.ENV_NAMESPACE) or ""
    name = flowrun_name or env.get(contract.ENV_FLOW_RUN_NAME) or ""
    if namespace and name:
        number = attempt if attempt is not None else int(env.get(contract.ENV_ATTEMPT) or 1)
        return Location(root, namespace, name, max(number, 1))
    return Location(root, LOCAL_NAMESPACE, root_flow_run_id, 1)


# --- reading ---------------------------------------------------------------------------


class RecordNotFound(LookupError):
    """No record at a location (never written, not yet flushed, or deleted)."""


def _storage(url: str) -> Any:
    from headwater.results import resolve_storage

    return resolve_storage(url)


def read_record(url: str) -> dict[str, Any]:
    """The record of the attempt at ``url`` (its directory's full location).

    Raises :class:`RecordNotFound` naming the location when there is none, and
    ``ValueError`` when the file is not a JSON object.
    """
    data = _storage(url).read(RECORD_FILE)
    if data is None:
        raise RecordNotFound(f"no run record at {join(url, RECORD_FILE)}")
    record = json.loads(data)
    if not isinstance(record, dict):
        raise ValueError(f"{join(url, RECORD_FILE)} is not a run record (not a JSON object)")
    return record


def iter_log_lines(url: str) -> Iterator[dict[str, Any]]:
    """Every log line of the attempt at ``url``, in order (a torn last line is skipped)."""
    storage = _storage(url)
    for segment in sorted(storage.list(LOGS_DIR)):
        data = storage.read(segment)
        if not data:
            continue
        for raw in data.splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                yield line


def delete_flowrun(root: str, namespace: str, flowrun: str) -> None:
    """Delete every attempt's record and logs of one FlowRun (nothing there is fine)."""
    _storage(root).delete(flowrun_path(namespace, flowrun))
