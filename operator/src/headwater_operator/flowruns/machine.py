"""The FlowRun state machine: given what is known now, what happens next.

:func:`decide` is the one place that maps facts (the FlowRun's spec and status, its
resolved settings, the current attempt's pod, the concurrency verdict, the time) to a
:class:`Decision`: a status patch, at most one pod to create or delete, the Events to
emit, and when to look again. It is pure, so every transition in
docs/flowrun-lifecycle.md has a unit test, and a replayed or duplicated call with the
same facts yields the same decision (idempotency by construction).

Phases::

    Scheduled ─▶ (Late) ─▶ Pending ─▶ Running ─▶ Completed | Failed | Crashed
        │                    │           │
        ├─▶ AwaitingConcurrencySlot      └─▶ AwaitingRetry ─▶ Retrying ─▶ Running …
        └─▶ Cancelled        └──── spec.cancel ──▶ Cancelling ─▶ Cancelled
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from headwater import runstore

from headwater_operator import reasons
from headwater_operator.api import Condition, ConditionStatus, FlowRun, FlowRunPhase
from headwater_operator.flowruns.concurrency import SlotVerdict, scheduled_time
from headwater_operator.flowruns.podfacts import (
    AttemptObservation,
    PodFacts,
    observe_attempt,
    summary_status,
)
from headwater_operator.flowruns.render import pod_name
from headwater_operator.flowruns.retry import is_retryable, next_attempt_time
from headwater_operator.flowruns.settings import (
    CANCEL_DEADLINE_MARGIN,
    DEFAULT_CONFIG_ERROR_GRACE,
    RunSettings,
)
from headwater_operator.flowruns.source import fetched_source
from headwater_operator.kubetime import format_time, parse_time

NOT_STARTED = frozenset(
    {None, FlowRunPhase.SCHEDULED, FlowRunPhase.LATE, FlowRunPhase.AWAITING_CONCURRENCY_SLOT}
)
POD_PHASES = frozenset({FlowRunPhase.PENDING, FlowRunPhase.RUNNING, FlowRunPhase.RETRYING})
LATE_CONDITION = "Late"
CANCEL_CONDITION = "CancelRequested"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit on the FlowRun."""

    type: str
    reason: str
    message: str


@dataclass
class Decision:
    """What the reconciler must do; an empty decision means "nothing changed"."""

    status: dict[str, Any] = field(default_factory=dict)
    """Merge patch for ``status`` (camelCase keys; ``None`` deletes a field)."""
    create_pod: int | None = None
    """Attempt number whose pod must exist (created; 409 counts as success)."""
    delete_pod: str | None = None
    delete_grace_seconds: int | None = None
    events: list[Event] = field(default_factory=list)
    wake_at: datetime | None = None
    """Look again no later than this, even if nothing is reported."""
    crash_reason: str | None = None
    """Set when an attempt ended Crashed (for the crash metric, retried or not)."""
    became_late: bool = False

    @property
    def phase(self) -> FlowRunPhase | None:
        """The phase this decision writes, if it writes one."""
        value = self.status.get("phase")
        return FlowRunPhase(value) if value else None


@dataclass(frozen=True)
class Facts:
    """Everything :func:`decide` needs besides the FlowRun itself."""

    now: datetime
    settings: RunSettings | None = None
    setup_error: tuple[str, str] | None = None
    """``(reason, message)`` when the Deployment/Flow could not be resolved."""
    parameter_errors: tuple[str, ...] = ()
    pod: PodFacts | None = None
    """Facts of the current attempt's pod; ``None`` when it was not looked up."""
    slot: SlotVerdict = SlotVerdict.ADMIT
    inputs_wait: tuple[str, str] | None = None
    """``(reason, message)`` when a declared Block, or a Secret key one of its secret
    fields names, is missing or invalid: no pod is created until it is fixed."""


