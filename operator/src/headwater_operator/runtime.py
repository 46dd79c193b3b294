"""The controller runtime: a keyed work queue, and workers that reconcile one key at a time.

This is the shape of client-go's ``workqueue`` driven by controller-runtime's
``Controller`` (and cert-manager's controllers): watch callbacks only *wake* a key; up to
``workers`` keys at once are taken in wake-up order, each by a task that calls the
controller's ``reconcile(key)`` (it reads what it needs, decides and writes, and says when
it wants to run again) and ends with it. Every
Headwater controller (FlowRuns, Schedules, Deployments, Flows) is one :class:`Controller`.

What the queue guarantees, and what a reconcile function may therefore rely on:

* **One worker per key at a time.** A key woken while it is being reconciled is marked
  *dirty* and queued again when that reconcile returns: the reconcile never races
  itself, and a wake-up during a reconcile is never lost (it gets one more run, which
  sees the change).
* **Deduplication.** A key woken many times before a worker takes it runs once.
* **A key's next run is its last reconcile's answer.** :class:`Result` says "again at
  once" (``requeue``), "at this instant" (``requeue_at``, on the operator's
  :class:`~headwater_operator.clock.Clock`, so a test's manual clock drives it), "in so
  many real seconds" (``requeue_after``), or nothing (wait for a wake-up). The answer
  replaces any timer the key had: a reconcile computes everything about its key, so its
  own answer is the whole truth.
* **Retries with backoff.** A reconcile that raises is retried after an exponential,
  jittered delay in *real* time (:class:`Backoff`: 1 s, 2 s, 4 s… capped at 30 s, ±20 %),
  whatever the clock says — retries are about the API server, not the schedule. A
  wake-up (a watch event) runs it sooner, as in client-go; a success resets the delay.
* **Stopping.** :meth:`Controller.run` works until cancelled; cancelling it cancels the
  reconciles in flight (the leader that lost its Lease must stop writing at once).
  :meth:`Controller.drain` first lets in-flight reconciles finish for a grace period
  (an orderly shutdown). Nothing is persisted: a new leader relists everything.

Cost: waking a key is a few set operations; the queue holds keys, not objects.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from headwater_operator.clock import Clock, Timer, get_clock

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

DISPATCH_BATCH = 32
"""Reconciles started per turn of the event loop. Each runs its first step (reading,
deciding, building a request) before the loop does anything else, so ten thousand keys
woken together (a cron fleet at the top of the hour) would hold the loop for seconds
before the first request left; started a batch per turn, the first requests are on the
wire while the rest are prepared (``docs/decisions.md``)."""


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next (see the module docstring)."""

    requeue: bool = False
    """Run again as soon as a worker is free (something changed; the next step may follow)."""
    requeue_at: datetime | None = None
    """Run again once the clock reaches this instant (a deadline, a tick, an expiry)."""
    requeue_after: float | None = None
    """Run again after this many *real* seconds, whatever the clock says (a write held
    back to coalesce it with the next ones). With ``requeue_at``: whichever comes first."""


DONE = Result()
"""Nothing to do until the key is woken."""
AGAIN = Result(requeue=True)


@dataclass(frozen=True)
class Backoff:
    """Exponential, jittered delays (real seconds) between retries of a failing key."""

    initial: float = 1.0
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    """Each delay is multiplied by a uniform factor in ``[1 - jitter, 1 + jitter]`` so
    that keys failing together (an API server outage) do not retry in lock step."""

    def delay(self, failures: int, rng: random.Random) -> float:
        """The wait before the retry that follows the ``failures``-th failure in a row."""
        try:
            grown = self.initial * self.factor ** max(0, failures - 1)
        except OverflowError:  # a key failing for days: float powers overflow, not inf
            grown = self.maximum
        base = min(self.maximum, grown)
        return base * rng.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else base


@dataclass
class Stats:
    """Counters of one controller, read by the metrics at scrape time."""

    reconciles: int = 0
    errors: int = 0
    """Reconciles that raised (each is retried)."""
    seconds: float = 0.0
    """Wall-clock seconds spent in reconciles."""


Reconcile = Callable[[K], Awaitable[Result]]


class _RealTimer:
    """A backoff wait on the loop's own (monotonic) timers."""

    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self._handle = asyncio.get_running_loop().call_later(delay, callback)

    def cancel(self) -> None:
        self._handle.cancel()


@dataclass
class _State(Generic[K]):
    ready: deque[K] = field(default_factory=deque)
    queued: set[K] = field(default_factory=set)
    processing: dict[K, asyncio.Task[None]] = field(default_factory=dict)
    """Keys being reconciled, with the task reconciling each."""
    dirty: set[K] = field(default_factory=set)
    timers: dict[K, list[Timer]] = field(default_factory=dict)
    failures: dict[K, int] = field(default_factory=dict)


