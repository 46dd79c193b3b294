"""The Automation controller: FlowRun transitions → an Automation's actions, delivered once.

One transition, from its watch event to its delivery:

1. **Watch → observe** (:meth:`AutomationController.on_flowrun`, on the FlowRun informer
   the manager already runs). A run whose phase is terminal, or ``Late``, is a
   transition with a key — ``<run uid>/<phase>/<attempts>`` — and a time (``endTime``,
   or the ``Late`` condition's ``lastTransitionTime``). Each Automation of the run's
   namespace whose trigger selects it keeps it in memory and its key is woken. This
   handler only reads and sets dict entries: it never waits, so no run's lifecycle ever
   waits for an automation. Recovery (a ``Completed`` run after a ``Failed``/``Crashed``
   one of the same Deployment) and freshness (no ``Completed`` run of a Deployment within
   a duration: one transition per stale *episode*, keyed by the last success it is
   stale since) are computed from the same events.
2. **Intent** (:meth:`AutomationController.reconcile`, one worker per Automation): new
   transitions whose time is at or after ``status.watermark`` (the Automation's creation:
   history never floods a new Automation) and not yet in ``status.ledger`` enter the
   ledger as ``Pending`` actions, in **one status write with the resourceVersion it read**
   (409: read again, decide again). Nothing is delivered before this write succeeds.
3. **Delivery**, in tasks apart from the work queue: ``notify`` renders subject and body
   (:mod:`headwater_operator.templating`) and calls the block's ``notify`` in a bounded
   thread pool with a deadline; ``runDeployment`` creates a run with a deterministic name
   (``409 AlreadyExists`` is success); ``cancelRun`` and ``suspend`` are idempotent
   patches. Each finished attempt wakes the Automation.
4. **Done**: the next reconcile writes each outcome into the ledger (``Delivered``; a
   retry at ``nextAttemptTime`` after an exponential, jittered backoff that honours the
   receiver's ``retry_after``; ``Failed`` after :data:`MAX_ATTEMPTS` or a non-retryable
   error), bumps the counters and ``lastDeliveries``, prunes the ledger to
   :data:`LEDGER_KEEP` finished entries (raising the watermark past what it drops), then
   posts Events and reports metrics.

The guarantee (docs/automations.md): every selected transition is delivered **at least
once**; a delivery repeated after the operator died between the intent and the done
write carries the **same idempotency key** (:func:`idempotency_key`), and
``runDeployment`` is exactly once by its run's name. Without such a crash, each action
is delivered exactly once.

Test-only fault hook: ``HEADWATER_AUTOMATION_FAULT=after-intent`` (or ``after-delivery``)
makes the process ``os._exit(137)`` right after the first intent write (or right after
the first successful delivery, before its done write) — SIGKILL at that point, for the
api tests. It is read only there and never set in production.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from headwater import runstore
from pydantic import ValidationError

from headwater_operator import kube
from headwater_operator.api import TERMINAL_PHASES, Action, Automation
from headwater_operator.api.automation import RunSelector
from headwater_operator.api.errors import format_validation_error
from headwater_operator.clock import Clock, get_clock
from headwater_operator.conditions import make_condition, set_conditions
from headwater_operator.controllers.signals import NULL_OBSERVER, EventRecorder, Observer
from headwater_operator.informer import InformerFactory, Store
from headwater_operator.kubetime import format_time, parse_time
from headwater_operator.labels import label_value
from headwater_operator.runtime import DONE, Controller, Result
from headwater_operator.scheduling.events import EventBudget, should_post
from headwater_operator.scheduling.runs import deployment_run
from headwater_operator.templating import TemplateError, flowrun_context, render

logger = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name) of an Automation."""
NotifierLoader = Callable[[str, str], Any]
"""``load(namespace, block name)`` → a block with ``notify(subject, body, *,
idempotency_key)``; blocking (called in a delivery thread)."""