def _condition(kind: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    return Condition(
        type=kind, status=ConditionStatus.TRUE, reason=reason, message=message,
        last_transition_time=now,
    ).model_dump(mode="json", by_alias=True, exclude_none=True)


def _conditions_with(run: FlowRun, new: dict[str, Any]) -> list[dict[str, Any]]:
    kept = [
        c.model_dump(mode="json", by_alias=True, exclude_none=True)
        for c in run.status.conditions
        if c.type != new["type"]
    ]
    return [*kept, new]


def _has_condition(run: FlowRun, kind: str) -> bool:
    return any(c.type == kind and c.status == ConditionStatus.TRUE for c in run.status.conditions)


def _transition(decision: Decision, phase: FlowRunPhase, reason: str, message: str,
                warning: bool = False, **extra: Any) -> Decision:
    decision.status.update({"phase": phase.value, "reason": reason, "message": message, **extra})
    decision.events.append(Event("Warning" if warning else "Normal", reason, message))
    return decision


def _finish(run: FlowRun, decision: Decision, phase: FlowRunPhase, reason: str, message: str,
            *, now: datetime, end: datetime | None = None) -> Decision:
    """Move to a terminal phase, with endTime and duration."""
    end_time = end or now
    start = run.status.start_time or decision_start(decision)
    extra: dict[str, Any] = {"endTime": format_time(end_time), "nextAttemptTime": None}
    if start is not None:
        extra["durationSeconds"] = round(max((end_time - start).total_seconds(), 0.0), 3)
    warning = phase in (FlowRunPhase.FAILED, FlowRunPhase.CRASHED)
    return _transition(decision, phase, reason, message, warning, **extra)


def decision_start(decision: Decision) -> datetime | None:
    """The startTime a decision is about to write, if any."""
    return parse_time(decision.status.get("startTime"))


def _scheduled_fields(run: FlowRun) -> dict[str, Any]:
    if run.status.scheduled_time is not None:
        return {}
    due = scheduled_time(run)
    return {"scheduledTime": format_time(due)} if due else {}


def _cancel_unstarted(run: FlowRun, facts: Facts) -> Decision:
    """Cancel a run whose status names no running attempt.

    Its next attempt's pod may exist all the same: the pod is created before the status
    write that names it, so an operator that died in between left it running. Then that
    pod is deleted too (SIGTERM, the cancel grace), or the flow would go on running under
    a Cancelled run. ``facts.pod`` is that pod when the controller found one.
    """
    where = "between attempts" if run.status.phase == FlowRunPhase.AWAITING_RETRY else \
        "before it started"
    message = f"cancelled {where} (spec.cancel: true)"
    decision = Decision(status=_scheduled_fields(run))
    pod = facts.pod
    if pod is not None and pod.exists and not pod.deleting:
        name = pod_name(run.metadata.name or "", run.status.attempts + 1)
        grace = facts.settings.cancel_grace_seconds if facts.settings else 30
        decision.delete_pod, decision.delete_grace_seconds = name, grace
        message += (f"; pod {name}, created before the status named it, gets SIGTERM and "
                    f"{grace}s to stop")
    return _finish(run, decision, FlowRunPhase.CANCELLED, reasons.CANCELLED, message,
                   now=facts.now)


def _begin_cancel(run: FlowRun, settings: RunSettings | None, now: datetime) -> Decision:
    grace = settings.cancel_grace_seconds if settings else 30
    message = (f"cancel requested; pod {run.status.pod_name} gets SIGTERM and {grace}s to stop")
    decision = Decision(delete_pod=run.status.pod_name, delete_grace_seconds=grace)
    decision.status["conditions"] = _conditions_with(
        run, _condition(CANCEL_CONDITION, reasons.CANCEL_REQUESTED, message, now)
    )
    decision.wake_at = now + CANCEL_DEADLINE_MARGIN + _seconds(grace)
    return _transition(decision, FlowRunPhase.CANCELLING, reasons.CANCEL_REQUESTED, message)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _cancel_requested_at(run: FlowRun) -> datetime | None:
    for cond in run.status.conditions:
        if cond.type == CANCEL_CONDITION and cond.last_transition_time is not None:
            return cond.last_transition_time
    return None


def _continue_cancel(run: FlowRun, facts: Facts) -> Decision:
    """Cancelling: done when the pod is gone or stopped; forced after the deadline."""
    pod = facts.pod or PodFacts(exists=False)
    stopped = not pod.exists or pod.phase in ("Succeeded", "Failed")
    if stopped:
        observed = (
            observe_attempt(pod, run.status.pod_name or "", facts.now, _seconds(0))
            if pod.exists else None
        )
        if observed is not None and observed.phase == FlowRunPhase.COMPLETED:
            # The flow finished before SIGTERM reached it: record what really happened.
            return _attempt_ended(run, facts, observed)
        decision = _finish(run, Decision(), FlowRunPhase.CANCELLED, reasons.CANCELLED,
                           "cancelled: the pod stopped after SIGTERM", now=facts.now,
                           end=pod.finished)
        if observed is not None:
            _record_ended(run, observed, decision)  # a cancelled flow writes its record too
        return decision
    grace = facts.settings.cancel_grace_seconds if facts.settings else 30
    requested = _cancel_requested_at(run) or facts.now
    deadline = requested + _seconds(grace) + CANCEL_DEADLINE_MARGIN
    if facts.now >= deadline:
        message = (f"cancelled: pod {run.status.pod_name} did not stop within {grace}s of "
                   "SIGTERM and was force-deleted; check the node if it stays Terminating")
        decision = Decision(delete_pod=run.status.pod_name, delete_grace_seconds=0)
        return _finish(run, decision, FlowRunPhase.CANCELLED, reasons.CANCEL_FORCED, message,
                       now=facts.now)
    return Decision(wake_at=deadline)


def _run_records(run: FlowRun) -> list[dict[str, Any]]:
    return [entry.model_dump(mode="json", by_alias=True, exclude_none=True)
            for entry in run.status.run_records]


def _record_started(run: FlowRun, settings: RunSettings | None,
                    attempt: int) -> dict[str, Any]:
    """The ``runRecords`` field naming where ``attempt``'s record goes (``{}`` without a
    run store). The whole list: a merge patch replaces a list."""
    root = settings.record_root if settings else None
    if root is None:
        return {}
    entry = {"attempt": attempt, "url": runstore.attempt_url(
        root, run.metadata.namespace or "", run.metadata.name or "", attempt)}
    kept = [item for item in _run_records(run) if item.get("attempt") != attempt]
    return {"runRecords": [*kept, entry]}


def _record_ended(run: FlowRun, observed: AttemptObservation,
                  decision: Decision) -> None:
    """Copy the summary's ``recordWritten`` into the current attempt's ``runRecords`` entry;
    a record that was not written gets a ``RunRecordNotWritten`` Warning."""
    written = (observed.summary or {}).get("recordWritten")
    if not isinstance(written, bool):
        return  # no store, or no summary (or one that does not say)
    attempt = max(run.status.attempts, 1)
    entries = _run_records(run)
    entry = next((item for item in entries if item.get("attempt") == attempt), None)
    if entry is not None and entry.get("written") is not written:
        entry["written"] = written
        decision.status["runRecords"] = entries
    if not written:
        where = (f" at {entry['url']}" if entry is not None
                 else " (status.runRecords names no location for it)")
        decision.events.append(Event("Warning", reasons.RUN_RECORD_NOT_WRITTEN, (
            f"attempt {attempt}: its run record could not be written to the run store"
            f"{where}; the flow itself was not affected. `headwater describe run` may show "
            "an incomplete or no record; the pod's logs say why (check the store's "
            "address, credentials and permissions)")))


def _start_attempt(run: FlowRun, facts: Facts, attempt: int) -> Decision:
    phase = FlowRunPhase.PENDING if attempt == 1 else FlowRunPhase.RETRYING
    reason = reasons.POD_CREATED if attempt == 1 else reasons.RETRYING
    name = pod_name(run.metadata.name or "", attempt)
    message = f"attempt {attempt}: pod {name} created"
    decision = Decision(status=_scheduled_fields(run), create_pod=attempt)
    decision.status.update({"attempts": attempt, "podName": name, "nextAttemptTime": None,
                            **_record_started(run, facts.settings, attempt)})
    return _transition(decision, phase, reason, message)


def _mark_late(run: FlowRun, facts: Facts, settings: RunSettings, decision: Decision) -> None:
    """Add the Late condition (and Event) once, when the due time passed long enough ago."""
    due = scheduled_time(run)
    if due is None or _has_condition(run, LATE_CONDITION):
        return
    if facts.now < due + settings.late_after:
        decision.wake_at = _earliest(decision.wake_at, due + settings.late_after)
        return
    late_by = int((facts.now - due).total_seconds())
    message = f"not started {late_by}s after its scheduled time {format_time(due)}"
    decision.status["conditions"] = _conditions_with(
        run, _condition(LATE_CONDITION, reasons.LATE, message, facts.now)
    )
    decision.events.append(Event("Warning", reasons.LATE, message))
    decision.became_late = True


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


def _hold(run: FlowRun, decision: Decision, phase: FlowRunPhase, reason: str,
          message: str) -> Decision:
    # The message too: a run waiting for one block, then for another, says which now.
    if (run.status.phase, run.status.reason, run.status.message) == (phase, reason, message):
        return decision
    return _transition(decision, phase, reason, message)


def _admit(run: FlowRun, facts: Facts, settings: RunSettings) -> Decision:
    """Not started yet: validate, wait for the due time / an unpaused Deployment / a slot."""
    if facts.parameter_errors:
        message = "; ".join(facts.parameter_errors)
        return _finish(run, Decision(status=_scheduled_fields(run)), FlowRunPhase.FAILED,
                       reasons.INVALID_PARAMETERS, message, now=facts.now)
    due = scheduled_time(run)
    decision = Decision(status=_scheduled_fields(run))
    if due is not None and due > facts.now:
        decision.wake_at = due
        return _hold(run, decision, FlowRunPhase.SCHEDULED, reasons.SCHEDULED,
                     f"waiting for its scheduled time {format_time(due)}")
    _mark_late(run, facts, settings, decision)
    if settings.paused:
        late = decision.became_late or _has_condition(run, LATE_CONDITION)
        return _hold(run, decision, FlowRunPhase.LATE if late else FlowRunPhase.SCHEDULED,
                     reasons.DEPLOYMENT_PAUSED,
                     f"Deployment {settings.deployment_name} is paused; the run starts when "
                     "it is resumed (spec.paused: false) or can be cancelled")
    if facts.inputs_wait is not None:
        late = decision.became_late or _has_condition(run, LATE_CONDITION)
        reason, message = facts.inputs_wait
        return _hold(run, decision, FlowRunPhase.LATE if late else FlowRunPhase.SCHEDULED,
                     reason, message)
    if facts.slot == SlotVerdict.CANCEL:
        limit = settings.concurrency.limit if settings.concurrency else 0
        return _finish(run, decision, FlowRunPhase.CANCELLED, reasons.CONCURRENCY_LIMIT_REACHED,
                       f"Deployment {settings.deployment_name} already has {limit} active "
                       "run(s) and its collisionStrategy is CancelNew", now=facts.now)
    if facts.slot == SlotVerdict.QUEUE:
        limit = settings.concurrency.limit if settings.concurrency else 0
        return _hold(run, decision, FlowRunPhase.AWAITING_CONCURRENCY_SLOT,
                     reasons.AWAITING_CONCURRENCY_SLOT,
                     f"Deployment {settings.deployment_name} has {limit} active run(s) "
                     "(concurrency.limit); waiting for one to finish")
    started = _start_attempt(run, facts, 1)
    started.status.update(decision.status | started.status)
    started.events[:0] = decision.events
    started.became_late = decision.became_late
    return started


def _summary_fields(observed: AttemptObservation) -> dict[str, Any]:
    return {} if observed.summary is None else summary_status(observed.summary)


def _attempt_ended(run: FlowRun, facts: Facts, observed: AttemptObservation) -> Decision:
    """The attempt is over: its outcome, and whether its run record was written, in one
    status write."""
    decision = _attempt_outcome(run, facts, observed)
    _record_ended(run, observed, decision)
    return decision


def _attempt_outcome(run: FlowRun, facts: Facts, observed: AttemptObservation) -> Decision:
    decision = Decision(status=_summary_fields(observed))
    if observed.delete_pod:
        decision.delete_pod = run.status.pod_name
    if run.status.start_time is None and observed.started is not None:
        decision.status["startTime"] = format_time(observed.started)
    if observed.phase == FlowRunPhase.CRASHED:
        decision.crash_reason = observed.reason
    attempts = max(run.status.attempts, 1)
    reason = observed.reason or observed.phase.value
    message = observed.message or ""
    settings = facts.settings
    if settings and not observed.final and is_retryable(settings.retry, observed.phase,
                                                        reason, attempts):
        when = next_attempt_time(settings.retry, attempts, facts.now)
        decision.wake_at = when
        total = settings.retry.retries + 1
        text = (f"attempt {attempts} of {total} ended {observed.phase.value} ({reason}): "
                f"{message}; next attempt at {format_time(when)}")
        return _transition(decision, FlowRunPhase.AWAITING_RETRY, reason, text,
                           warning=True, nextAttemptTime=format_time(when))
    if attempts > 1:
        message = f"{message} (after {attempts} attempts)"
    return _finish(run, decision, observed.phase, reason, message, now=facts.now,
                   end=observed.finished)


def _track(run: FlowRun, facts: Facts, settings: RunSettings | None) -> Decision:
    """Pending/Running/Retrying: follow the attempt's pod (and pin its fetched code)."""
    decision = _follow(run, facts, settings)
    _pin_source(run, facts.pod, decision)
    return decision


def _pin_source(run: FlowRun, pod: PodFacts | None, decision: Decision) -> None:
    """Record in ``status.source`` what the first attempt's init container fetched (the
    commit its ref resolved to, or the bundle's digest), once: later attempts are
    rendered from it, so a retry runs the same code."""
    if run.status.source is not None or pod is None or pod.source_exit_code != 0:
        return
    fetched = fetched_source(pod.source_message)
    if fetched is None:
        return
    decision.status["source"] = fetched
    what = (f"commit {fetched['commit']} ({fetched.get('ref')})" if "commit" in fetched
            else f"bundle {fetched['digest']}")
    decision.events.append(Event("Normal", reasons.SOURCE_RESOLVED, (
        f"attempt {max(run.status.attempts, 1)} fetched {what} from {fetched['url']}; "
        "every retry of this run uses it")))


def _follow(run: FlowRun, facts: Facts, settings: RunSettings | None) -> Decision:
    pod = facts.pod or PodFacts(exists=False)
    pending_timeout = settings.pending_timeout if settings else _seconds(600)
    grace = settings.config_error_grace if settings else DEFAULT_CONFIG_ERROR_GRACE
    observed = observe_attempt(pod, run.status.pod_name or "", facts.now, pending_timeout,
                               grace)
    if observed.ended:
        return _attempt_ended(run, facts, observed)
    if observed.phase == FlowRunPhase.PENDING:
        return Decision(wake_at=observed.wake_at or (pod.created or facts.now) + pending_timeout)
    if run.status.phase == FlowRunPhase.RUNNING:
        return Decision()
    decision = Decision()
    if run.status.start_time is None:
        decision.status["startTime"] = format_time(observed.started or facts.now)
    return _transition(decision, FlowRunPhase.RUNNING, reasons.STARTED,
                       f"attempt {run.status.attempts}: pod {run.status.pod_name} is running")


def decide(run: FlowRun, facts: Facts) -> Decision:
    """Decide the next step for ``run``. See the module docstring for the phase diagram."""
    phase = run.status.phase
    if phase is not None and phase.terminal:
        return Decision()
    if run.spec.cancel:
        if phase in NOT_STARTED or phase == FlowRunPhase.AWAITING_RETRY:
            return _cancel_unstarted(run, facts)
        if phase in POD_PHASES:
            return _begin_cancel(run, facts.settings, facts.now)
        return _continue_cancel(run, facts)
    if phase == FlowRunPhase.CANCELLING:
        return _continue_cancel(run, facts)
    if facts.setup_error is not None and (phase in NOT_STARTED or facts.settings is None):
        reason, message = facts.setup_error
        if phase in POD_PHASES:
            # The attempt's pod still decides how it ends (a kubectl-created run outlives
            # its Deployment); without settings it gets no retry and the default timeouts.
            return _track(run, facts, None)
        return _finish(run, Decision(status=_scheduled_fields(run)), FlowRunPhase.FAILED,
                       reason, message, now=facts.now)
    settings = facts.settings
    if phase in NOT_STARTED:
        assert settings is not None  # setup_error covers the missing case above
        return _admit(run, facts, settings)
    if phase == FlowRunPhase.AWAITING_RETRY:
        due = run.status.next_attempt_time
        if due is not None and facts.now < due:
            return Decision(wake_at=due)
        if facts.inputs_wait is not None:
            reason, message = facts.inputs_wait
            return _hold(run, Decision(), FlowRunPhase.AWAITING_RETRY, reason,
                         f"attempt {run.status.attempts + 1} waits: {message}")
        return _start_attempt(run, facts, run.status.attempts + 1)
    return _track(run, facts, settings)


def pod_creation_failed(run: FlowRun, attempt: int, error: str, now: datetime) -> Decision:
    """The API server rejected attempt ``attempt``'s pod: Crashed, never retried."""
    message = (f"attempt {attempt}: the API server rejected pod "
               f"{pod_name(run.metadata.name or '', attempt)}: {error}; fix the Flow or "
               "Deployment.runTemplate field it names, then create a new FlowRun")
    decision = Decision(status={**_scheduled_fields(run), "attempts": attempt},
                        crash_reason=reasons.POD_CREATION_FAILED)
    return _finish(run, decision, FlowRunPhase.CRASHED, reasons.POD_CREATION_FAILED, message,
                   now=now)


def status_rejected(run: FlowRun, rejected: Decision, error: str, now: datetime) -> Decision:
    """The API server refused (422) the status ``rejected`` would write: end the run.

    The same status would be refused again on every retry, so the run ends ``Crashed``
    with reason ``StatusRejected`` and the server's message, written with as few fields
    as a terminal status needs. A pod that may still run is deleted: nothing would
    follow it any more. One that has finished is kept, for its logs.
    """
    message = (f"the API server refused the run's status update ({error}); the run is "
               "ended rather than retried, since the same update would be refused again. "
               "Report this to the Headwater maintainers with the FlowRun's events")
    decision = Decision(crash_reason=reasons.STATUS_REJECTED)
    if rejected.create_pod is not None:
        decision.delete_pod = pod_name(run.metadata.name or "", rejected.create_pod)
    elif (run.status.phase in POD_PHASES | {FlowRunPhase.CANCELLING}
          and not (rejected.phase is not None and rejected.phase.terminal)):
        decision.delete_pod = run.status.pod_name
    return _finish(run, decision, FlowRunPhase.CRASHED, reasons.STATUS_REJECTED, message,
                   now=now)


def status_refused_event(error: str) -> Event:
    """The Warning posted when even :func:`status_rejected`'s status is refused."""
    return Event("Warning", reasons.STATUS_REJECTED, (
        f"the API server refuses every status update of this run, even the one that ends "
        f"it ({error}); the operator stops following the run. Fix or delete the FlowRun "
        "(its stored status may be invalid) and report this to the Headwater maintainers"))
