"""Running dbt Core inside a flow: dbt's programmatic runner, each node reported as it ends.

:class:`DbtCoreRunner` invokes ``dbt.cli.main.dbtRunner`` in this process (no
subprocess, the same Python and the same working directory as the flow) with a callback
on dbt's structured events:

* ``ArtifactWritten`` for ``manifest.json`` (dbt writes it after parsing, before any node
  runs) loads the manifest, so each node's relation, dependencies and compiled path are
  known while the run goes on;
* ``NodeFinished`` carries the node's result (status, timing, message, adapter
  response): it becomes a task run of the flow run at once, so ``headwater describe
  run`` shows dbt's progress node by node.

After the invocation, ``run_results.json`` (``sources.json`` for ``source freshness``)
fills in any node no event reported, then the assets (with lineage from the manifest and
the tests on them) and the table artifact are recorded: :meth:`DbtReporter.finish`, the
same path dbt Cloud's documents take.

What it must respect:

* dbt's callbacks run on dbt's worker threads, which do not carry the flow run's
  context: each report runs in a copy of the caller's context, one at a time.
* A callback that fails must not break dbt's run: the failure is logged and the node is
  reported from ``run_results.json`` at the end.
* dbtRunner is not safe to run twice at once in one process (dbt keeps global state):
  invocations are serialised by a process-wide lock.
* By default a failed node (an erroring model, a failing test) raises
  :class:`DbtNodesFailed` after everything is recorded, which fails the flow run;
  ``raise_on_failure=False`` returns the report instead. An invocation dbt could not
  run at all (a parse error, a missing profile) raises :class:`DbtInvocationError` always.
"""

from __future__ import annotations

import contextvars
import json
import struct
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from headwater_dbt.report import AssetKeyFn, DbtReport, DbtReporter, asset_key

COMMANDS = ("build", "run", "test", "seed", "snapshot", "source freshness", "retry",
            "compile", "parse", "deps", "ls", "run-operation")
"""The dbt commands :meth:`DbtCoreRunner.invoke` accepts."""
_FULL_REFRESH = frozenset({"build", "run", "seed"})
_SELECTING = frozenset({"build", "run", "test", "seed", "snapshot", "source freshness",
                        "compile", "ls"})
_INVOKE_LOCK = threading.Lock()


class DbtError(Exception):
    """Base class of headwater-dbt's errors."""


class DbtInvocationError(DbtError):
    """dbt could not run the command at all (parse error, bad profile, bad arguments)."""


class DbtNodesFailed(DbtError):
    """Nodes failed; :attr:`report` holds every result (raised after recording them)."""

    def __init__(self, report: DbtReport) -> None:
        self.report = report
        names = ", ".join(r.unique_id for r in report.failed[:10])
        more = f" and {len(report.failed) - 10} more" if len(report.failed) > 10 else ""
        super().__init__(
            f"dbt {report.command}: {len(report.failed)} node(s) failed: {names}{more}; "
            f"{len(report.skipped)} skipped. Re-run only those with DbtCoreRunner.retry() "
            "(dbt retry), or pass raise_on_failure=False to let the flow go on")


def _window_value(value: str | date | datetime) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise TypeError(f"start_date/end_date must be a date, a datetime or an ISO string, "
                    f"not {type(value).__name__}")