MAX_ATTEMPTS = 8
"""Attempts of one action before it is recorded ``Failed`` (with the backoff below, about
four minutes of retries)."""
BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_JITTER = 1.0, 60.0, 0.2
"""Retry delays: 1 s, 2 s, 4 s… capped at 60 s, each ±20 %; a longer ``retry_after``
from the receiver wins."""
LEDGER_KEEP = 64
"""Finished ledger entries kept in ``status.ledger`` (pending ones are always kept)."""
WORKERS = 4
"""Automations reconciled at once. Each reconcile is at most one status write; the
operator's client sends 16 requests at once for every controller and the Lease, so
automations must not take them all (measured: with 64, ten Automations each seeing every
run at 1,000 runs a minute held the client long enough for the leader to miss its Lease
renewal). Deliveries are not bounded by this: they run in their own tasks."""
DELIVERY_THREADS = 16
"""Notifications sent at once (each is a blocking HTTP or SMTP exchange)."""
NOTIFY_TIMEOUT_SECONDS = 30.0
"""Deadline of one notify call when its block names no ``timeout`` (plus 5 s of slack
over a block's own)."""
OUTCOME_COALESCE_SECONDS = 0.5
"""A status write that would record outcomes only waits until this long after the last
write, so a burst of deliveries is recorded in few writes."""
BLOCK_CACHE_SECONDS = 10.0
"""A loaded block (with its secret values, in memory only) is reused this long: an edited
block or a rotated Secret takes effect within it, and a burst of deliveries reads the
Block and its Secret once, not twice per delivery."""
RECOVERY_HISTORY = 16
"""Finished runs remembered per Deployment for the recovery trigger."""
FAILED_PHASES = frozenset({"Failed", "Crashed"})
FAULT_ENV = "HEADWATER_AUTOMATION_FAULT"
_monotonic = time.monotonic
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def idempotency_key(automation_uid: str, transition: str, action: int) -> str:
    """The key every attempt of one action of one transition carries (PagerDuty
    ``dedup_key``, the ``Idempotency-Key`` header, the email's ``Message-ID``)."""
    digest = hashlib.sha256(f"{automation_uid}|{transition}|{action}".encode()).hexdigest()
    return f"hw-{digest[:32]}"


def triggered_run_name(deployment: str, key: str) -> str:
    """The run a ``runDeployment`` action creates: deterministic, so a replay makes none."""
    return f"{deployment[:44].rstrip('-.')}-auto-{key.removeprefix('hw-')[:12]}"


def safe_message(error: BaseException) -> str:
    """An error for status and Events: no URL (a webhook's URL is its secret), bounded."""
    text = _URL.sub("<url>", str(error) or type(error).__name__)
    return text[:300]


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        logger.critical("fault hook %s=%s: exiting now (tests only)", FAULT_ENV, point)
        os._exit(137)



LOGS_FIELD = re.compile(r"\blogs\b")
"""A notify template that names ``logs`` gets ``run.logs``: only then is the store read."""
LOG_EXCERPT_LINES = 20
"""``run.logs`` holds the last lines of the run's latest attempt, at most this many…"""
LOG_EXCERPT_CHARS = 2000
"""…and at most this many characters (the end of them: where a failure is)."""


def logs_excerpt(records: list[Mapping[str, Any]]) -> str | None:
    """The last lines of the latest attempt's log in the run store (``status.runRecords``:
    the SDK writes each attempt's lines there, already redacted of every secret it
    knows), or ``None`` without a record or when the store cannot be read. The operator
    never reads pod logs (its Role has no ``pods/log``: docs/automations.md)."""
    written = [entry for entry in records if entry.get("url") and entry.get("written") is not False]
    if not written:
        return None
    latest = max(written, key=lambda entry: int(entry.get("attempt") or 0))
    tail: collections.deque[str] = collections.deque(maxlen=LOG_EXCERPT_LINES)
    try:
        for line in runstore.iter_log_lines(str(latest["url"])):
            text = f"{line.get('level') or 'INFO'} {line.get('message', '')}"
            exception = line.get("exception")
            if isinstance(exception, str) and exception:
                text += "\n" + exception.rstrip("\n")
            tail.append(text)
    except Exception as error:  # a store down or a record gone: the message goes without
        logger.info("no log excerpt from %s: %s", latest["url"], type(error).__name__)
        return None
    return "\n".join(tail)[-LOG_EXCERPT_CHARS:] or None


@dataclass(frozen=True)
class Transition:
    """Something an automation acts on."""

    id: str
    time: datetime
    run: str | None
    body: Mapping[str, Any] | None
    """The run as observed (template context); None for freshness without a run."""
    seen: float = field(default_factory=_monotonic)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """One finished delivery attempt."""

    transition: str
    action: int
    delivered: bool
    retryable: bool = True
    retry_after: float | None = None
    message: str | None = None


@dataclass
class _State:
    """What the controller keeps of one Automation (lost on restart: the ledger is not)."""

    observed: dict[str, Transition] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    inflight: set[tuple[str, int]] = field(default_factory=set)
    contexts: dict[str, Transition] = field(default_factory=dict)
    """Pending transitions' runs as observed (after a restart, read from the server)."""
    budget: EventBudget = field(default_factory=EventBudget)
    last_write: float = float("-inf")
    """``time.monotonic()`` of this process's last status write of the Automation."""