class Controller(Generic[K]):
    """A named work queue of keys and the workers that ``reconcile`` them.

    ``workers`` bounds how many keys are reconciled at once (each reconcile mostly waits
    on the API server, so tens are cheap). ``clock`` times ``requeue_at`` (default: the
    operator's :func:`~headwater_operator.clock.get_clock`); ``rng`` the jitter.
    Failures of the ``expected`` types (the client's error for an API error answer,
    connection trouble) are logged without a traceback: their message says it all.
    """

    def __init__(self, name: str, reconcile: Reconcile[K], *, workers: int = 16,
                 clock: Clock | None = None, backoff: Backoff = Backoff(),
                 expected: tuple[type[BaseException], ...] = (OSError, TimeoutError),
                 rng: random.Random | None = None) -> None:
        if workers < 1:
            raise ValueError(f"controller {name}: workers must be at least 1, not {workers}")
        self.name = name
        self.workers = workers
        self.backoff = backoff
        self.stats = Stats()
        self._reconcile = reconcile
        self._clock = clock
        self._rng = rng or random.Random()
        self._s: _State[K] = _State()
        self._next_turn_scheduled = False
        self._started_this_turn = 0
        self._running = False
        self._stopping = False
        self._expected = expected

    @property
    def clock(self) -> Clock:
        return self._clock if self._clock is not None else get_clock()

    def __repr__(self) -> str:
        return f"Controller({self.name!r}, depth={self.depth})"

    @property
    def depth(self) -> int:
        """Keys waiting for a worker (``workqueue_depth`` in client-go's terms)."""
        return len(self._s.ready)

    @property
    def busy(self) -> int:
        """Keys being reconciled now."""
        return len(self._s.processing)

    # --- waking keys (synchronous, cheap: called from watch callbacks) ---------------------
    def wake(self, key: K) -> None:
        """Reconcile ``key`` soon (once, however often it is woken before a worker is free)."""
        s = self._s
        if key in s.processing:
            s.dirty.add(key)
        elif key not in s.queued:
            s.queued.add(key)
            s.ready.append(key)
            self._dispatch()

    def forget(self, key: K) -> None:
        """Drop ``key``'s timer and retry count (its object is gone); a queued run still
        happens, and must find that out by itself."""
        for timer in self._s.timers.pop(key, ()):
            timer.cancel()
        self._s.failures.pop(key, None)
        self._s.dirty.discard(key)

    def pending(self, key: K) -> bool:
        """Whether ``key`` is queued, being reconciled, or has a timer or retry set."""
        s = self._s
        return key in s.queued or key in s.processing or key in s.timers

    def _set_timers(self, key: K, *timers: Timer) -> None:
        for previous in self._s.timers.pop(key, ()):
            previous.cancel()
        if timers:
            self._s.timers[key] = list(timers)

    def _fire(self, key: K) -> None:
        self._set_timers(key)  # cancels the other of a key's two timers, if any
        self.wake(key)

    # --- working ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Reconcile woken keys, at most ``workers`` at once, until cancelled."""
        if self._running:
            raise RuntimeError(f"controller {self.name} is already running")
        self._running = True
        try:
            self._dispatch()  # what was woken before the workers could start
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self._running = False
            in_flight = list(self._s.processing.values())
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            for timers in self._s.timers.values():
                for timer in timers:
                    timer.cancel()
            self._s.timers.clear()

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the reconciles in flight to finish.

        Call it before cancelling :meth:`run` for an orderly stop; no new key is taken
        meanwhile.
        """
        self._stopping = True
        in_flight = [task for task in self._s.processing.values() if not task.done()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace)

    def _dispatch(self) -> None:
        """Start a reconcile for each ready key while fewer than ``workers`` run.

        A worker is a task that exists only while it reconciles its key: nothing idles,
        and a wake-up resumes no sleeping worker (a pool of workers waiting on one event
        would all be resumed by every wake-up, to find one key among them).
        """
        s = self._s
        if not self._running or self._stopping:
            return
        while s.ready and len(s.processing) < self.workers:
            if self._started_this_turn >= DISPATCH_BATCH:
                return  # the rest on the loop's next turn (_next_turn is scheduled)
            if not self._next_turn_scheduled:
                # Answers that arrive meanwhile are handled before the next batch, so
                # requests keep flowing while a burst is started.
                self._next_turn_scheduled = True
                asyncio.get_running_loop().call_soon(self._next_turn)
            key = s.ready.popleft()
            s.queued.discard(key)
            task = s.processing[key] = asyncio.ensure_future(self._one(key))
            task.add_done_callback(functools.partial(self._done, key))
            self._started_this_turn += 1

    def _next_turn(self) -> None:
        self._next_turn_scheduled = False
        self._started_this_turn = 0
        self._dispatch()

    def _done(self, key: K, task: asyncio.Task[None]) -> None:
        del self._s.processing[key]
        if key in self._s.dirty:
            self._s.dirty.discard(key)
            self.wake(key)
        self._dispatch()

    async def _one(self, key: K) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result = await self._reconcile(key)
        except Exception as exc:
            failures = self._s.failures.get(key, 0) + 1
            self._s.failures[key] = failures
            delay = self.backoff.delay(failures, self._rng)
            self.stats.errors += 1
            logger.warning("%s %s: reconcile failed (%s: %s); retry %d in %.1f s",
                           self.name, _show(key), type(exc).__name__, exc, failures, delay,
                           exc_info=not isinstance(exc, self._expected))
            self._set_timers(key, _RealTimer(delay, lambda: self._fire(key)))
            return
        finally:
            self.stats.reconciles += 1
            self.stats.seconds += loop.time() - started
        self._s.failures.pop(key, None)
        if result.requeue:
            self._set_timers(key)
            self._s.dirty.add(key)
            return
        timers: list[Timer] = []
        if result.requeue_at is not None:
            timers.append(self.clock.call_at(result.requeue_at, lambda: self._fire(key)))
        if result.requeue_after is not None:
            timers.append(_RealTimer(max(0.0, result.requeue_after), lambda: self._fire(key)))
        self._set_timers(key, *timers)


def _show(key: object) -> str:
    if isinstance(key, tuple):
        return "/".join(str(part) for part in key)
    return str(key)