def _plain(value: Any) -> Any:
    """Struct numbers arrive as floats: ``12.0`` rows affected is ``12``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class DbtCoreRunner:
    """Runs dbt Core commands on one project from inside a flow.

    ``project_dir`` and ``profiles_dir`` default to dbt's own defaults (the current
    directory, then ``~/.dbt``); ``target``, ``threads`` and ``vars`` apply to every
    command unless a call overrides them. ``target_path`` is where dbt writes
    ``manifest.json`` and ``run_results.json`` (dbt's default: ``<project>/target``); a
    :meth:`retry` reads the previous ``run_results.json`` there.
    """

    def __init__(self, project_dir: str | Path = ".", *,
                 profiles_dir: str | Path | None = None, target: str | None = None,
                 threads: int | None = None, vars: Mapping[str, Any] | None = None,
                 target_path: str | Path | None = None, raise_on_failure: bool = True,
                 asset_key_fn: AssetKeyFn = asset_key, tags: Sequence[str] = (),
                 extra_args: Sequence[str] = ()) -> None:
        self.project_dir = Path(project_dir).resolve()
        if not (self.project_dir / "dbt_project.yml").is_file():
            raise ValueError(f"project_dir {str(project_dir)!r} has no dbt_project.yml: pass "
                             "the folder of the dbt project")
        self.profiles_dir = Path(profiles_dir).resolve() if profiles_dir is not None else None
        self.target = target
        self.threads = threads
        self.vars = dict(vars or {})
        self.target_path = (Path(target_path).resolve() if target_path is not None
                            else self.project_dir / "target")
        self.raise_on_failure = raise_on_failure
        self.asset_key_fn = asset_key_fn
        self.tags = tuple(tags)
        self.extra_args = tuple(extra_args)

    # --- commands -----------------------------------------------------------------------

    def build(self, **options: Any) -> DbtReport:
        """``dbt build``: seeds, models, snapshots and tests in dependency order."""
        return self.invoke("build", **options)

    def run(self, **options: Any) -> DbtReport:
        """``dbt run``: models."""
        return self.invoke("run", **options)

    def test(self, **options: Any) -> DbtReport:
        """``dbt test``: data and unit tests."""
        return self.invoke("test", **options)

    def seed(self, **options: Any) -> DbtReport:
        """``dbt seed``: load the CSV seeds."""
        return self.invoke("seed", **options)

    def snapshot(self, **options: Any) -> DbtReport:
        """``dbt snapshot``."""
        return self.invoke("snapshot", **options)

    def source_freshness(self, **options: Any) -> DbtReport:
        """``dbt source freshness``: each source's freshness check a task run."""
        return self.invoke("source freshness", **options)

    def retry(self, **options: Any) -> DbtReport:
        """``dbt retry``: re-run only the nodes that failed or were skipped in the
        previous invocation (from its ``run_results.json`` in ``target_path``), with that
        invocation's arguments."""
        return self.invoke("retry", **options)

    # --- the invocation ---------------------------------------------------------------------

    def args(self, command: str, *, select: Sequence[str] | str | None = None,
             exclude: Sequence[str] | str | None = None,
             vars: Mapping[str, Any] | None = None, target: str | None = None,
             threads: int | None = None, full_refresh: bool = False,
             start_date: str | date | datetime | None = None,
             end_date: str | date | datetime | None = None,
             extra_args: Sequence[str] = ()) -> list[str]:
        """The command line given to dbtRunner for ``command`` (see :meth:`invoke`)."""
        if command not in COMMANDS:
            raise ValueError(f"command {command!r} is not a dbt command headwater-dbt runs: "
                             f"use one of {', '.join(COMMANDS)}")
        if full_refresh and command not in _FULL_REFRESH:
            raise ValueError(f"full_refresh applies to build, run and seed, not {command!r}")
        if (select or exclude) and command not in _SELECTING:
            raise ValueError(f"select/exclude do not apply to {command!r}"
                             + (": dbt retry re-runs the previous invocation's failed and "
                                "skipped nodes" if command == "retry" else ""))
        args = [*command.split(), "--project-dir", str(self.project_dir)]
        if self.profiles_dir is not None:
            args += ["--profiles-dir", str(self.profiles_dir)]
        args += ["--target-path", str(self.target_path)]
        chosen_target = target or self.target
        if chosen_target:
            args += ["--target", chosen_target]
        chosen_threads = threads if threads is not None else self.threads
        if chosen_threads is not None:
            args += ["--threads", str(chosen_threads)]
        for flag, value in (("--select", select), ("--exclude", exclude)):
            if value:
                args += [flag, *([value] if isinstance(value, str) else value)]
        merged = {**self.vars, **(vars or {})}
        if start_date is not None:
            merged["start_date"] = _window_value(start_date)
        if end_date is not None:
            merged["end_date"] = _window_value(end_date)
        if merged and command != "retry":
            args += ["--vars", json.dumps(merged, default=str)]
        if full_refresh:
            args.append("--full-refresh")
        return [*args, *self.extra_args, *extra_args]

    def invoke(self, command: str, *, raise_on_failure: bool | None = None,
               artifact_key: str | None = None, **options: Any) -> DbtReport:
        """Run ``dbt <command>`` and record it in the current flow run.

        Options: ``select``, ``exclude`` (a selector string or a list), ``vars`` (merged
        over the runner's), ``target``, ``threads``, ``full_refresh``, ``start_date`` and
        ``end_date`` (a backfill window: passed to the models as the ``start_date`` and
        ``end_date`` vars), ``extra_args`` (more dbt flags). Returns the
        :class:`DbtReport`; raises :class:`DbtNodesFailed` when a node failed unless
        ``raise_on_failure`` (default: the runner's) is false.
        """
        from dbt.cli.main import dbtRunner

        args = self.args(command, **options)
        reporter = DbtReporter(command, project_dir=self.project_dir,
                               asset_key_fn=self.asset_key_fn, artifact_key=artifact_key,
                               tags=self.tags, target_path=self.target_path)
        context = contextvars.copy_context()
        context_lock = threading.Lock()
        results_file = self.target_path / (
            "sources.json" if command == "source freshness" else "run_results.json")
        on_event = _EventHandler(reporter, context, context_lock)
        with _INVOKE_LOCK:
            outcome = dbtRunner(callbacks=[on_event]).invoke(args)
        if outcome.exception is not None and not reporter.results:
            raise DbtInvocationError(
                f"dbt {command} could not run: {outcome.exception}") from outcome.exception
        if not reporter.manifest:
            manifest_file = self.target_path / "manifest.json"
            if manifest_file.is_file():
                reporter.set_manifest(json.loads(manifest_file.read_text()))
        documents: Mapping[str, Any] | None = None
        if results_file.is_file():
            documents = json.loads(results_file.read_text())
            if not _same_invocation(documents, reporter, on_event.invocation_id):
                documents = None
        report = reporter.finish(documents)
        should_raise = self.raise_on_failure if raise_on_failure is None else raise_on_failure
        if should_raise and (report.failed or (outcome.exception is not None)):
            if not report.failed:
                raise DbtInvocationError(f"dbt {command} failed: {outcome.exception}")
            raise DbtNodesFailed(report)
        return report


def _same_invocation(document: Mapping[str, Any], reporter: DbtReporter,
                     invocation_id: str | None) -> bool:
    """Whether ``document`` was written by this invocation (not left by an earlier one)."""
    written_by = (document.get("metadata") or {}).get("invocation_id")
    return invocation_id is None or written_by == invocation_id


class _EventHandler:
    """dbt's callback: loads the manifest when dbt writes it, reports finished nodes."""

    def __init__(self, reporter: DbtReporter, context: contextvars.Context,
                 lock: threading.Lock) -> None:
        self.reporter = reporter
        self.context = context
        self.lock = lock
        self.invocation_id: str | None = None
        self.failed_once = False

    def __call__(self, event: Any) -> None:
        name = event.info.name
        if name == "NodeFinished":
            self._report(event)
        elif name == "ArtifactWritten" and not self.reporter.manifest:
            self._load_manifest(event)
        elif self.invocation_id is None and event.info.invocation_id:
            self.invocation_id = str(event.info.invocation_id)

    def _load_manifest(self, event: Any) -> None:
        self.invocation_id = str(event.info.invocation_id) or None
        if event.data.artifact_type == "WritableManifest":
            try:
                with open(event.data.artifact_path) as stream:
                    self.reporter.set_manifest(json.load(stream))
            except (OSError, ValueError) as exc:
                self._warn(exc)

    def _report(self, event: Any) -> None:
        try:
            entry = _result_entry(event.data)
            with self.lock:
                self.context.run(self.reporter.record_result, entry, live=True)
        except Exception as exc:  # never break dbt's run: run_results.json reports it
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if self.failed_once:
            return
        self.failed_once = True
        import logging

        logging.getLogger("headwater_dbt").warning(
            "Could not report a dbt event as it happened (%s); the nodes are reported from "
            "run_results.json when dbt ends", exc)


def _result_entry(data: Any) -> dict[str, Any]:
    """A ``NodeFinished`` event's result as a ``run_results.json`` result.

    Read field by field from dbt's ``RunResultMsg`` (proto3: an unset string is ``""``, an
    unset number ``0``; ``MessageToDict`` left those out, and so does this), which costs a
    tenth of converting the whole message with ``json_format``. Timestamps become Unix
    seconds, which :func:`headwater_dbt.report._time` takes as well as ISO text.
    """
    result = data.run_result
    timing = []
    for step in result.timing_info:
        item: dict[str, Any] = {"name": step.name}
        for name in ("started_at", "completed_at"):
            if step.HasField(name):
                stamp = getattr(step, name)
                item[name] = stamp.seconds + stamp.nanos / 1e9
        timing.append(item)
    entry: dict[str, Any] = {
        "unique_id": data.node_info.unique_id,
        "status": result.status or data.node_info.node_status,
        "message": result.message or None,
        "timing": timing,
        "adapter_response": _struct(result.adapter_response)
        if result.HasField("adapter_response") else {},
        "execution_time": _float32(result.execution_time) or None,
    }
    if result.num_failures:
        entry["failures"] = result.num_failures
    return entry


def _float32(value: float) -> float:
    """A proto ``float`` field's value as its shortest decimal (``0.33086538``, not
    ``0.33086538314819336``), the number dbt writes in ``run_results.json``."""
    for digits in range(6, 10):
        shortest = float(f"{value:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", shortest))[0] == value:
            return shortest
    return value


def _struct(message: Any) -> dict[str, Any]:
    """A ``google.protobuf.Struct`` as plain values (``12.0`` rows affected is ``12``)."""
    from google.protobuf.json_format import MessageToDict

    plain: dict[str, Any] = {}
    for key, value in message.items():
        if isinstance(value, str | bool | float | int) or value is None:
            plain[key] = _plain(value)
        else:  # a nested Struct or ListValue: rare in an adapter response
            plain[key] = MessageToDict(value)
    return plain


def run_dbt(command: str, *, project_dir: str | Path = ".",
            profiles_dir: str | Path | None = None, raise_on_failure: bool = True,
            **options: Any) -> DbtReport:
    """Run one dbt command in the current flow run: ``run_dbt("build", select="tag:daily")``.

    A shortcut for ``DbtCoreRunner(project_dir, profiles_dir=...).invoke(command,
    **options)``; see :meth:`DbtCoreRunner.invoke` for the options.
    """
    runner = DbtCoreRunner(project_dir, profiles_dir=profiles_dir,
                           raise_on_failure=raise_on_failure)
    return runner.invoke(command, **options)
