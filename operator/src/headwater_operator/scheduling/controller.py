"""The Schedule controller: one asyncio task per Schedule, fed by the operator's own watches.

Each Schedule gets a task that sleeps until its next tick, wakes, reconciles
(:func:`~headwater_operator.scheduling.reconciler.reconcile_schedule`) and sleeps again.
No loop scans all Schedules: a task wakes only at its own tick, or early when its
doorbell rings — its spec changed (a new ``metadata.generation``), its Deployment was
created, deleted, paused or unpaused, or one of its active runs finished.

Why not kopf daemons and indexes (what this replaced): every tick causes two watch events
by itself — the status write (a Schedule ``MODIFIED``) and the run it creates (a FlowRun
``ADDED``) — and kopf runs its whole per-event machinery on each (object memories,
handler kwargs, loggers, patches, daemon bookkeeping). Measured with
``benchmarks/scheduling.py`` at 1,000 Schedules every 5 s, that machinery was ~30 % of
the operator's CPU and the operator saturated a core. Here an event costs one
``json.loads`` in the :class:`~headwater_operator.informer.Informer` and a few dictionary
operations in the ``_on_*`` callbacks below.

What the controller remembers, all fed by watches (LIST, then WATCH):

* Deployments: uid and ``spec.paused`` per (namespace, name);
* FlowRuns labelled with a Schedule: only the *active* ones, and the latest completed
  one per Schedule (for ``lastSuccessfulTime``). Memory stays proportional to the
  Schedules and their active runs, not to every run ever created (kopf's index kept each
  one, ~4 KB a run);
* Schedules: the latest object the watch delivered, and the task.

Decisions and writes stay in the reconciler; the status write's response is the body the
next wake-up starts from (only this controller writes a Schedule's status, and the
watch may not have delivered that write yet).

With more than one operator replica, :mod:`headwater_operator.handlers.schedules` runs
the controller only in the replica that holds a ``coordination.k8s.io`` Lease
(:class:`~headwater_operator.leader.LeaderElection`). Even two concurrent controllers
could not duplicate a run: run names derive from the Schedule and the tick, and
``AlreadyExists`` counts as success.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from headwater.contract import LABEL_SCHEDULE

from headwater_operator import kube, reasons
from headwater_operator.conditions import format_time
from headwater_operator.informer import Informer
from headwater_operator.scheduling.clock import Clock, get_clock
from headwater_operator.scheduling.events import EventBudget, should_post
from headwater_operator.scheduling.reconciler import (
    TERMINAL_PHASES,
    Cache,
    WatchState,
    reconcile_schedule,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]
"""(namespace, name)."""

RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Real seconds between attempts after a wake-up failed (API server away, 5xx, …)."""
STOP_GRACE_SECONDS = 1.0
"""How long a stopping controller lets in-flight wake-ups finish before cancelling."""
ACTIVE_REFRESH_SLACK_SECONDS = 10.0
"""A run's end refreshes the status at once unless the next tick is at most this near."""
EVENT_COMPONENT = "headwater-operator"
MAX_CONCURRENT_EVENT_POSTS = 8


@dataclass
class _Entry:
    """What the controller keeps per Schedule."""

    live: dict[str, Any]
    """The latest Schedule the watch delivered: metadata and spec (its status only until
    the task first woke; after that the task's own last status write is newer)."""
    doorbell: asyncio.Event = field(default_factory=asyncio.Event)
    generation: Any = None
    """The ``metadata.generation`` the task last reconciled."""
    deployment: str | None = None
    """The Deployment its spec names, for Deployment events."""
    active: frozenset[str] = frozenset()
    """Runs the last wake-up listed as active: their end rings the doorbell."""
    next_tick: datetime | None = None
    """When the task sleeps until (None: until rung)."""
    reread: bool = False
    """The spec changed since the task last looked: take metadata and spec from ``live``."""
    watch: WatchState | None = None
    """The task's :class:`WatchState`, whose ``unseen`` runs the run watch settles."""
    stopped: bool = False
    task: asyncio.Task[None] | None = None


RunFacts = tuple[str | None, str | None, str | None]
"""What the controller keeps of a run: ``(spec.scheduledTime, status.phase,
status.endTime)`` — a tuple, not a dict: a benchmark keeps tens of thousands of runs."""


class _RunsView(Mapping[Key, Iterable[Mapping[str, Any]]]):
    """The reconciler's view of the runs: (namespace, schedule) → its remembered runs."""

    def __init__(self, by_schedule: dict[Key, dict[str, RunFacts]]) -> None:
        self._by_schedule = by_schedule

    def __getitem__(self, key: Key) -> Iterable[Mapping[str, Any]]:
        return [
            {"metadata": {"name": name}, "spec": {"scheduledTime": scheduled},
             "status": {"phase": phase, "endTime": end}}
            for name, (scheduled, phase, end) in self._by_schedule[key].items()
        ]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._by_schedule)

    def __len__(self) -> int:
        return len(self._by_schedule)


