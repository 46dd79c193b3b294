"""Run records: the inside of a flow-run attempt, written to the run store as it happens.

One :class:`Recorder` per root flow run turns the in-memory run tree (flow runs, task
runs, artifacts, asset materializations) into ``record.json`` and collects the run's log
lines into JSON Lines segments, at the location :mod:`headwater.runstore` names. The
schema is ``headwater/data/run-record.schema.json``; ``docs/run-store.md`` says what a
reader may rely on.

What it must respect:

* **The run never pays for it on the hot path.** The engine only keeps what it keeps
  anyway (states, ids, upstream task runs); the record is built here, from a daemon
  thread at most every :data:`FLUSH_INTERVAL` seconds and once when the run ends. A
  finished task run never changes, so its JSON is built once and reused by every later
  flush; the final flush of a 10,000-task run stays well under 100 ms.
* **A store outage never fails the flow.** Every write is caught: the first failure is
  logged once as a warning (on the pod's output, not into the record it could not write),
  later flushes retry, and :attr:`Recorder.written` tells the run summary whether the
  final record made it (``recordWritten``).
* **No secret leaves the process**: parameters, messages, tracebacks, artifacts and log
  lines pass through :func:`headwater.secrets.redact` before they are written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from headwater import runstore
from headwater.secrets import redact
from headwater.states import State

if TYPE_CHECKING:
    from headwater.context import FlowRun, RunTree, TaskRun

FLUSH_INTERVAL = 2.0
"""Seconds between incremental flushes while the run runs (the issue's "at most every 2 s")."""
FINAL_FLUSH_TIMEOUT = 10.0
"""How long the end of a run waits for its final record before reporting it not written.

A 5 MB record takes well under a second on a working store; an unreachable S3 endpoint
holds one call for 30 s to minutes with botocore's and s3fs's default retries
(docs/run-store.md, "Keep failures short"), and the summary, which a cancelled pod must
write within its grace period, comes first."""
SEGMENT_BYTES = 1 << 20
"""A log segment is rewritten while it is smaller than this; then the next one starts."""
MAX_PENDING_LINES = 100_000
"""Log lines held for a store that does not take them; beyond this, lines are counted as
dropped rather than growing the pod's memory without bound."""


# --- JSON pieces ---------------------------------------------------------------------------
#
# Task runs are by far the most numerous part of a record, so their JSON is written
# directly with f-strings (strings escaped by the json module's C encoder) rather than
# through dictionaries and ``json.dumps``: a 10,000-task record is built in tens of
# milliseconds. Everything else goes through ``json.dumps``.

_quote: Callable[[str], str] = json.encoder.encode_basestring
_ms_cache: dict[int, str] = {}


def iso_ms(ts: float) -> str:
    """``ts`` (Unix seconds) as RFC 3339 UTC with milliseconds: ``2026-12-07T16:51:29.123Z``.

    Formatting dominates building a large record, and a run's timestamps crowd into few
    milliseconds, so formatted values are cached (the cache is bounded).
    """
    millis = int(ts * 1000)
    text = _ms_cache.get(millis)
    if text is None:
        if len(_ms_cache) > 65536:
            _ms_cache.clear()
        second, ms = divmod(millis, 1000)
        text = _ms_cache[millis] = (
            f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(second))}.{ms:03d}Z")
    return text


