"""Reporting dbt's results into the current flow run: task runs, assets with lineage, a table.

dbt documents what an invocation did in two JSON artifacts: ``manifest.json`` (every
node, its relation and its ``depends_on``) and ``run_results.json`` (each executed node's
status, timing, message and adapter response), or ``sources.json`` for ``source
freshness``. This module turns them into the run record, the same way for dbt Core (the
runner in :mod:`headwater_dbt.core`, which reports each node as it finishes) and for dbt
Cloud (which fetches both documents once the job is done):

* every executed node becomes a task run (:func:`headwater.record_task_run`): name and
  task key from its ``unique_id``, state from its status (:data:`OUTCOMES`), timing from
  ``timing`` (compile start to execute end), error message, rows affected and the
  compiled SQL's path in ``metadata``;
* every model, seed and snapshot that succeeded becomes an asset materialization
  (:func:`headwater.record_asset_materialization`) whose upstream assets are its
  ``depends_on.nodes`` (sources included) that are themselves relations, keyed by
  :func:`asset_key`; the tests on it are listed in its metadata (``tests``: test id to
  status), and each test's task run names its asset (``metadata.asset``);
* one table artifact lists every node's result.

What it must respect: it reads the documents only through the keys dbt's published
schemas define (manifest v12, run-results v6, sources v3; older versions carry the same
keys), never dbt's Python classes, so dbt Cloud's downloaded JSON reports the same way;
and a node is recorded once per invocation, whether it arrived through a callback or from
``run_results.json``.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import headwater
from headwater.context import TaskRun
from headwater.external import ExternalOutcome

OUTCOMES: Mapping[str, ExternalOutcome] = {
    "success": "completed",
    "pass": "completed",
    "warn": "completed",
    "no-op": "completed",
    "error": "failed",
    "fail": "failed",
    "runtime error": "failed",
    "partial success": "failed",
    "skipped": "not_ready",
}
"""A dbt result status (models, seeds, snapshots, tests, freshness) to the task run's
final state. ``warn`` completes (its message says it warned); ``partial success`` (some
microbatch batches failed) fails; ``skipped`` (an upstream node failed) is ``NotReady``,
which in Headwater means exactly that."""

ASSET_TYPES = frozenset({"model", "seed", "snapshot"})
"""The resource types that materialize a relation, hence an asset."""
TEST_TYPES = frozenset({"test", "unit_test"})

AssetKeyFn = Callable[[Mapping[str, Any], str], str]
"""``(manifest node or source, adapter type) -> asset key``: see :func:`asset_key`."""


def asset_key(node: Mapping[str, Any], adapter_type: str) -> str:
    """The asset key of a model, seed, snapshot or source:
    ``<adapter type>://<database>/<schema>/<identifier>``.

    ``identifier`` is the node's ``alias`` (a source's ``identifier``), so the key names
    the relation in the warehouse, not the dbt file: a Python task that loads
    ``raw.orders`` into DuckDB ``warehouse`` and declares
    ``duckdb://warehouse/raw/orders`` is the upstream of the dbt source that reads it.
    Each part is percent-encoded (a space becomes ``%20``); a missing database is ``_``.
    """
    database = node.get("database") or "_"
    schema = node.get("schema") or "_"
    identifier = node.get("alias") or node.get("identifier") or node.get("name") or "_"
    parts = "/".join(quote(str(part), safe="") for part in (database, schema, identifier))
    return f"{adapter_type}://{parts}"


@dataclass
class NodeResult:
    """One executed dbt node, as recorded."""

    unique_id: str
    resource_type: str
    status: str
    outcome: ExternalOutcome
    message: str | None
    started: float | None
    ended: float
    rows_affected: int | None = None
    failures: int | None = None
    compiled_path: str | None = None
    asset_key: str | None = None
    """The asset this node materializes (models, seeds, snapshots) or tests."""
    task_run: TaskRun | None = field(default=None, repr=False)
    live: bool = False
    """Reported as the node finished (dbt Core's event), not from run_results at the end."""

    @property
    def failed(self) -> bool:
        """Whether the node failed (a failing test or an erroring model, not a warning)."""
        return self.outcome == "failed"


@dataclass
class DbtReport:
    """What one dbt invocation recorded in the flow run."""

    command: str
    results: list[NodeResult]
    assets: list[dict[str, Any]]
    """The materialization records, in execution order."""
    artifact_id: str | None = None

    @property
    def failed(self) -> list[NodeResult]:
        """The nodes that failed."""
        return [r for r in self.results if r.failed]

    @property
    def skipped(self) -> list[NodeResult]:
        """The nodes dbt skipped because an upstream node failed."""
        return [r for r in self.results if r.outcome == "not_ready"]

    @property
    def success(self) -> bool:
        """No node failed."""
        return not self.failed


def _time(text: Any) -> float | None:
    """An ISO 8601 timestamp from dbt (``Z``, an offset, or naive UTC) as Unix seconds;
    a number is Unix seconds already (dbt Core's events, read by the runner)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text) if text > 0 else None
    if not text or not isinstance(text, str):
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _span(timing: Iterable[Mapping[str, Any]]) -> tuple[float | None, float | None]:
    starts = [t for t in (_time(s.get("started_at")) for s in timing) if t is not None]
    ends = [t for t in (_time(s.get("completed_at")) for s in timing) if t is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def _artifact_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dbt"


class DbtReporter:
    """Records one dbt invocation's nodes into the current flow run.

    :meth:`record_result` takes one ``run_results.json`` result (the runner calls it as
    each node finishes, from dbt's worker threads, inside ``run_in_context``);
    :meth:`finish` records what was not recorded yet from the whole document, then the
    assets and the table artifact. :func:`report_results` does both at once.
    """

    def __init__(self, command: str, manifest: Mapping[str, Any] | None = None, *,
                 adapter_type: str | None = None, project_dir: str | Path | None = None,
                 asset_key_fn: AssetKeyFn = asset_key, artifact_key: str | None = None,
                 tags: Iterable[str] = (), target_path: str | Path | None = None) -> None:
        self.command = command
        self.target_path = Path(target_path) if target_path is not None else None
        self.manifest: Mapping[str, Any] = manifest or {}
        self.adapter_type = adapter_type
        self.project_dir = Path(project_dir) if project_dir is not None else None
        self.asset_key_fn = asset_key_fn
        self.artifact_key = artifact_key or _artifact_key(f"dbt-{command}-results")
        self.tags = frozenset({"dbt", *tags})
        self.results: dict[str, NodeResult] = {}
        self._lock = threading.Lock()

    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Use ``manifest`` (the runner loads it when dbt writes it, before any node runs)."""
        self.manifest = manifest

    @property
    def _adapter(self) -> str:
        metadata = self.manifest.get("metadata") or {}
        return self.adapter_type or str(metadata.get("adapter_type") or "dbt")

    def node(self, unique_id: str) -> Mapping[str, Any] | None:
        """The manifest's node, source, snapshot or unit test called ``unique_id``."""
        for section in ("nodes", "sources", "unit_tests"):
            found = (self.manifest.get(section) or {}).get(unique_id)
            if found is not None:
                return dict(found)
        return None

    def _asset_of(self, node: Mapping[str, Any] | None) -> str | None:
        if node is None:
            return None
        kind = node.get("resource_type")
        if kind in ASSET_TYPES or kind == "source":
            return self.asset_key_fn(node, self._adapter)
        if kind in TEST_TYPES:
            attached = node.get("attached_node")
            if isinstance(attached, str) and attached:
                target = self.node(attached)
            else:
                parents = [p for p in (node.get("depends_on") or {}).get("nodes") or ()
                           if p.split(".", 1)[0] in ASSET_TYPES | {"source"}]
                target = self.node(parents[0]) if len(parents) == 1 else None
            if target is not None and target.get("resource_type") in ASSET_TYPES | {"source"}:
                return self.asset_key_fn(target, self._adapter)
        return None

    def _compiled_path(self, node: Mapping[str, Any] | None) -> str | None:
        """Where dbt wrote the node's compiled SQL: the manifest's ``compiled_path`` (the
        one written once nodes ran), else ``<target>/compiled/<package>/<file>`` (dbt's
        layout; the manifest written before the run has no compiled paths yet)."""
        if node is None:
            return None
        compiled = node.get("compiled_path")
        if compiled:
            return str(self.project_dir / compiled) if self.project_dir else str(compiled)
        package, source_file = node.get("package_name"), node.get("original_file_path")
        if self.target_path is None or not package or not source_file or node.get(
                "resource_type") == "source":
            return None
        return str(self.target_path / "compiled" / str(package) / str(source_file))

    def record_result(self, result: Mapping[str, Any], *,
                      live: bool = False) -> NodeResult | None:
        """Record one result as a task run, unless this invocation already recorded it
        (``live``: it comes from an event as the node finished)."""
        unique_id = str(result.get("unique_id") or "")
        if not unique_id:
            return None
        with self._lock:
            if unique_id in self.results:
                return self.results[unique_id]
        status = str(result.get("status") or "")
        outcome = OUTCOMES.get(status, "failed")
        started, ended = _span(result.get("timing") or ())
        if ended is None:  # skipped nodes (and some errors) have no timing
            ended = time.time()
        if outcome == "not_ready":
            started = None
        elif started is None or started > ended:
            started = ended
        node = self.node(unique_id)
        kind = str((node or {}).get("resource_type") or unique_id.split(".", 1)[0])
        message = result.get("message") or result.get("error")
        adapter_response = result.get("adapter_response") or {}
        rows = adapter_response.get("rows_affected")
        failures = result.get("failures")
        compiled = self._compiled_path(node)
        key = self._asset_of(node)
        text = str(message) if message else None
        if status == "warn":
            text = f"warn: {text}" if text else "warn"
        elif outcome == "not_ready":
            text = text or "skipped: an upstream node did not succeed"
        metadata: dict[str, Any] = {"resourceType": kind, "status": status}
        for name, value in (("rowsAffected", rows), ("failures", failures),
                            ("compiledPath", compiled), ("executionTime",
                                                         result.get("execution_time")),
                            ("asset", key if kind in TEST_TYPES else None)):
            if value is not None:
                metadata[name] = value
        entry = NodeResult(unique_id, kind, status, outcome, text, started, ended,
                           rows if isinstance(rows, int) else None,
                           failures if isinstance(failures, int) else None,
                           compiled, key, live=live)
        with self._lock:
            if unique_id in self.results:
                return self.results[unique_id]
            self.results[unique_id] = entry
        error_type = ("DbtTestFailure" if status == "fail" else "DbtError") if (
            outcome == "failed") else None
        entry.task_run = headwater.record_task_run(
            unique_id, outcome=outcome, start_time=started, end_time=ended, message=text,
            error_type=error_type, task_key=f"dbt.{unique_id}", tags=self.tags,
            metadata=metadata)
        return entry

    def finish(self, run_results: Mapping[str, Any] | None, *,
               create_artifact: bool = True) -> DbtReport:
        """Record the results not recorded yet, then the assets and the table artifact."""
        for result in (run_results or {}).get("results") or ():
            self.record_result(result)
        results = list(self.results.values())
        tests: dict[str, dict[str, str]] = {}
        for entry in results:
            if entry.resource_type in TEST_TYPES and entry.asset_key:
                tests.setdefault(entry.asset_key, {})[entry.unique_id] = entry.status
        assets: list[dict[str, Any]] = []
        invocation = str(((run_results or {}).get("metadata") or {}).get("invocation_id")
                         or (self.manifest.get("metadata") or {}).get("invocation_id") or "")
        for entry in results:
            if (entry.resource_type not in ASSET_TYPES or entry.outcome != "completed"
                    or entry.asset_key is None or entry.task_run is None):
                continue
            node = self.node(entry.unique_id) or {}
            upstream = []
            for parent_id in (node.get("depends_on") or {}).get("nodes") or ():
                parent = self.node(parent_id)
                if parent is not None and parent.get("resource_type") in (
                        ASSET_TYPES | {"source"}):
                    upstream.append(self.asset_key_fn(parent, self._adapter))
            checksum = str((node.get("checksum") or {}).get("checksum") or "")
            version = hashlib.sha256(
                f"{checksum}:{invocation}:{entry.unique_id}".encode()).hexdigest()[:16]
            metadata: dict[str, Any] = {"dbtUniqueId": entry.unique_id,
                                        "materialized": (node.get("config") or {}).get(
                                            "materialized", entry.resource_type)}
            if entry.rows_affected is not None:
                metadata["rowsAffected"] = entry.rows_affected
            if node.get("relation_name"):
                metadata["relation"] = node["relation_name"]
            if entry.asset_key in tests:
                metadata["tests"] = tests[entry.asset_key]
            assets.append(headwater.record_asset_materialization(
                entry.asset_key, task_run=entry.task_run, version=version, upstream=upstream,
                metadata=metadata))
        artifact_id = None
        if create_artifact and results:
            artifact_id = headwater.create_table_artifact(
                [_row(entry) for entry in results], key=self.artifact_key,
                description=f"dbt {self.command}: {len(results)} node(s), "
                            f"{sum(r.failed for r in results)} failed, "
                            f"{sum(r.outcome == 'not_ready' for r in results)} skipped")
        return DbtReport(self.command, results, assets, artifact_id)


def _row(entry: NodeResult) -> dict[str, Any]:
    duration = (entry.ended - entry.started) if entry.started is not None else None
    return {
        "node": entry.unique_id,
        "type": entry.resource_type,
        "status": entry.status,
        "seconds": round(duration, 3) if duration is not None else None,
        "rows_affected": entry.rows_affected,
        "failures": entry.failures,
        "message": entry.message,
    }


def report_results(manifest: Mapping[str, Any], run_results: Mapping[str, Any], *,
                   command: str | None = None, adapter_type: str | None = None,
                   project_dir: str | Path | None = None,
                   asset_key_fn: AssetKeyFn = asset_key, artifact_key: str | None = None,
                   tags: Iterable[str] = (), create_artifact: bool = True) -> DbtReport:
    """Record a finished dbt invocation from its ``manifest.json`` and ``run_results.json``
    (or ``sources.json``) documents into the current flow run; returns what was recorded.

    ``command`` names it in the artifact (default: the ``args.which`` dbt wrote, e.g.
    ``build``); ``adapter_type`` overrides the manifest's for asset keys; ``project_dir``
    makes compiled paths absolute. It does not raise when nodes failed: the caller decides
    (:attr:`DbtReport.failed`).
    """
    which = command or str((run_results.get("args") or {}).get("which") or "dbt")
    reporter = DbtReporter(which, manifest, adapter_type=adapter_type,
                           project_dir=project_dir, asset_key_fn=asset_key_fn,
                           artifact_key=artifact_key, tags=tags)
    return reporter.finish(run_results, create_artifact=create_artifact)