class ScheduleController:
    """Watches Schedules, Deployments and scheduled FlowRuns; drives one task per Schedule.

    ``namespaces``: the namespaces to watch, or None for the whole cluster.
    """

    def __init__(self, client: kube.Kube, namespaces: Iterable[str] | None, *,
                 clock: Clock | None = None) -> None:
        self.client = client
        self.namespaces: list[str | None] = (
            list(namespaces) if namespaces is not None else [None])
        self._clock = clock
        self.schedules: dict[Key, _Entry] = {}
        self.deployments: dict[Key, tuple[dict[str, Any]]] = {}
        self.runs: dict[Key, dict[str, RunFacts]] = {}
        """(namespace, schedule) → run name → what the reconciler needs of the run."""
        self._latest_completed: dict[Key, tuple[str, str]] = {}
        """(namespace, schedule) → (run name, endTime) of its latest completed run."""
        self.cache = Cache(deployments=self.deployments, runs=_RunsView(self.runs))
        self._posting = asyncio.Semaphore(MAX_CONCURRENT_EVENT_POSTS)
        self._background: set[asyncio.Task[Any]] = set()
        self.synced = asyncio.Event()
        """Set once every watch listed what exists (and each Schedule's task started)."""

    @property
    def clock(self) -> Clock:
        return self._clock if self._clock is not None else get_clock()

    # --- running ----------------------------------------------------------------------
    async def run(self) -> None:
        """Watch and schedule until cancelled; then stop every Schedule's task.

        Each run starts from nothing and lists everything again (a replica that regains
        the Lease must not trust what it saw before it lost it).
        """
        for remembered in (self.schedules, self.deployments, self.runs,
                           self._latest_completed):
            remembered.clear()
        self.synced.clear()
        feeds = [informer for namespace in self.namespaces for informer in (
            Informer(self.client, kube.DEPLOYMENTS, namespace=namespace,
                     on_event=self.on_deployment),
            Informer(self.client, kube.FLOWRUNS, namespace=namespace,
                     label_selector=LABEL_SCHEDULE, on_event=self.on_run,
                     remember=_is_active_run),
        )]
        schedules = [Informer(self.client, kube.SCHEDULES, namespace=namespace,
                              on_event=self.on_schedule) for namespace in self.namespaces]
        tasks = [asyncio.create_task(feed.run()) for feed in feeds]
        try:
            # Deployments and runs first: a Schedule's first wake-up then finds its
            # Deployment and its active runs (after a restart: Forbid must see them).
            await _wait_all(feed.synced for feed in feeds)
            tasks += [asyncio.create_task(feed.run()) for feed in schedules]
            await _wait_all(feed.synced for feed in schedules)
            self.synced.set()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._stop_all()

    async def _stop_all(self) -> None:
        entries = list(self.schedules.values())
        self.schedules.clear()
        for entry in entries:
            entry.stopped = True
            entry.doorbell.set()
        running = [entry.task for entry in entries if entry.task is not None]
        if running:
            _done, pending = await asyncio.wait(running, timeout=STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # --- watch callbacks (cheap: called for every event) ---------------------------------
    def on_schedule(self, type_: str, obj: dict[str, Any]) -> None:
        """A Schedule appeared, changed or went: start, ring or stop its task."""
        meta = obj.get("metadata") or {}
        key = _key(meta)
        entry = self.schedules.get(key)
        if type_ == "DELETED":
            if entry is not None:
                self._stop(key, entry)
            return
        if entry is not None and entry.live["metadata"].get("uid") != meta.get("uid"):
            # Deleted and created again while the watch was away: a new Schedule.
            self._stop(key, entry)
            entry = None
        if entry is None:
            entry = self.schedules[key] = _Entry(live=obj)
            entry.task = asyncio.create_task(self._drive(key, entry),
                                              name=f"schedule {key[0]}/{key[1]}")
            return
        if entry.generation is not None:
            # The task has its own, newer status (its last write): keep metadata and spec
            # only, or every Schedule would hold two copies of a growing status.active.
            obj.pop("status", None)
        entry.live = obj
        if meta.get("generation") != entry.generation:
            entry.reread = True
            entry.doorbell.set()

    def on_deployment(self, type_: str, obj: dict[str, Any]) -> None:
        """Remember uid and ``paused``; a change of either wakes the Schedules using it.

        A Deployment's status changes with every run it starts; that must not wake its
        Schedules, so only existence, uid and ``spec.paused`` count.
        """
        meta = obj.get("metadata") or {}
        key = _key(meta)
        before = self.deployments.get(key)
        if type_ == "DELETED":
            self.deployments.pop(key, None)
            changed = before is not None
        else:
            slim = {"metadata": {"name": key[1], "uid": meta.get("uid")},
                    "spec": {"paused": bool((obj.get("spec") or {}).get("paused"))}}
            self.deployments[key] = (slim,)
            changed = before is None or before[0] != slim
        if changed:
            for (namespace, _name), entry in self.schedules.items():
                if namespace == key[0] and entry.deployment == key[1]:
                    entry.doorbell.set()

    def on_run(self, type_: str, obj: dict[str, Any]) -> None:
        """Keep a Schedule's active runs and its latest completed one; ring on an end."""
        meta = obj.get("metadata") or {}
        namespace, name = _key(meta)
        schedule = (meta.get("labels") or {}).get(LABEL_SCHEDULE)
        key = (namespace, schedule) if schedule else self._owner(namespace, name)
        if key is None:
            return
        entry = self.schedules.get(key)
        if entry is not None and entry.watch is not None:
            # The watch has shown this run: from now on the remembered runs say whether
            # it is active. Left among the task's unseen runs, a run created and then
            # deleted or ended before the task looked again (its Deployment deleted, the
            # garbage collector taking its runs) would count as active for a minute.
            entry.watch.unseen.pop(name, None)
        status = obj.get("status") or {}
        phase = status.get("phase")
        runs = self.runs.setdefault(key, {})
        if type_ != "DELETED" and phase not in TERMINAL_PHASES:
            runs[name] = _run_facts(obj)
            return
        was_active = name in runs and runs[name][1] not in TERMINAL_PHASES
        self._forget_run(key, name)
        end = status.get("endTime")
        if type_ != "DELETED" and phase == "Completed" and end:
            latest = self._latest_completed.get(key)
            if latest is None or str(end) > latest[1]:
                if latest is not None:
                    self._forget_run(key, latest[0])
                self._latest_completed[key] = (name, str(end))
                runs[name] = _run_facts(obj)
        if not runs:
            del self.runs[key]
        if entry is not None and (was_active or name in entry.active) \
                and not self._tick_is_near(entry):
            entry.doorbell.set()

    def _tick_is_near(self, entry: _Entry) -> bool:
        """Whether the Schedule's next tick comes soon enough to refresh its status.

        A run's end only changes what ``status`` shows (``active``,
        ``lastSuccessfulTime``); the decisions (``Forbid``, ``Replace``) read the runs
        remembered here, which are already current. Waking to rewrite the status when
        the next tick is due within :data:`ACTIVE_REFRESH_SLACK_SECONDS` anyway would
        double the status writes of every frequent Schedule.
        """
        if entry.next_tick is None:
            return False
        left = (entry.next_tick - self.clock.now()).total_seconds()
        return left <= ACTIVE_REFRESH_SLACK_SECONDS

    def _owner(self, namespace: str, name: str) -> Key | None:
        """The Schedule of a run reported without labels (deleted while unwatched; rare)."""
        return next((key for key, runs in self.runs.items()
                     if key[0] == namespace and name in runs), None)

    def _forget_run(self, key: Key, name: str) -> None:
        runs = self.runs.get(key)
        if runs is not None:
            runs.pop(name, None)
        latest = self._latest_completed.get(key)
        if latest is not None and latest[0] == name:
            del self._latest_completed[key]

    def _stop(self, key: Key, entry: _Entry) -> None:
        entry.stopped = True
        entry.doorbell.set()
        if self.schedules.get(key) is entry:
            del self.schedules[key]

    # --- one Schedule ------------------------------------------------------------------
    async def _drive(self, key: Key, entry: _Entry) -> None:
        """Wake at each tick (or when rung), reconcile, post Events, sleep again."""
        clock = self.clock
        state = entry.watch = WatchState(watching_since=clock.now())
        budget = EventBudget()
        schedule: dict[str, Any] | None = None
        failures = 0
        while not entry.stopped:
            entry.doorbell.clear()
            try:
                if schedule is None and failures:
                    # After a failure the last status write may or may not have landed.
                    schedule = await self.client.get(kube.SCHEDULES, key[1],
                                                     namespace=key[0])
                elif schedule is None or entry.reread:
                    schedule = fresh_schedule(entry.live, written=schedule)
                    entry.live.pop("status", None)  # see on_schedule
                entry.reread = False
                entry.generation = schedule["metadata"].get("generation")
                entry.deployment = (schedule.get("spec") or {}).get(
                    "deploymentRef", {}).get("name")
                result = await reconcile_schedule(self.client, schedule, state, clock.now(),
                                                  cache=self.cache)
            except kube.NotFound:
                return  # deleted meanwhile; the watch's DELETED stops the entry too
            except kube.Invalid as exc:
                # 422: refused for what was sent (a status the schema refuses, say), so a
                # retry gets the same answer. Say so on the Schedule and wait for a change
                # (its spec, its Deployment, a run's end) instead of retrying every 30 s.
                logger.error("Schedule %s/%s: the API server refused a write: %s; not "
                             "retried until something changes", key[0], key[1], exc.message)
                self._post_events(schedule or entry.live, [status_rejected_event(exc)],
                                  budget, clock.now())
                schedule, failures = None, failures + 1
                await entry.doorbell.wait()
                continue
            except Exception as exc:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                logger.warning("Schedule %s/%s: wake-up failed (%s); retrying in %.0f s",
                               key[0], key[1], exc, delay)
                schedule = None
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await _until_stopped(entry)
                continue
            failures = 0
            entry.active, entry.next_tick = frozenset(result.active), result.next_tick
            self._post_events(schedule, result.events, budget, clock.now())
            schedule = result.body
            if result.next_tick is None:
                await entry.doorbell.wait()
            else:
                await clock.sleep_until(result.next_tick, entry.doorbell)

    # --- Events ------------------------------------------------------------------------
    def _post_events(self, schedule: Mapping[str, Any], events: list[tuple[str, str, str]],
                     budget: EventBudget, now: datetime) -> None:
        """Post the wake-up's Events in the background; routine ones within ``budget``."""
        for type_, reason, message in events:
            if should_post(type_, budget, now):
                body = schedule_event(schedule, type_, reason, message, now)
                task = asyncio.create_task(self._post(body))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _post(self, body: dict[str, Any]) -> None:
        async with self._posting:
            try:
                await self.client.create(kube.EVENTS, body)
            except Exception as exc:
                logger.warning("could not post Event %s on Schedule %s: %s",
                               body["reason"], body["involvedObject"]["name"], exc)


def status_rejected_event(error: kube.KubeError) -> tuple[str, str, str]:
    """The Warning Event for a wake-up whose write the API server refused (422)."""
    return ("Warning", reasons.STATUS_REJECTED, (
        f"the API server refused a write of this Schedule's wake-up ({error.message}); "
        "it is not retried until the Schedule, its Deployment or one of its runs changes. "
        "Report this to the Headwater maintainers with the Schedule's status"))


def schedule_event(schedule: Mapping[str, Any], type_: str, reason: str, message: str,
                   now: datetime) -> dict[str, Any]:
    """A core/v1 Event about ``schedule`` (what ``kubectl describe schedule`` lists)."""
    meta = schedule["metadata"]
    namespace = meta.get("namespace") or "default"
    when = format_time(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": schedule.get("apiVersion"), "kind": "Schedule",
            "name": meta["name"], "namespace": namespace, "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": reasons.event_message(message),
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
    }


def fresh_schedule(live: Mapping[str, Any], *, written: Mapping[str, Any] | None
                   ) -> dict[str, Any]:
    """The Schedule to reconcile after a spec change (or at the task's start).

    Metadata and spec come from the watch's latest object, which already holds the
    change that rang the doorbell, so no GET is needed. The status comes from this
    controller's own last status write when there is one: only the controller writes
    it, and the watch may not have delivered that write yet, so the watched status can
    be older.
    """
    fresh: dict[str, Any] = copy.deepcopy(dict(live))
    if written is not None:
        fresh["status"] = copy.deepcopy(dict(written.get("status") or {}))
    return fresh


def _key(meta: Mapping[str, Any]) -> Key:
    """(namespace, name) of a watched object (the reconciler's ``default`` when unset)."""
    return meta.get("namespace") or "default", meta["name"]


def _is_active_run(run: Mapping[str, Any]) -> bool:
    """Whether the FlowRuns' informer must remember ``run`` (a finished one never changes
    what the controller does, so its memory follows active runs, not run history)."""
    return (run.get("status") or {}).get("phase") not in TERMINAL_PHASES


def _run_facts(run: Mapping[str, Any]) -> RunFacts:
    """What ``status.active``, Forbid and ``lastSuccessfulTime`` need of a run."""
    status = run.get("status") or {}
    return ((run.get("spec") or {}).get("scheduledTime"), status.get("phase"),
            status.get("endTime"))


async def _until_stopped(entry: _Entry) -> None:
    while not entry.stopped:
        await entry.doorbell.wait()
        entry.doorbell.clear()


async def _wait_all(events: Iterable[Any]) -> None:
    await asyncio.gather(*(event.wait() for event in events))