def _state(state: State[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": state.type.value, "name": state.name,
                           "time": iso_ms(state.timestamp)}
    if state.message:
        out["message"] = redact(state.message)
    return out


_state_heads: dict[tuple[Any, str], str] = {}


def _state_text(state: State[Any]) -> str:
    head = _state_heads.get((state.type, state.name))
    if head is None:
        head = _state_heads[(state.type, state.name)] = (
            f'{{"type":"{state.type.value}","name":{_quote(state.name)},"time":"')
    if state.message:
        return f'{head}{iso_ms(state.timestamp)}","message":{_quote(redact(state.message))}}}'
    return f'{head}{iso_ms(state.timestamp)}"}}'


def _redacted(value: Any) -> Any:
    """A JSON-compatible copy of ``value`` with secret values masked."""
    return json.loads(redact(json.dumps(value, default=str)))


def _attempts_text(task_run: TaskRun, history: list[State[Any]]) -> str:
    """One entry per attempt: it starts at Running/Retrying and ends at the next state."""
    errors = task_run.errors
    parts: list[str] = []
    number = 0
    start: str | None = None
    for state in history:
        name = state.name
        if name == "Running" or name == "Retrying":  # noqa: PLR1714 - hot loop
            if start is not None:  # a state history that never ended the attempt
                parts.append(f'{{"number":{number},"state":"Running","startTime":"{start}"}}')
            number += 1
            start = iso_ms(state.timestamp)
        elif start is not None:
            ended = "Failed" if name == "AwaitingRetry" else name
            error = errors.get(number) if errors else None
            extra = ""
            if error is not None:
                error = dict(error)
                if name == "AwaitingRetry":
                    ended = error.pop("state", "Failed")
                else:
                    error.pop("state", None)
                extra = f',"error":{json.dumps(error, separators=(",", ":"))}'
            parts.append(f'{{"number":{number},"state":{_quote(ended)},"startTime":"{start}",'
                         f'"endTime":"{iso_ms(state.timestamp)}"{extra}}}')
            start = None
    if start is not None:
        parts.append(f'{{"number":{number},"state":"Running","startTime":"{start}"}}')
    return ",".join(parts)


def _ids(runs: list[TaskRun]) -> str:
    return ",".join(f'"{run_id}"' for run_id in dict.fromkeys(run.id for run in runs))


_quoted_keys: dict[str, str] = {}
_plain_bodies: dict[tuple[int, int, int], str] = {}
"""The states and attempt of a plain task run by its three timestamps (in ms): the task
runs of a fast flow share them by the dozen, and this is most of a task run's text."""


def _plain_body(pending: float, running: float, done: float) -> str:
    started, ended = iso_ms(running), iso_ms(done)
    return (f'"state":"Completed","stateHistory":[{{"type":"PENDING","name":"Pending",'
            f'"time":"{iso_ms(pending)}"}},{{"type":"RUNNING","name":"Running",'
            f'"time":"{started}"}},{{"type":"COMPLETED","name":"Completed",'
            f'"time":"{ended}"}}],"attempts":[{{"number":1,"state":"Completed",'
            f'"startTime":"{started}","endTime":"{ended}"}}]')


def task_run_text(task_run: TaskRun, root_id: str) -> str:
    """The record of one task run, as compact JSON text."""
    history = list(task_run.state_history)
    key = _quoted_keys.get(task_run.task_key)
    if key is None:
        key = _quoted_keys[task_run.task_key] = _quote(task_run.task_key)
    head = f'{{"id":"{task_run.id}","name":{_quote(task_run.name)},"taskKey":{key}'
    if task_run.flow_run_id and task_run.flow_run_id != root_id:
        head = f'{head},"flowRunId":"{task_run.flow_run_id}"'
    if len(history) == 3 and task_run.errors is None:
        # Nearly every task run of a large flow ran once and completed: one step.
        pending, running, done = history
        if (pending.name == "Pending" and running.name == "Running"
                and done.name == "Completed" and not (
                    pending.message or running.message or done.message)):
            times = (int(pending.timestamp * 1000), int(running.timestamp * 1000),
                     int(done.timestamp * 1000))
            body = _plain_bodies.get(times)
            if body is None:
                body = _plain_body(pending.timestamp, running.timestamp, done.timestamp)
                if len(_plain_bodies) > 8192:
                    _plain_bodies.clear()
                _plain_bodies[times] = body
            if not (task_run.map_index is not None or task_run.tags or task_run.cache_key
                    or task_run.result_location or task_run.upstream or task_run.wait_for
                    or task_run.metadata):
                return f"{head},{body}}}"
            return f"{head},{body}{_extras(task_run, history)}}}"
    body = (f'"state":{_quote(history[-1].name)},"stateHistory":['
            f'{",".join([_state_text(s) for s in history])}],'
            f'"attempts":[{_attempts_text(task_run, history)}]')
    return f"{head},{body}{_extras(task_run, history)}}}"


def _extras(task_run: TaskRun, history: list[State[Any]]) -> str:
    """The optional members of a task run's record."""
    out: list[str] = []
    if task_run.map_index is not None:
        out.append(f',"mapIndex":{task_run.map_index}')
    if task_run.tags:
        out.append(f',"tags":{json.dumps(sorted(task_run.tags))}')
    if task_run.cache_key is not None:
        hit = "true" if history[-1].name == "Cached" else "false"
        out.append(f',"cacheKey":{_quote(task_run.cache_key)},"cacheHit":{hit}')
    if task_run.result_location is not None:
        out.append(f',"resultLocation":{_quote(task_run.result_location)}')
    if task_run.upstream:
        out.append(f',"upstream":[{_ids(task_run.upstream)}]')
    if task_run.wait_for:
        out.append(f',"waitFor":[{_ids(task_run.wait_for)}]')
    if task_run.metadata:
        out.append(f',"metadata":{redact(json.dumps(task_run.metadata, default=str))}')
    return "".join(out)


def _subflow_call_json(flow_run: FlowRun, root_id: str) -> dict[str, Any]:
    """The task run that stands for a subflow call in its parent flow run."""
    history = list(flow_run.state_history)
    out: dict[str, Any] = {
        "id": flow_run.parent_task_run_id,
        "name": flow_run.parent_task_run_name or flow_run.flow_name,
        "taskKey": flow_run.flow_name,
        "state": history[-1].name,
        "stateHistory": [_state(s) for s in history],
        "attempts": [],
        "subflowRunId": flow_run.id,
    }
    if flow_run.parent_flow_run_id != root_id:
        out["flowRunId"] = flow_run.parent_flow_run_id
    return out


def flow_run_json(flow_run: FlowRun, children: dict[str, list[FlowRun]]) -> dict[str, Any]:
    """The record of one flow run with its subflow runs nested."""
    history = list(flow_run.state_history)
    out: dict[str, Any] = {
        "id": flow_run.id,
        "name": flow_run.name,
        "flow": flow_run.flow_name,
        "parameters": _redacted(flow_run.parameters),
        "tags": sorted(flow_run.tags),
        "state": history[-1].name,
        "stateHistory": [_state(s) for s in history],
        "runCount": flow_run.run_count,
        "startTime": iso_ms(flow_run.start_time) if flow_run.start_time else None,
        "endTime": iso_ms(flow_run.end_time) if flow_run.end_time else None,
        "subflowRuns": [flow_run_json(child, children) for child in children.get(flow_run.id, ())],
    }
    if flow_run.deployment_name:
        out["deployment"] = flow_run.deployment_name
    if flow_run.parent_flow_run_id:
        out["parentFlowRunId"] = flow_run.parent_flow_run_id
    if flow_run.parent_task_run_id:
        out["parentTaskRunId"] = flow_run.parent_task_run_id
    return out


# --- log lines -----------------------------------------------------------------------------


class RecordLogHandler(logging.Handler):
    """Copies the run's log records, as JSON lines, into its :class:`Recorder`."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        """Queue one line (never raises: logging must not fail the run)."""
        try:
            line: dict[str, Any] = {
                "time": iso_ms(record.created),
                "level": record.levelname,
                "logger": record.name,
            }
            for attr, key in (("flow_run_id", "flowRunId"), ("task_run_id", "taskRunId"),
                              ("task_run_name", "taskRunName")):
                value = getattr(record, attr, None)
                if value is not None:
                    line[key] = value
            line["message"] = record.getMessage()
            if record.exc_info:
                line["exception"] = logging.Formatter().formatException(record.exc_info)
            self.recorder.add_log_line(redact(json.dumps(line, default=str)))
        except Exception:  # a line that cannot be encoded is lost, the run goes on
            self.handleError(record)


# --- the recorder --------------------------------------------------------------------------


class Recorder:
    """Writes one root flow run's record and logs to the run store."""

    def __init__(self, tree: RunTree, location: runstore.Location,
                 source: dict[str, Any] | None = None) -> None:
        from headwater.results import resolve_storage

        self.tree = tree
        self.location = location
        self.source = source
        """The fetched code the run ran (Flow.spec.source): url with commit or digest."""
        self.storage = resolve_storage(location.root)
        self.written: bool | None = None
        """Whether the final record was written (``None`` until the run ends)."""
        self.final_flush_seconds: float | None = None
        """How long the final flush took (``benchmarks/sdk_overhead.py`` reports it)."""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[str] = []
        self._segment_index = 0
        self._segment: list[str] = []
        self._segment_bytes = 0
        self._lines = 0
        self._dropped = 0
        self._finished: dict[str, str] = {}
        """JSON of finished task runs by id: they never change again."""
        self._last_signature: tuple[int, ...] | None = None
        self._warned = False
        self._closed = False
        self._stop = threading.Event()
        self._done = threading.Event()
        self._final_ok = False
        self._handler = RecordLogHandler(self)
        self._thread = threading.Thread(target=self._loop, name="headwater-run-record",
                                        daemon=True)

    # lifecycle

    def start(self) -> None:
        """Collect the run's logs and start the periodic flushes."""
        logging.getLogger("headwater").addHandler(self._handler)
        self._thread.start()

    def close(self) -> bool:
        """Stop flushing and write the final record; whether it reached the store.

        The final flush runs on the recorder's thread, like every store call, and is
        waited for at most :data:`FINAL_FLUSH_TIMEOUT` seconds: an object store that does
        not answer can hold one call for minutes (its client retries), and the run's
        summary must not wait for it. Idempotent: the engine closes the recorder when
        the root flow run ends, and ``headwater execute`` closes it again (a no-op).
        """
        if self._closed:
            return bool(self.written)
        self._closed = True
        logging.getLogger("headwater").removeHandler(self._handler)
        started = time.perf_counter()
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            finished = self._done.wait(FINAL_FLUSH_TIMEOUT)
        else:  # the thread never ran (or this is it): flush here
            self._final_ok = self.flush(final=True)
            finished = True
        self.final_flush_seconds = time.perf_counter() - started
        if not finished:
            self._warn(TimeoutError(f"the final flush did not finish within "
                                    f"{FINAL_FLUSH_TIMEOUT:g} s"))
        self.written = finished and self._final_ok
        return self.written

    def _loop(self) -> None:
        try:
            while not self._stop.wait(FLUSH_INTERVAL):
                self.flush(final=False)
            self._final_ok = self.flush(final=True)
        finally:
            self._done.set()

    # logs

    def add_log_line(self, line: str) -> None:
        """Queue an encoded log line for the next flush."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING_LINES:
                self._dropped += 1
                return
            self._pending.append(line)

    # flushing

    def flush(self, final: bool) -> bool:
        """Write new log lines and the record if anything changed; True on success."""
        with self._flush_lock:
            try:
                self._flush_logs()
                with self.tree.lock:
                    task_runs = list(self.tree.task_runs)
                    flow_runs = list(self.tree.flow_runs)
                    artifacts = list(self.tree.artifact_records)
                    artifact_revision = self.tree.artifact_revision
                    assets = list(self.tree.assets)
                    transactions = _transactions(self.tree)
                signature = (*self._signature(final, task_runs, flow_runs, artifact_revision,
                                              assets), self.tree.transaction_revision)
                if signature != self._last_signature:
                    pieces = self._record(final, task_runs, flow_runs, artifacts, assets,
                                          transactions=transactions)
                    self.storage.write_chunks(f"{self.location.path}/{runstore.RECORD_FILE}",
                                              _chunks(pieces))
                    self._last_signature = signature
            except Exception as exc:  # the store is down: the run goes on
                self._warn(exc)
                return False
            return True

    def _signature(self, final: bool, task_runs: list[TaskRun], flow_runs: list[FlowRun],
                   artifact_revision: int, assets: list[Any]) -> tuple[int, ...]:
        """What changes whenever the record would: an unchanged run is not rewritten.

        Every change the engine makes to a run comes with a state (a task run's name,
        inputs and cache key are set before it runs; its result's location before it
        ends), so state-history lengths, the number of runs, artifact writes (a progress
        update counts), assets and log lines say it all; finished task runs never change
        again.
        """
        finished = self._finished
        moving = 0
        for task_run in task_runs:
            if task_run.id not in finished:
                moving += len(task_run.state_history) + 1
        states = sum(len(flow_run.state_history) for flow_run in flow_runs)
        return (int(final), len(task_runs), len(finished), moving, len(flow_runs), states,
                artifact_revision, len(assets), self._lines, self._dropped)
    def _flush_logs(self) -> None:
        with self._lock:
            new, self._pending = self._pending, []
        if not new:
            return
        try:
            while new:
                room = SEGMENT_BYTES - self._segment_bytes
                take = 0
                size = 0
                while take < len(new) and (size < room or take == 0):
                    size += len(new[take]) + 1
                    take += 1
                chunk, new = new[:take], new[take:]
                segment = [*self._segment, *chunk]
                self.storage.write(
                    f"{self.location.path}/{runstore.segment_name(self._segment_index)}",
                    ("\n".join(segment) + "\n").encode())
                self._lines += len(chunk)
                self._segment, self._segment_bytes = segment, self._segment_bytes + size
                if self._segment_bytes >= SEGMENT_BYTES:
                    self._segment_index += 1
                    self._segment, self._segment_bytes = [], 0
        except Exception:
            with self._lock:  # not written: keep them, in order, for the next flush
                self._pending[:0] = new
            raise

    def _record(self, final: bool, task_runs: list[TaskRun], flow_runs: list[FlowRun],
                artifacts: list[Any], assets: list[Any], *,
                transactions: list[dict[str, Any]] | None = None) -> list[str]:
        """The whole record, as the pieces of its JSON text in order."""
        root_id = self.tree.root.id
        finished = self._finished
        pieces: list[str] = []
        for task_run in task_runs:
            text = finished.get(task_run.id)
            if text is None:
                text = task_run_text(task_run, root_id)
                if task_run.end_time is not None:  # set once the run reached its end
                    finished[task_run.id] = text
            pieces.append(text)
            pieces.append(",")
        children: dict[str, list[FlowRun]] = {}
        for flow_run in flow_runs[1:]:
            children.setdefault(flow_run.parent_flow_run_id or "", []).append(flow_run)
            if flow_run.parent_task_run_id:
                pieces.append(json.dumps(_subflow_call_json(flow_run, root_id),
                                         separators=(",", ":")))
                pieces.append(",")
        if pieces:
            pieces.pop()  # the last comma
        segments = [runstore.segment_name(i) for i in range(
            self._segment_index + (1 if self._segment else 0))]
        logs: dict[str, Any] = {"segments": segments, "lines": self._lines}
        if self._dropped:
            logs["dropped"] = self._dropped
        location = self.location
        head = {
            "schemaVersion": runstore.SCHEMA_VERSION,
            "namespace": location.namespace,
            "flowRunName": location.flowrun,
            "attempt": location.attempt,
            "complete": final,
            "updatedAt": iso_ms(time.time()),
            "flowRun": flow_run_json(self.tree.root, children),
        }
        if self.source:
            head["source"] = self.source
        tail: dict[str, Any] = {"artifacts": _redacted(artifacts), "assets": assets}
        if transactions:
            tail["transactions"] = transactions
        tail["logs"] = logs
        compact = (",", ":")
        head_text = json.dumps(head, separators=compact, default=str)
        tail_text = json.dumps(tail, separators=compact, default=str)
        return [head_text[:-1], ',"taskRuns":[', *pieces, "],", tail_text[1:]]

    def _warn(self, exc: BaseException) -> None:
        if self._warned:
            return
        self._warned = True
        message = redact(f"headwater: the run record could not be written to "
                         f"{self.location.url} ({type(exc).__name__}: {exc}); the run goes "
                         "on, later flushes retry, and the run summary will say whether the "
                         "final record was written.")
        with contextlib.suppress(Exception):  # nowhere left to report it
            print(message, file=sys.stderr, flush=True)


CHUNK_PIECES = 256
"""Record pieces joined and encoded at a time: a 10,000-task record is about 5 MB, and
building it as one string, then one bytes object, cost more in fresh memory than the
rendering itself; chunks of ~100 KB are written as they are made."""


def _transactions(tree: RunTree) -> list[dict[str, Any]]:
    """The run's transactions for the record (keys are redacted: a user may build one
    from a parameter)."""
    if not tree.transactions:
        return []
    from headwater.transactions import describe

    described = [describe(txn) for txn in tree.transactions]
    result: list[dict[str, Any]] = _redacted(described)
    return result


def _chunks(pieces: list[str]) -> Iterator[bytes]:
    for start in range(0, len(pieces), CHUNK_PIECES):
        yield "".join(pieces[start:start + CHUNK_PIECES]).encode()


def start(tree: RunTree) -> Recorder | None:
    """Start recording the root run ``tree`` (``None`` when the run store is off)."""
    config_name = config_attempt = source = None
    from headwater.engine import ROOT_RUN_CONFIG

    config = ROOT_RUN_CONFIG.get()
    if config is not None:
        config_name, config_attempt = config.flow_run_name, config.attempt
        source = config.source
    try:
        location = runstore.location_for(tree.root.id, config_name, config_attempt)
        if location is None:
            return None
        recorder = Recorder(tree, location, source)
    except Exception as exc:  # e.g. fsspec missing for an s3:// store: the run goes on
        tree.record_written = False
        print(redact(f"headwater: no run record for this run: {type(exc).__name__}: {exc}"),
              file=sys.stderr, flush=True)
        return None
    recorder.start()
    return recorder