def _run_transitions(body: Mapping[str, Any]) -> list[tuple[str, str, datetime]]:
    """(id, phase, time) of the transitions a run's current state shows."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    uid, phase = str(meta.get("uid") or ""), status.get("phase")
    found: list[tuple[str, str, datetime]] = []
    if phase in TERMINAL_PHASES:
        when = parse_time(status.get("endTime"))
        if when is not None:
            found.append((f"{uid}/{phase}/{status.get('attempts', 0)}", str(phase), when))
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Late" and condition.get("status") == "True":
            when = parse_time(condition.get("lastTransitionTime"))
            if when is not None:
                found.append((f"{uid}/Late/0", "Late", when))
    return found


class AutomationController:
    """Automations, fed by the shared Automation and FlowRun informers (see the module)."""

    def __init__(self, client: kube.Kube, *, deployments: Store, events: EventRecorder,
                 observer: Observer = NULL_OBSERVER, clock: Clock | None = None,
                 notifier: NotifierLoader | None = None, ui_url: str | None = None,
                 workers: int = WORKERS, delivery_threads: int = DELIVERY_THREADS) -> None:
        self.client = client
        self.deployments = deployments
        self.events = events
        self.observer = observer
        self._clock = clock
        self.notifier = notifier
        self.ui_url = ui_url
        self.queue: Controller[Key] = Controller("automations", self.reconcile,
                                                 workers=workers, clock=clock)
        self.bodies: dict[Key, dict[str, Any]] = {}
        self.parsed: dict[Key, tuple[int, Automation | str]] = {}
        self.states: dict[Key, _State] = {}
        self.by_namespace: dict[str, set[Key]] = {}
        self.last_success: dict[tuple[str, str], tuple[datetime, Mapping[str, Any]]] = {}
        self.finished: dict[tuple[str, str],
                           dict[str, tuple[datetime, str, Mapping[str, Any]]]] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=delivery_threads, thread_name_prefix="automation-delivery")
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random()
        self._blocks: dict[tuple[str, str], tuple[float, Any]] = {}
        """Loaded blocks by (namespace, name), with the monotonic time they were read."""

    @property
    def clock(self) -> Clock:
        return self._clock or get_clock()

    def register(self, informers: InformerFactory) -> None:
        informers.informer(kube.AUTOMATIONS).add_handler(self.on_automation)
        informers.informer(kube.FLOWRUNS).add_handler(self.on_flowrun)

    # --- watch ----------------------------------------------------------------------
    def on_automation(self, kind: str, body: kube.JsonObject) -> None:
        meta = body["metadata"]
        key = (str(meta.get("namespace") or "default"), str(meta["name"]))
        if kind == "DELETED":
            self.bodies.pop(key, None)
            self.parsed.pop(key, None)
            self.states.pop(key, None)
            self.by_namespace.get(key[0], set()).discard(key)
            return
        known = self.bodies.get(key)
        if known is None or _newer(body, known):
            self.bodies[key] = body
        self.by_namespace.setdefault(key[0], set()).add(key)
        self.queue.wake(key)

    def on_flowrun(self, kind: str, body: kube.JsonObject) -> None:
        if kind == "DELETED":
            return
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        status = body.get("status") or {}
        namespace = str(meta.get("namespace") or "default")
        deployment = (spec.get("deploymentRef") or {}).get("name")
        phase = status.get("phase")
        recovered: list[tuple[str, datetime, Mapping[str, Any]]] = []
        if deployment and phase in TERMINAL_PHASES:
            recovered = self._remember_finished(namespace, deployment, body, str(phase))
        keys = self.by_namespace.get(namespace)
        if not keys:
            return
        transitions: list[tuple[str, str, datetime, Mapping[str, Any]]] = [
            (tid, tphase, when, body) for tid, tphase, when in _run_transitions(body)]
        transitions += [(tid, "Recovered", when, run) for tid, when, run in recovered]
        for key in list(keys):
            automation = self._automation(key)
            if automation is None:
                continue
            trigger = automation.spec.trigger
            if trigger.freshness is not None:
                if deployment == trigger.freshness.deployment and phase == "Completed":
                    self.queue.wake(key)
                continue
            for tid, tphase, when, run in transitions:
                if self._selects(automation, namespace, run, tphase):
                    state = self.states.setdefault(key, _State())
                    if tid not in state.observed:
                        name = str((run.get("metadata") or {}).get("name"))
                        state.observed[tid] = Transition(tid, when, name, run)
                        self.queue.wake(key)

    def _remember_finished(self, namespace: str, deployment: str, body: Mapping[str, Any],
                           phase: str) -> list[tuple[str, datetime, Mapping[str, Any]]]:
        """Record a finished run; the recoveries it reveals: (transition id, time, run).

        A recovery is a ``Completed`` run whose predecessor by end time failed. Runs do not
        arrive in end order — a new leader's first list hands them over in any order — so
        a failed run that lands *before* a completed one already known reveals that one's
        recovery, as the completed run does when it arrives after its failure. The ledger
        and the watermark keep either from firing twice or for old history.
        """
        meta, status = body["metadata"], body.get("status") or {}
        end = parse_time(status.get("endTime"))
        if end is None:
            return []
        uid = str(meta.get("uid"))
        if phase == "Completed":
            known = self.last_success.get((namespace, deployment))
            if known is None or known[0] <= end:
                self.last_success[(namespace, deployment)] = (end, body)
        history = self.finished.setdefault((namespace, deployment), {})
        history[uid] = (end, phase, body)
        if len(history) > RECOVERY_HISTORY:
            oldest = min(history, key=lambda item: history[item][0])
            del history[oldest]
        if uid not in history:
            return []
        ordered = sorted(history.items(), key=lambda item: (item[1][0], item[0]))
        at = next(i for i, (other, _) in enumerate(ordered) if other == uid)
        found: list[tuple[str, datetime, Mapping[str, Any]]] = []
        for i in (at, at + 1):  # this run, and the run that ended next after it
            if 0 < i < len(ordered):
                run_uid, (when, run_phase, run) = ordered[i]
                if run_phase == "Completed" and ordered[i - 1][1][1] in FAILED_PHASES:
                    found.append((f"{run_uid}/Recovered", when, run))
        return found

    def _selects(self, automation: Automation, namespace: str, body: Mapping[str, Any],
                 phase: str) -> bool:
        trigger = automation.spec.trigger
        status = body.get("status") or {}
        if trigger.run_phase is not None:
            if phase not in trigger.run_phase.phases:
                return False
            if trigger.run_phase.reasons and status.get("reason") not in trigger.run_phase.reasons:
                return False
            return self._matches(trigger.run_phase.selector, namespace, body)
        if trigger.recovery is not None:
            return phase == "Recovered" and self._matches(trigger.recovery.selector,
                                                          namespace, body)
        return False

    def _matches(self, selector: RunSelector, namespace: str, body: Mapping[str, Any]) -> bool:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        deployment = (spec.get("deploymentRef") or {}).get("name")
        if selector.deployments and deployment not in selector.deployments:
            return False
        labels = meta.get("labels") or {}
        if selector.label_selector is not None and any(
                labels.get(k) != v for k, v in selector.label_selector.match_labels.items()):
            return False
        dep_body = self.deployments.get(namespace, deployment) if deployment else None
        dep_spec = (dep_body or {}).get("spec") or {}
        if selector.flows:
            flow = (spec.get("flowRef") or {}).get("name") or (
                dep_spec.get("flowRef") or {}).get("name")
            if flow not in selector.flows:
                return False
        return not selector.tags or bool(set(selector.tags) & set(dep_spec.get("tags") or []))

    def _automation(self, key: Key) -> Automation | None:
        parsed = self._parse(key)
        return parsed if isinstance(parsed, Automation) else None

    def _parse(self, key: Key) -> Automation | str | None:
        body = self.bodies.get(key)
        if body is None:
            return None
        generation = int(body["metadata"].get("generation") or 0)
        cached = self.parsed.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        try:
            result: Automation | str = Automation.model_validate(
                {**body, "status": {}})
        except ValidationError as exc:
            result = "; ".join(format_validation_error(exc))
        self.parsed[key] = (generation, result)
        return result

    # --- reconcile --------------------------------------------------------------------
    async def reconcile(self, key: Key) -> Result:
        body = self.bodies.get(key)
        if body is None:
            return DONE
        parsed = self._parse(key)
        state = self.states.setdefault(key, _State())
        meta = body["metadata"]
        status: dict[str, Any] = dict(body.get("status") or {})
        now = self.clock.now()
        generation = meta.get("generation")
        if isinstance(parsed, str) or parsed is None:
            await self._invalid(key, body, str(parsed or "invalid"), now)
            return DONE

        created = parse_time(meta.get("creationTimestamp")) or now
        watermark = parse_time(status.get("watermark")) or created
        ledger: list[dict[str, Any]] = [dict(entry) for entry in status.get("ledger") or []]
        known = {entry["id"] for entry in ledger}

        new, fresh_deadline = self._new_transitions(key, parsed, state, created=created,
                                                    watermark=watermark, known=known, now=now)
        if not new and state.outcomes:
            # Outcomes alone are coalesced: one write records every outcome of the next
            # half second (they delay nothing a receiver sees; intents are never held).
            wait = state.last_write + OUTCOME_COALESCE_SECONDS - time.monotonic()
            if wait > 0:
                return Result(requeue_after=wait)
        contexts = {t.id: t for t in new}
        for transition in new:
            ledger.append({"id": transition.id, "run": transition.run,
                           "time": format_time(transition.time),
                           "actions": [{"action": i, "state": "Pending", "attempts": 0}
                                       for i in range(len(parsed.spec.actions))]})
        outcomes, state.outcomes = state.outcomes, []
        finished = self._apply(ledger, outcomes, parsed, status, now)
        ledger, watermark = _prune(ledger, watermark)
        fields: dict[str, Any] = {
            "ledger": ledger, "watermark": format_time(watermark),
            "observedGeneration": generation,
            "delivered": status.get("delivered", 0), "failed": status.get("failed", 0),
            "retried": status.get("retried", 0),
            "lastDeliveries": status.get("lastDeliveries") or [],
            "conditions": set_conditions(status.get("conditions") or [], [
                make_condition("Ready", True, "Watching",
                               f"acting on {parsed.spec.trigger.kind} transitions"),
                make_condition("Invalid", False, "Valid", "the spec is valid")], now),
        }
        for name in ("delivered", "failed", "retried", "lastDeliveries"):
            if name in finished.fields:
                fields[name] = finished.fields[name]
        changed = any(fields[name] != status.get(name) for name in fields)
        if changed:
            try:
                body = await self._write(key, body, fields)
            except kube.Conflict:
                state.outcomes[:0] = outcomes  # not recorded: apply them again
                await self._refresh(key)
                return Result(requeue=True)
            except BaseException:
                state.outcomes[:0] = outcomes
                raise
            state.last_write = time.monotonic()
            if new:
                _fault("after-intent")
        # An action stays in flight until its outcome is in the status: dispatching from
        # this ledger must not start again one whose outcome arrived during the write.
        for outcome in outcomes:
            state.inflight.discard((outcome.transition, outcome.action))
        for tid, transition in contexts.items():
            state.observed.pop(tid, None)
            state.contexts[tid] = transition
        pending = {entry["id"] for entry in ledger
                   if any(a["state"] == "Pending" for a in entry["actions"])}
        for tid in set(state.contexts) - pending:
            del state.contexts[tid]
        self._report(body, parsed, finished, state, now)

        next_at = self._dispatch(key, body, parsed, ledger, now)
        if fresh_deadline is not None:
            next_at = fresh_deadline if next_at is None else min(next_at, fresh_deadline)
        return Result(requeue_at=next_at) if next_at is not None else DONE

    async def _invalid(self, key: Key, body: Mapping[str, Any], message: str,
                       now: datetime) -> None:
        """Say why an Automation that does not parse acts on nothing (once per edit)."""
        status = body.get("status") or {}
        generation = body["metadata"].get("generation")
        conditions = set_conditions(status.get("conditions") or [], [
            make_condition("Ready", False, "Invalid", message),
            make_condition("Invalid", True, "InvalidSpec", message)], now)
        if conditions != status.get("conditions") or \
                status.get("observedGeneration") != generation:
            await self._write(key, body, {"conditions": conditions,
                                          "observedGeneration": generation})
            self.events.post(body, "Warning", "Invalid", message)

    def _new_transitions(self, key: Key, automation: Automation, state: _State, *,
                         created: datetime, watermark: datetime, known: set[str],
                         now: datetime) -> tuple[list[Transition], datetime | None]:
        """Transitions to add to the ledger (observed ones not in it and not before the
        watermark, and a stale freshness episode), and the next freshness deadline."""
        new: list[Transition] = []
        for tid, transition in list(state.observed.items()):
            if tid in known or transition.time < watermark:
                del state.observed[tid]
                continue
            new.append(transition)
        deadline: datetime | None = None
        if automation.spec.trigger.freshness is not None:
            stale, deadline = self._freshness(key, automation, created=created,
                                              watermark=watermark, known=known, now=now)
            if stale is not None:
                new.append(stale)
        return new, deadline

    def _freshness(self, key: Key, automation: Automation, *, created: datetime,
                   watermark: datetime, known: set[str], now: datetime,
                   ) -> tuple[Transition | None, datetime | None]:
        """The stale episode to act on now (if any), and when the next one could start."""
        trigger = automation.spec.trigger.freshness
        assert trigger is not None
        within = timedelta(seconds=trigger.seconds)
        last = self.last_success.get((key[0], trigger.deployment))
        since = max(last[0], created) if last is not None else created
        deadline = since + within
        if now < deadline:
            return None, deadline
        episode = f"freshness/{format_time(since)}"
        if episode in known or deadline < watermark:
            return None, None
        run_body = last[1] if last is not None else None
        return Transition(episode, deadline, None, run_body, extra={
            "deployment": trigger.deployment, "within_seconds": trigger.seconds,
            "last_success": format_time(last[0]) if last is not None else None,
            "stale_since": format_time(deadline)}), None

    def _apply(self, ledger: list[dict[str, Any]], outcomes: list[Outcome],
               automation: Automation, status: Mapping[str, Any], now: datetime) -> _Finished:
        """Write ``outcomes`` into ``ledger`` (in place); the counters they change."""
        finished = _Finished()
        if not outcomes:
            return finished
        by_id = {entry["id"]: entry for entry in ledger}
        delivered, failed = int(status.get("delivered", 0)), int(status.get("failed", 0))
        retried = int(status.get("retried", 0))
        last = {int(item["action"]): dict(item) for item in status.get("lastDeliveries") or []}
        for outcome in outcomes:
            entry = by_id.get(outcome.transition)
            if entry is None:
                continue
            actions = [dict(a) for a in entry["actions"]]
            entry["actions"] = actions
            slot = next((a for a in actions if a["action"] == outcome.action), None)
            if slot is None or slot["state"] != "Pending":
                continue
            slot["attempts"] = attempts = int(slot.get("attempts", 0)) + 1
            action = automation.spec.actions[outcome.action] \
                if outcome.action < len(automation.spec.actions) else None
            kind = action.type if action is not None else "removed"
            if outcome.delivered:
                slot["state"] = "Delivered"
                slot.pop("nextAttemptTime", None)
                slot.pop("message", None)
                delivered += 1
                finished.done.append((entry, outcome, kind, "Delivered", attempts))
            elif outcome.retryable and attempts < MAX_ATTEMPTS:
                delay = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** (attempts - 1))
                delay *= self._rng.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
                delay = max(delay, outcome.retry_after or 0.0)
                slot["nextAttemptTime"] = format_time(now + timedelta(seconds=delay))
                slot["message"] = outcome.message
                retried += 1
                finished.retrying.append((entry, outcome, kind, attempts))
                continue
            else:
                slot["state"] = "Failed"
                slot.pop("nextAttemptTime", None)
                slot["message"] = outcome.message
                failed += 1
                finished.done.append((entry, outcome, kind, "Failed", attempts))
            last[outcome.action] = {
                "action": outcome.action, "type": kind, "outcome": slot["state"],
                "run": entry.get("run"), "time": format_time(now), "attempts": attempts,
                **({"message": outcome.message} if outcome.message and
                   not outcome.delivered else {})}
        finished.fields = {"delivered": delivered, "failed": failed, "retried": retried,
                           "lastDeliveries": [last[i] for i in sorted(last)]}
        return finished

    def _report(self, body: Mapping[str, Any], automation: Automation, finished: _Finished,
                state: _State, now: datetime) -> None:
        """Events and metrics for outcomes that are now recorded in the status."""
        meta = body["metadata"]
        namespace, name = str(meta.get("namespace")), str(meta["name"])
        for entry, outcome, kind, result, attempts in finished.done:
            transition_time = parse_time(entry.get("time"))
            latency = (now - transition_time).total_seconds() \
                if transition_time is not None and result == "Delivered" else None
            self.observer.observe_automation_delivery(namespace, name, kind, result, latency)
            run = entry.get("run") or entry["id"]
            if result == "Failed":
                self.events.post(body, "Warning", "DeliveryFailed",
                                 f"action {outcome.action} ({kind}) for {run} failed after "
                                 f"{attempts} attempt(s): {outcome.message}")
            elif should_post("Normal", state.budget, now):
                self.events.post(body, "Normal", "Delivered",
                                 f"action {outcome.action} ({kind}) for {run} delivered"
                                 f" (attempt {attempts})")
        for entry, outcome, kind, attempts in finished.retrying:
            self.observer.observe_automation_delivery(namespace, name, kind, "Retrying", None)
            if attempts == 1:
                self.events.post(body, "Warning", "DeliveryRetrying",
                                 f"action {outcome.action} ({kind}) for "
                                 f"{entry.get('run') or entry['id']} failed, retrying: "
                                 f"{outcome.message}")

    async def _write(self, key: Key, body: Mapping[str, Any],
                     fields: Mapping[str, Any]) -> dict[str, Any]:
        patch = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]},
                 "status": dict(fields)}
        written: dict[str, Any] = await self.client.patch_status(
            kube.AUTOMATIONS, key[1], patch, namespace=key[0])
        if key in self.bodies:
            self.bodies[key] = written
        return written

    async def _refresh(self, key: Key) -> None:
        try:
            self.bodies[key] = await self.client.get(kube.AUTOMATIONS, key[1],
                                                     namespace=key[0])
        except kube.NotFound:
            self.bodies.pop(key, None)

    # --- delivery -----------------------------------------------------------------------
    def _dispatch(self, key: Key, body: Mapping[str, Any], automation: Automation,
                  ledger: list[dict[str, Any]], now: datetime) -> datetime | None:
        """Start the pending actions that are due; the next instant one falls due."""
        state = self.states.setdefault(key, _State())
        next_at: datetime | None = None
        for entry in ledger:
            for slot in entry["actions"]:
                if slot["state"] != "Pending":
                    continue
                index = int(slot["action"])
                due = parse_time(slot.get("nextAttemptTime"))
                if due is not None and due > now:
                    next_at = due if next_at is None else min(next_at, due)
                    continue
                if (entry["id"], index) in state.inflight:
                    continue
                state.inflight.add((entry["id"], index))
                if index >= len(automation.spec.actions):
                    state.outcomes.append(Outcome(entry["id"], index, False, False,
                                                  message="the action was removed"))
                    self.queue.wake(key)
                    continue
                task = asyncio.create_task(self._deliver(
                    key, body, automation.spec.actions[index], entry, index),
                    name=f"automation {key[0]}/{key[1]} {entry['id']} #{index}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return next_at

    async def _deliver(self, key: Key, automation_body: Mapping[str, Any], action: Action,
                       entry: Mapping[str, Any], index: int) -> None:
        tid = entry["id"]
        uid = str(automation_body["metadata"].get("uid") or "")
        idem = idempotency_key(uid, tid, index)
        try:
            context = await self._context(key, entry)
            await self._act(key, action, context, idem=idem, index=index, entry=entry)
            outcome = Outcome(tid, index, True)
            _fault("after-delivery")
        except TemplateError as exc:
            outcome = Outcome(tid, index, False, retryable=False, message=str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a receiver's or the API server's failure: recorded
            retryable = getattr(exc, "retryable", None)
            if retryable is None:
                retryable = not isinstance(exc, kube.KubeError) or not kube.is_final_rejection(
                    exc.status, exc.message)
            retry_after = getattr(exc, "retry_after", None)
            outcome = Outcome(tid, index, False, retryable=bool(retryable),
                              retry_after=float(retry_after) if retry_after else None,
                              message=safe_message(exc))
            logger.info("automation %s/%s: action %d for %s failed: %s", key[0], key[1],
                        index, tid, outcome.message)
        state = self.states.get(key)
        if state is not None:
            state.outcomes.append(outcome)  # still in flight until recorded (reconcile)
            self.queue.wake(key)

    async def _context(self, key: Key, entry: Mapping[str, Any]) -> dict[str, Any]:
        state = self.states.get(key)
        transition = state.contexts.get(entry["id"]) if state is not None else None
        run_body: Mapping[str, Any] | None = transition.body if transition else None
        if run_body is None and entry.get("run"):
            with contextlib.suppress(kube.NotFound):
                run_body = await self.client.get(kube.FLOWRUNS, str(entry["run"]),
                                                 namespace=key[0])
        context = flowrun_context(run_body or {"metadata": {"namespace": key[0]}},
                                  ui_url=self.ui_url)
        context["records"] = list(((run_body or {}).get("status") or {}).get("runRecords")
                                  or [])
        context["automation"] = {"name": key[1], "namespace": key[0]}
        context["transition"] = {"id": entry["id"], "time": entry.get("time")}
        if transition is not None and transition.extra:
            context["freshness"] = dict(transition.extra)
        elif str(entry["id"]).startswith("freshness/"):
            context["freshness"] = {"stale_since": entry.get("time")}
        return context

    async def _act(self, key: Key, action: Action, context: Mapping[str, Any], *, idem: str,
                   index: int, entry: Mapping[str, Any]) -> None:
        namespace = key[0]
        run = context["run"]
        where = f"spec.actions[{index}]"
        if action.notify is not None:
            if LOGS_FIELD.search(action.notify.subject + action.notify.body):
                context = {**context, "run": {**run, "logs": await asyncio.to_thread(
                    logs_excerpt, context.get("records") or [])}}
            subject = str(render(action.notify.subject, context, field=f"{where}.notify.subject"))
            text = str(render(action.notify.body, context, field=f"{where}.notify.body"))
            await self._notify(namespace, action.notify.block_ref.name, subject, text, idem)
        elif action.run_deployment is not None:
            target = action.run_deployment
            parameters = {name: render(template, context,
                                       field=f"{where}.runDeployment.parameters.{name}")
                          for name, template in target.parameters.items()}
            await self._create_run(namespace, target.name, parameters, idem=idem, key=key,
                                   entry=entry)
        elif action.cancel_run is not None:
            if not run.get("name"):
                raise TemplateError(f"{where}: cancelRun needs a triggering run")
            with contextlib.suppress(kube.NotFound):  # gone: nothing left to cancel
                await self.client.patch(kube.FLOWRUNS, run["name"], {"spec": {"cancel": True}},
                                        namespace=namespace)
        elif action.suspend is not None:
            if not run.get("deployment"):
                raise TemplateError(f"{where}: suspend needs a run of a Deployment")
            await self.client.patch(kube.DEPLOYMENTS, run["deployment"],
                                    {"spec": {"paused": True}}, namespace=namespace)

    async def _notify(self, namespace: str, block: str, subject: str, text: str,
                      idem: str) -> None:
        if self.notifier is None:
            raise RuntimeError("this operator has no notification block loader")
        loader = self.notifier
        loop = asyncio.get_running_loop()
        cached = self._blocks.get((namespace, block))
        if cached is not None and time.monotonic() - cached[0] < BLOCK_CACHE_SECONDS:
            target = cached[1]
        else:
            target = await asyncio.wait_for(
                loop.run_in_executor(self._pool, loader, namespace, block),
                timeout=NOTIFY_TIMEOUT_SECONDS)
            self._blocks[(namespace, block)] = (time.monotonic(), target)
        timeout = float(getattr(target, "timeout_seconds", None) or NOTIFY_TIMEOUT_SECONDS)

        def send() -> None:
            target.notify(subject, text, idempotency_key=idem, _sync=True)

        await asyncio.wait_for(loop.run_in_executor(self._pool, send), timeout=timeout + 5.0)

    async def _create_run(self, namespace: str, deployment: str, parameters: dict[str, Any],
                          *, idem: str, key: Key, entry: Mapping[str, Any]) -> None:
        dep = self.deployments.get(namespace, deployment)
        if dep is None:
            dep = await self.client.get(kube.DEPLOYMENTS, deployment, namespace=namespace)
        # No spec.trigger: "automation" is no FlowRunTrigger value; the annotation says it.
        body = deployment_run(
            dep, name=triggered_run_name(deployment, idem), namespace=namespace,
            parameters=parameters, trigger="automation", spec_trigger=False,
            labels={"headwater.dev/automation": label_value(key[1])},
            annotations={"headwater.dev/automation-transition": str(entry["id"])})
        # AlreadyExists: an earlier attempt (or leader) created it: exactly one run.
        with contextlib.suppress(kube.AlreadyExists):
            await self.client.create(kube.FLOWRUNS, body, namespace=namespace)

    async def aclose(self) -> None:
        """Cancel deliveries in flight (their intents stay Pending: the next leader
        delivers them with the same idempotency keys)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Finished:
    fields: dict[str, Any] = field(default_factory=dict)
    done: list[tuple[dict[str, Any], Outcome, str, str, int]] = field(default_factory=list)
    retrying: list[tuple[dict[str, Any], Outcome, str, int]] = field(default_factory=list)


def _prune(ledger: list[dict[str, Any]], watermark: datetime,
           ) -> tuple[list[dict[str, Any]], datetime]:
    """Keep every pending entry and the newest :data:`LEDGER_KEEP` finished ones; the
    watermark rises to the newest dropped entry's time (older transitions never fire)."""
    done = [e for e in ledger if all(a["state"] != "Pending" for a in e["actions"])]
    if len(done) <= LEDGER_KEEP:
        return ledger, watermark
    done.sort(key=lambda e: (e["time"], e["id"]))
    dropped = {e["id"] for e in done[:len(done) - LEDGER_KEEP]}
    for entry in done[:len(done) - LEDGER_KEEP]:
        moment = parse_time(entry["time"])
        if moment is not None and moment > watermark:
            watermark = moment
    return [e for e in ledger if e["id"] not in dropped], watermark


def _newer(body: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether ``body`` is a later version than ``than`` (resourceVersions are opaque in
    general; this operator compares them as integers when both are, as the emulator and
    etcd issue them, and otherwise takes the watch's)."""
    a, b = body["metadata"].get("resourceVersion"), than["metadata"].get("resourceVersion")
    try:
        return int(a) >= int(b)
    except (TypeError, ValueError):
        return True

