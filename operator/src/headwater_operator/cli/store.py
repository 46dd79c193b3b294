"""Reading the run store for the CLI: which attempt's record, and why one cannot be read.

A FlowRun names each attempt's record in ``status.runRecords`` (``{attempt, url,
written?}``, the attempt directory's full location); the layout below that is
:mod:`headwater.runstore`'s, and every byte is read through it or through
:func:`headwater.results.resolve_storage` — never fsspec directly, so the CLI reads
exactly what the SDK wrote, with the user's own credentials.

What it must respect: a store failure is never reported as an API-server failure (the
commands' :func:`~headwater_operator.cli.common.guarded` turns a bare ``OSError`` into
"cannot reach the Kubernetes API server"), so every read here turns the backend's
exception — a missing record, a missing fsspec driver, a refused permission, a network
error — into :class:`StoreUnreadable`, whose message names the URL and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from headwater import runstore

from headwater_operator.cli.common import EXIT_USAGE, CliError

T = TypeVar("T")

NO_STORE = ("no run store is configured for it, so its task runs, logs and artifacts were "
            "not kept: set Deployment.spec.runStore.url or spec.resultStorage.url (or the "
            "operator's --run-store / the chart's runStore.url)")
"""Why a FlowRun has no ``status.runRecords``, and the fix."""


class StoreUnreadable(CliError):
    """A record or log that could not be read; ``message`` names the URL and the fix."""


def explain(url: str, exc: BaseException) -> str:
    """Why reading ``url`` failed, in words, with what to do about it."""
    if isinstance(exc, runstore.RecordNotFound):
        return (f"{exc}: the attempt has not flushed its first record yet (it does within "
                "2 s of starting), its pod could not write it (a RunRecordNotWritten Event "
                "says so), or the record was deleted")
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ImportError) or "needs fsspec" in text or "pip install" in text:
        return (f"cannot read the run store at {url}: {text}; install the filesystem's "
                "driver where the CLI runs (pip install 'headwater[fsspec]' plus s3fs for "
                "s3://, gcsfs for gs://, adlfs for az://)")
    if "Protocol not known" in text:  # fsspec: no driver registers this URL scheme
        return (f"cannot read the run store at {url}: {text}; check the URL's scheme, or "
                "install the fsspec driver that provides it where the CLI runs")
    if isinstance(exc, PermissionError):
        return (f"permission denied reading the run store at {url} ({text}); the CLI reads "
                "it with your own credentials (AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, "
                "…): grant them read access to it")
    if isinstance(exc, ValueError):  # not JSON, or not an object
        return f"{url} holds no readable run record ({text})"
    return (f"cannot read the run store at {url} ({type(exc).__name__}: {text}); check the "
            "network and your credentials for it")


def guard_store(url: str, read: Callable[[], T]) -> T:
    """``read()``, with any failure of the storage backend as :class:`StoreUnreadable`.

    Storage drivers (s3fs, gcsfs, adlfs, …) raise their own exception types, so anything
    but an interrupt counts as "the store could not be read".
    """
    try:
        return read()
    except Exception as exc:  # any driver's own error type: see the docstring
        raise StoreUnreadable(explain(url, exc)) from exc


@dataclass(frozen=True)
class RecordRef:
    """One ``status.runRecords`` entry."""

    attempt: int
    url: str
    written: bool | None


def record_refs(run: Mapping[str, Any]) -> list[RecordRef]:
    """The FlowRun's ``status.runRecords``, by attempt (malformed entries skipped)."""
    refs: dict[int, RecordRef] = {}
    for entry in (run.get("status") or {}).get("runRecords") or ():
        if not isinstance(entry, Mapping):
            continue
        attempt, url = entry.get("attempt"), entry.get("url")
        if isinstance(attempt, int) and isinstance(url, str) and url:
            written = entry.get("written")
            refs[attempt] = RecordRef(attempt, url,
                                      written if isinstance(written, bool) else None)
    return [refs[number] for number in sorted(refs)]


def _label(run: Mapping[str, Any]) -> str:
    meta = run.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"FlowRun {namespace}/{meta.get('name')}" if namespace else f"FlowRun {meta.get('name')}"


def pick_record(run: Mapping[str, Any], attempt: int | None) -> RecordRef:
    """The entry of ``attempt`` (default: the latest one that has an entry).

    Raises :class:`CliError` saying why there is none: no store configured (exit 1), or
    an attempt that does not exist (exit 2).
    """
    refs = record_refs(run)
    if not refs:
        started = int((run.get("status") or {}).get("attempts") or 0)
        if not started:
            raise CliError(f"{_label(run)} has not started a pod yet, so it has no run "
                           "record; wait for it to start")
        raise CliError(f"{_label(run)} has no run record: {NO_STORE}")
    if attempt is None:
        return refs[-1]
    for ref in refs:
        if ref.attempt == attempt:
            return ref
    numbers = ", ".join(str(ref.attempt) for ref in refs)
    raise CliError(f"{_label(run)} has no run record for attempt {attempt}; its records are "
                   f"for attempt(s) {numbers}", EXIT_USAGE)


def read_record(ref: RecordRef) -> dict[str, Any]:
    """The record at ``ref`` (:class:`StoreUnreadable` naming the URL and fix otherwise)."""
    return guard_store(ref.url, lambda: runstore.read_record(ref.url))


def log_lines(url: str) -> Iterator[dict[str, Any]]:
    """The attempt's log lines, read through :func:`guard_store` segment by segment."""
    lines = runstore.iter_log_lines(url)
    while True:
        line = guard_store(url, lambda: next(lines, None))
        if line is None:
            return
        yield line


def flow_run_names(record: Mapping[str, Any]) -> dict[str, str]:
    """``{flow run id: name}`` for the record's flow run and all its subflow runs."""
    names: dict[str, str] = {}
    stack = [record.get("flowRun") or {}]
    while stack:
        flow_run = stack.pop()
        if isinstance(flow_run, Mapping):
            if flow_run.get("id"):
                names[str(flow_run["id"])] = str(flow_run.get("name") or flow_run["id"])
            stack.extend(flow_run.get("subflowRuns") or ())
    return names
