"""The controller runtime's work queue keeps the promises of its module docstring.

Each test drives a :class:`~headwater_operator.runtime.Controller` with a scripted
``reconcile`` (what it answers, when it may finish) and checks one guarantee: dedupe, one
worker per key, the rerun after a wake during a reconcile, ``requeue`` / ``requeue_at`` /
``requeue_after``, timers replaced by each answer, backoff, ``forget``, ``drain`` and
cancellation. (These replace the per-controller wake-up tests of the hand-made queues,
such as the Deployment handler's ``wake_at``/``request``: every controller now gets
these semantics from this one queue.)

No test waits for real seconds. ``requeue_at`` runs on a :class:`ManualClock` the test
moves. The real-time waits (``requeue_after`` and retry backoff) go through the runtime's
``_RealTimer``, which the ``timers`` fixture replaces with recorded timers the test fires
by hand, so a backoff delay is read exactly instead of being timed; one test lets a tiny
real backoff run to show the real timer is wired up too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from headwater_operator import runtime
from headwater_operator.clock import ManualClock
from headwater_operator.runtime import AGAIN, DONE, Backoff, Controller, Result

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
Key = str | tuple[str, str]
DEFAULT_BACKOFF = Backoff()


class Boom(Exception):
    """A reconcile failure the controller does not expect (logged with a traceback)."""


# --- the scripted reconcile -------------------------------------------------------------
class Script:
    """A ``reconcile`` that records its calls and answers from per-key scripts.

    ``answers[key]`` is consumed one per call (an exception is raised; the default is
    :data:`DONE`); while ``gates[key]`` exists and is not set, calls of ``key`` wait.
    """

    def __init__(self) -> None:
        self.calls: list[Key] = []
        self.answers: dict[Key, list[Result | Exception]] = defaultdict(list)
        self.gates: dict[Key, asyncio.Event] = {}
        self.in_flight: Counter[Key] = Counter()
        self.most_at_once: Counter[Key] = Counter()
        self.cancelled: list[Key] = []
        self.called = asyncio.Event()
        """Set at every call (cleared by whoever waits for the next one)."""

    async def __call__(self, key: Key) -> Result:
        self.calls.append(key)
        self.called.set()
        self.in_flight[key] += 1
        self.most_at_once[key] = max(self.most_at_once[key], self.in_flight[key])
        try:
            gate = self.gates.get(key)
            if gate is not None:
                await gate.wait()
            answer = self.answers[key].pop(0) if self.answers[key] else DONE
            if isinstance(answer, Exception):
                raise answer
            return answer
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            self.in_flight[key] -= 1

    def hold(self, key: Key) -> asyncio.Event:
        """Make calls of ``key`` wait until the returned event is set."""
        gate = self.gates[key] = asyncio.Event()
        return gate

    def count(self, key: Key) -> int:
        return self.calls.count(key)


# --- real-time timers, by hand ----------------------------------------------------------
class FakeTimer:
    """One real-time wait the runtime started: its delay, and a way to end it now."""

    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay = delay
        self.callback = callback
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        assert not self.cancelled, "a cancelled timer cannot fire"
        self.fired = True
        self.callback()


class Timers:
    """Stands in for ``runtime._RealTimer``: records every wait, fires none by itself."""

    def __init__(self) -> None:
        self.started: list[FakeTimer] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(delay, callback)
        self.started.append(timer)
        return timer

    def live(self) -> list[FakeTimer]:
        return [t for t in self.started if not t.cancelled and not t.fired]

    def only(self) -> FakeTimer:
        live = self.live()
        assert len(live) == 1, f"expected one live real-time timer, got {len(live)}"
        return live[0]


@pytest.fixture
def timers(monkeypatch: pytest.MonkeyPatch) -> Timers:
    recorded = Timers()
    monkeypatch.setattr(runtime, "_RealTimer", recorded)
    return recorded


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def script() -> Script:
    return Script()


def controller(script: Script, clock: ManualClock, *, workers: int = 1,
               backoff: Backoff = DEFAULT_BACKOFF, seed: int = 7) -> Controller[Key]:
    return Controller("test", script, workers=workers, clock=clock, backoff=backoff,
                      rng=random.Random(seed))


@contextlib.asynccontextmanager
async def running(queue: Controller[Key]) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(queue.run())
    try:
        yield task
    finally:
        task.cancel()
        # A hang guard, not a timed assertion: a run() that does not end on cancel fails.
        await asyncio.wait({task}, timeout=5)
        assert task.done(), "run() did not end when cancelled"
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], bool], what: str = "the condition") -> None:
    """Let the loop run until ``condition`` holds (loop turns, not seconds)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{what} never came true")


async def settle(queue: Controller[Key]) -> None:
    """Let the loop run until no key is queued or being reconciled, for a while."""
    quiet = 0
    for _ in range(10_000):
        quiet = quiet + 1 if queue.depth == 0 and queue.busy == 0 else 0
        if quiet >= 20:
            return
        await asyncio.sleep(0)
    raise AssertionError("the queue never went quiet")


# --- waking -------------------------------------------------------------------------------
async def test_keys_woken_many_times_before_a_worker_is_free_run_once_in_order(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    for key in ("a", "a", "b", "a", "b"):
        queue.wake(key)
    assert queue.depth == 2
    assert queue.pending("a")
    assert not queue.pending("c")
    async with running(queue):
        await settle(queue)
    assert script.calls == ["a", "b"]
    assert not queue.pending("a")


async def test_a_burst_of_wake_ups_starts_in_batches_and_in_wake_up_order(
        script: Script, clock: ManualClock) -> None:
    """Ten thousand Schedules due together must not hold the loop while all of them start:
    a batch per loop turn, so requests already sent get their answers in between."""
    queue = controller(script, clock, workers=10_000)
    keys = [f"k{n:03d}" for n in range(3 * runtime.DISPATCH_BATCH + 5)]
    async with running(queue):
        await asyncio.sleep(0)  # run() has started
        for key in keys:
            queue.wake(key)
        assert queue.busy == runtime.DISPATCH_BATCH  # the first batch, started at once
        await asyncio.sleep(0)
        assert queue.busy <= 2 * runtime.DISPATCH_BATCH
        await settle(queue)
    assert script.calls == keys


async def test_a_key_is_reconciled_by_one_worker_at_a_time_while_others_proceed(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock, workers=4)
    gate = script.hold("a")
    async with running(queue):
        queue.wake("a")
        await until(lambda: script.calls == ["a"])
        for _ in range(5):
            queue.wake("a")
            queue.wake("b")
            await settle_while_held(queue)
        # Three workers were idle, yet "a" did not start a second time; "b" ran.
        assert script.count("a") == 1
        assert script.count("b") >= 1
        assert queue.busy == 1
        gate.set()
        await settle(queue)
    assert script.most_at_once["a"] == 1


async def settle_while_held(queue: Controller[Key]) -> None:
    """Let every reconcile that can run finish (one key is held by its gate)."""
    for _ in range(50):
        await asyncio.sleep(0)


async def test_a_wake_during_a_reconcile_runs_it_exactly_once_more_after_it(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock, workers=2)
    gate = script.hold("a")
    async with running(queue):
        queue.wake("a")
        await until(lambda: script.calls == ["a"])
        for _ in range(3):  # three watch events while it runs
            queue.wake("a")
        assert queue.pending("a")
        assert queue.depth == 0, "not queued beside itself: it waits for the first run"
        del script.gates["a"]
        gate.set()
        await settle(queue)
    assert script.calls == ["a", "a"]
    assert script.most_at_once["a"] == 1


async def test_a_reconcile_without_a_wake_during_it_is_not_rerun(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        clock.advance(3600)
        await settle(queue)
    assert script.calls == ["a"]
    assert not queue.pending("a")


# --- what a reconcile asks for next ---------------------------------------------------------
async def test_requeue_runs_the_key_again_at_once(script: Script, clock: ManualClock,
                                                  timers: Timers) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [AGAIN, AGAIN, DONE]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
    assert script.calls == ["a", "a", "a"]
    assert timers.started == []  # no clock, no timer: at once


async def test_requeue_with_a_wake_during_the_reconcile_still_runs_once_more(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    gate = script.hold("a")
    script.answers["a"] = [AGAIN]
    async with running(queue):
        queue.wake("a")
        await until(lambda: script.calls == ["a"])
        queue.wake("a")
        del script.gates["a"]
        gate.set()
        await settle(queue)
    assert script.calls == ["a", "a"]


async def test_requeue_at_runs_the_key_when_the_clock_reaches_the_instant(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [Result(requeue_at=T0 + timedelta(seconds=60))]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        assert queue.pending("a"), "its timer is pending"
        clock.advance(59)
        await settle(queue)
        assert script.calls == ["a"]
        clock.advance(1)
        await settle(queue)
        assert script.calls == ["a", "a"]
        assert not queue.pending("a")
    assert timers.started == [], "requeue_at is on the clock, not on real time"


async def test_requeue_at_an_instant_already_past_runs_at_once(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [Result(requeue_at=T0 - timedelta(seconds=1))]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
    assert script.calls == ["a", "a"]


async def test_requeue_after_waits_real_seconds_whatever_the_clock_says(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [Result(requeue_after=0.75), Result(requeue_after=-3)]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        clock.advance(3600)  # the operator's clock is not what this waits on
        await settle(queue)
        assert script.calls == ["a"]
        assert timers.only().delay == 0.75
        timers.only().fire()
        await settle(queue)
        assert script.calls == ["a", "a"]
        assert timers.only().delay == 0.0, "a negative wait is no wait"


async def test_with_both_timers_the_first_to_fire_runs_it_and_the_other_is_dropped(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock)
    both = Result(requeue_at=T0 + timedelta(seconds=60), requeue_after=5)
    script.answers["a"] = [both, both]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        timers.only().fire()  # the real-time one first
        await settle(queue)
        assert script.calls == ["a", "a"]
        clock.advance(60)  # the first run's clock timer: dropped when the other fired
        await settle(queue)
        assert script.calls == ["a", "a", "a"], "only the second run's clock timer fired"
        assert timers.live() == [], "and that dropped the second run's real-time timer"
        clock.advance(3600)
        await settle(queue)
    assert script.calls == ["a", "a", "a"]


async def test_each_answer_replaces_the_timers_the_key_had(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [Result(requeue_at=T0 + timedelta(seconds=60), requeue_after=30),
                           Result(requeue_at=T0 + timedelta(seconds=120)),
                           DONE]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        first_real = timers.only()
        queue.wake("a")  # a watch event before the timers: the second answer wins
        await settle(queue)
        assert first_real.cancelled
        clock.advance(60)
        await settle(queue)
        assert script.calls == ["a", "a"], "the first answer's clock timer is gone"
        clock.advance(60)
        await settle(queue)
        assert script.calls == ["a", "a", "a"]
        assert not queue.pending("a"), "DONE leaves no timer"
        clock.advance(3600)
        await settle(queue)
    assert script.calls == ["a", "a", "a"]


# --- failures ---------------------------------------------------------------------------------
async def test_failures_back_off_with_growing_jittered_real_delays_and_success_resets(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock, seed=11)
    script.answers["a"] = [Boom("1"), Boom("2"), Boom("3"), Boom("4"), DONE, Boom("5")]
    async with running(queue):
        queue.wake("a")
        for _ in range(4):
            await settle(queue)
            clock.advance(3600)  # retries wait on real time, not on the clock
            await settle(queue)
            timers.only().fire()
        await settle(queue)
        assert script.count("a") == 5
        assert timers.live() == [], "the success dropped the backoff"
        assert not queue.pending("a")
        queue.wake("a")  # fails again: the delay starts over
        await settle(queue)
        assert queue.pending("a")
    delays = [timer.delay for timer in timers.started]
    twin = random.Random(11)
    assert delays == [Backoff().delay(n, twin) for n in (1, 2, 3, 4)] + [
        Backoff().delay(1, twin)]
    bases = [1, 2, 4, 8, 1]
    assert all(0.8 * base <= delay <= 1.2 * base for delay, base in zip(delays, bases,
                                                                            strict=True))
    assert delays[:4] == sorted(delays[:4]), "each retry waits longer"
    assert delays != bases, "jittered, so keys failing together spread out"
    assert (queue.stats.reconciles, queue.stats.errors) == (6, 5)


def test_backoff_doubles_from_initial_up_to_the_maximum() -> None:
    rng = random.Random(1)
    exact = Backoff(jitter=0)
    assert [exact.delay(n, rng) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert Backoff(initial=0.5, factor=3, maximum=100, jitter=0).delay(3, rng) == 4.5
    jittered = [Backoff().delay(6, rng) for _ in range(200)]
    assert all(24 <= delay <= 36 for delay in jittered)
    assert len(set(jittered)) > 1


def test_backoff_after_very_many_failures_stays_at_the_maximum() -> None:
    # A key can fail for hours (RBAC missing, a pod name taken): with a 30 s cap that is
    # 120 failures an hour, and each wake-up during the backoff adds one more.
    rng = random.Random(1)
    assert Backoff(jitter=0).delay(5000, rng) == 30
    assert 24 <= Backoff().delay(1025, rng) <= 36


async def test_a_key_that_keeps_failing_never_stops_the_workers(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    """More than a thousand failures in a row (a FlowRun whose pod events keep waking
    it while its Deployment's RBAC is broken) must not end the controller."""
    queue = controller(script, clock)
    script.answers["a"] = [OSError("still failing") for _ in range(1100)]
    async with running(queue) as task:
        for _ in range(1100):
            queue.wake("a")  # a wake during the backoff runs it at once
            await until(lambda: task.done() or (queue.depth == 0 and queue.busy == 0))
            if task.done():
                pytest.fail(f"the controller stopped after {script.count('a')} failures "
                            f"of one key: {task.exception()!r}")
        await settle(queue)
        queue.wake("b")
        await settle(queue)
        assert script.count("b") == 1
    assert script.count("a") == 1100


async def test_a_wake_during_the_backoff_runs_the_key_at_once(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [Boom("first"), DONE]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        backoff = timers.only()
        assert queue.pending("a")
        queue.wake("a")  # a watch event: something changed, try now
        await settle(queue)
        assert script.calls == ["a", "a"]
        assert backoff.cancelled, "the success dropped the pending retry"
        assert not queue.pending("a")


async def test_a_retry_really_waits_on_the_event_loop_and_runs(
        script: Script, clock: ManualClock) -> None:
    # The real timer, with a backoff of milliseconds: the retry comes with the clock
    # standing still.
    queue = controller(script, clock, backoff=Backoff(initial=0.005, maximum=0.01, jitter=0))
    script.answers["a"] = [Boom("once")]
    async with running(queue):
        queue.wake("a")
        async with asyncio.timeout(5):  # a hang guard, not a timed assertion
            while script.count("a") < 2:
                script.called.clear()
                await script.called.wait()
    assert clock.now() == T0


async def test_expected_failures_are_logged_without_a_traceback(
        script: Script, clock: ManualClock, timers: Timers,
        caplog: pytest.LogCaptureFixture) -> None:
    queue: Controller[Key] = Controller("flowruns", script, clock=clock, expected=(OSError,))
    script.answers[("ns", "a")] = [ConnectionResetError("reset by peer")]
    script.answers[("ns", "b")] = [Boom("a bug")]
    with caplog.at_level(logging.WARNING, "headwater_operator.runtime"):
        task = asyncio.create_task(queue.run())
        queue.wake(("ns", "a"))
        queue.wake(("ns", "b"))
        await until(lambda: len(caplog.records) == 2, "two warnings")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    expected, unexpected = caplog.records
    assert "flowruns ns/a: reconcile failed (ConnectionResetError: reset by peer); " \
           "retry 1 in" in expected.getMessage()
    assert not expected.exc_info
    assert "flowruns ns/b: reconcile failed (Boom: a bug)" in unexpected.getMessage()
    assert unexpected.exc_info


# --- forget ---------------------------------------------------------------------------------
async def test_forget_drops_the_keys_timer(script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [Result(requeue_at=T0 + timedelta(seconds=60))]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        queue.forget("a")
        assert not queue.pending("a")
        clock.advance(120)
        await settle(queue)
    assert script.calls == ["a"]


async def test_forget_drops_the_retry_and_its_failure_count(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock)
    script.answers["a"] = [Boom("1"), Boom("2"), Boom("3")]
    async with running(queue):
        queue.wake("a")
        await settle(queue)
        timers.only().fire()
        await settle(queue)
        second = timers.only()
        assert 1.6 <= second.delay <= 2.4
        queue.forget("a")
        assert second.cancelled
        assert not queue.pending("a")
        queue.wake("a")  # the same name again (a new object): a fresh start
        await settle(queue)
        assert 0.8 <= timers.only().delay <= 1.2


async def test_forget_leaves_a_queued_run_to_find_out_by_itself(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    queue.wake("a")
    queue.forget("a")
    assert queue.pending("a")
    async with running(queue):
        await settle(queue)
    assert script.calls == ["a"]


# --- stopping -------------------------------------------------------------------------------
async def test_drain_lets_the_reconciles_in_flight_finish_and_takes_no_new_key(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    gate = script.hold("a")
    async with running(queue):
        queue.wake("a")
        await until(lambda: script.calls == ["a"])
        queue.wake("b")
        draining = asyncio.create_task(queue.drain(grace=5))
        await settle_while_held(queue)
        assert not draining.done(), "drain waits for the reconcile in flight"
        gate.set()
        async with asyncio.timeout(5):
            await draining
        assert script.cancelled == []
        assert queue.busy == 0
        await settle_while_held(queue)
        assert script.calls == ["a"], "no new key is taken after drain"
        assert queue.depth == 1


async def test_drain_gives_up_after_the_grace_without_cancelling(
        script: Script, clock: ManualClock) -> None:
    queue = controller(script, clock)
    script.hold("a")
    async with running(queue):
        queue.wake("a")
        await until(lambda: script.calls == ["a"])
        await queue.drain(grace=0.01)
        assert queue.busy == 1
        assert script.cancelled == []
    assert script.cancelled == ["a"], "cancelling run() then cancels it"


async def test_cancelling_run_cancels_reconciles_in_flight_and_every_timer(
        script: Script, clock: ManualClock, timers: Timers) -> None:
    queue = controller(script, clock, workers=2)
    script.hold("a")
    script.answers["b"] = [Result(requeue_at=T0 + timedelta(seconds=60), requeue_after=1)]
    async with running(queue) as task:
        queue.wake("a")
        queue.wake("b")
        await until(lambda: script.count("a") == 1 and script.count("b") == 1)
        await settle_while_held(queue)
        real = timers.only()
    assert task.cancelled()
    assert script.cancelled == ["a"]
    assert queue.busy == 0
    assert real.cancelled
    clock.advance(120)
    for _ in range(20):
        await asyncio.sleep(0)
    assert script.calls == ["a", "b"]


async def test_a_controller_runs_once_at_a_time_and_needs_a_worker(
        script: Script, clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="controller test: workers must be at least 1, not 0"):
        controller(script, clock, workers=0)
    queue = controller(script, clock)
    async with running(queue):
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="controller test is already running"):
            await queue.run()
