"""Schedules against the emulated API: the real operator, on a hand-moved scheduler clock.

The scheduler reads time only through :mod:`headwater_operator.clock`; these
tests install a :class:`ManualClock` (and give the emulator the same clock, so
``creationTimestamp`` agrees with it). "The operator was down for five ticks" is then
``clock.advance(5 * HOUR)`` while it is stopped: no test waits for a real tick. Every
step waits on an observable fact (a FlowRun, a status field, a condition) with
``wait_for``, never on a fixed sleep, except where a test proves that something does
*not* happen; there it first waits for the status write that ends the wake-up.

Runs driven through pods by the kubelet, on real 1-second ticks, are in
``test_schedules_realtime.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from headwater.contract import (
    ANNOTATION_SCHEDULED_TIME,
    ANNOTATION_TRIGGER,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_SCHEDULE,
)
from headwater.scheduling.expression import expression_from_spec
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness
from headwater_operator import kube as kube_module
from headwater_operator.clock import ManualClock, set_clock
from headwater_operator.metrics import REGISTRY
from headwater_operator.scheduling import (
    ScheduleExpression,
    next_fire_time,
    parse_schedule_expression,
)
from headwater_operator.scheduling.runs import build_flow_run

WaitFor = Callable[..., Awaitable[Any]]

HOUR = 3600.0
START = datetime.now(UTC).replace(minute=10, second=0, microsecond=0)
"""Scheduler time at the start of each test: 10 minutes past an hourly tick, at most an
hour before the real time, so every tick a test reaches (``at(1)`` and later) is still in
the real future: the FlowRun lifecycle, on the real clock, keeps those runs ``Scheduled``
(active) without pods."""


def at(hour: int, minute: int = 0) -> datetime:
    """An instant on the test's day (hour may exceed 23)."""
    return START.replace(minute=0) + timedelta(hours=hour, minutes=minute)


def stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def cron_in(cron: str, zone: str) -> ScheduleExpression:
    return parse_schedule_expression(cron=cron, interval=None, rrule=None, timezone=zone,
                                     anchor_time=None)


def run_name(schedule: str, tick: datetime) -> str:
    return f"{schedule}-{int(tick.timestamp())}"


# --- fixtures -------------------------------------------------------------------------
@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """The scheduler's clock for this test (installed before the operator starts)."""
    manual = ManualClock(START)
    previous = set_clock(manual)
    try:
        yield manual
    finally:
        set_clock(previous)


@pytest.fixture
def emulator_clock(clock: ManualClock) -> Callable[[], datetime]:
    """The conftest emulator, but stamping objects with the scheduler's clock."""
    return clock.now


class Scene:
    """Builds the objects of a test and reads back what the operator made of them."""

    def __init__(self, kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str,
                 wait_for: WaitFor) -> None:
        self.kube, self.emulator, self.namespace, self.wait_for = (
            kube, emulator, namespace, wait_for)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[OperatorHarness]:
        """The real operator, started and stopped by the test's own task.

        kopf cancels, when it stops, every task created after it started: a fixture's
        teardown task would be one of them, the test's own task is not.
        """
        harness = OperatorHarness(namespaces=[self.namespace])
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()

    async def deployment(self, name: str = "nightly", **spec: Any) -> None:
        # These tests move the operator's one clock by hours and run no kubelet: the
        # FlowRun controller, on that clock, would rightly time out each run's pending pod
        # after the default 10 minutes, and end runs a test wants active.
        spec.setdefault("pendingTimeoutSeconds", 30 * 24 * 3600)
        await self.kube.create(kube_module.FLOWS, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "Flow", "metadata": {"name": "f"},
            "spec": {"image": "example/flow:1", "entrypoint": "flows/f.py:f"},
        }, namespace=self.namespace)
        await self.kube.create(kube_module.DEPLOYMENTS, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
            "metadata": {"name": name}, "spec": {"flowRef": {"name": "f"}, **spec},
        }, namespace=self.namespace)

    async def schedule(self, name: str = "hourly", *, wait: bool = True,
                       **spec: Any) -> None:
        """Create a Schedule (hourly interval by default); wait until its daemon planned."""
        spec.setdefault("deploymentRef", {"name": "nightly"})
        if not {"cron", "interval", "rrule"} & spec.keys():
            spec["interval"] = "1h"
        await self.kube.create(kube_module.SCHEDULES, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": name}, "spec": spec,
        }, namespace=self.namespace)
        if wait:
            await self.wait_for(lambda: self.status(name).get("observedGeneration"))

    async def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        await self.kube.patch(kube_module.SCHEDULES, name, {"spec": spec},
                              namespace=self.namespace)

    def status(self, name: str = "hourly") -> dict[str, Any]:
        return dict((self.emulator.object("schedules", name) or {}).get("status") or {})

    def condition(self, type_: str, name: str = "hourly") -> dict[str, Any]:
        for cond in self.status(name).get("conditions") or ():
            if cond.get("type") == type_:
                return dict(cond)
        return {}

    def runs(self, schedule: str = "hourly") -> list[str]:
        return sorted(run["metadata"]["name"] for run in self.emulator.objects(
            "flowruns", self.namespace, label_selector=f"{LABEL_SCHEDULE}={schedule}"))

    def run(self, name: str) -> dict[str, Any]:
        return self.emulator.object("flowruns", name) or {}

    async def events(self, name: str = "hourly") -> list[dict[str, Any]]:
        events = await self.kube.list(kube_module.EVENTS, namespace=self.namespace)
        return [e for e in events if (e.get("involvedObject") or {}).get("kind") == "Schedule"
                and e["involvedObject"].get("name") == name]

    async def reasons(self, name: str = "hourly") -> list[str]:
        return [str(e.get("reason")) for e in await self.events(name)]

    async def settled(self, name: str = "hourly", *, after: datetime) -> dict[str, Any]:
        """Wait until the Schedule's status shows a wake-up at or after ``after``."""
        expected = stamp(after)

        def woke() -> dict[str, Any] | None:
            status = self.status(name)
            nxt = status.get("nextScheduleTime")
            return status if nxt and nxt > expected else None

        result: dict[str, Any] = await self.wait_for(woke)
        return result

    async def tick_to(self, clock: ManualClock, instant: datetime, name: str = "hourly"
                      ) -> dict[str, Any]:
        """Move the clock to ``instant`` and wait for the Schedule to handle it."""
        clock.set(instant)
        return await self.settled(name, after=instant)


@pytest.fixture
def scene(kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str,
          wait_for: WaitFor) -> Scene:
    return Scene(kube, emulator, namespace, wait_for)


# --- runs, names and status -----------------------------------------------------------
async def test_interval_tick_creates_an_idempotently_named_owned_run(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule()
        assert scene.status()["nextScheduleTime"] == stamp(at(1))
        assert scene.status()["expression"] == "every 1h"
        assert scene.runs() == []
        # The registry is process-wide and other tests share the namespace: compare deltas.
        count = ("headwater_schedule_lag_seconds_count", {"namespace": scene.namespace})
        on_time = ("headwater_schedule_lag_seconds_bucket",
                   {"namespace": scene.namespace, "le": "0.01"})
        before = [REGISTRY.get_sample_value(*series) or 0 for series in (count, on_time)]

        status = await scene.tick_to(clock, at(1))

        # One tick, one lag sample: the hand-moved clock stands at the tick, so on time.
        after = [REGISTRY.get_sample_value(*series) or 0 for series in (count, on_time)]
        assert after == [before[0] + 1, before[1] + 1]
        name = run_name("hourly", at(1))
        assert scene.runs() == [name]
        run = scene.run(name)
        meta = run["metadata"]
        assert run["spec"]["scheduledTime"] == stamp(at(1))
        assert run["spec"]["deploymentRef"] == {"name": "nightly"}
        assert run["spec"]["trigger"] == "schedule"
        assert meta["annotations"][ANNOTATION_SCHEDULED_TIME] == stamp(at(1))
        assert meta["annotations"][ANNOTATION_TRIGGER] == "schedule"
        assert meta["labels"][LABEL_SCHEDULE] == "hourly"
        assert meta["labels"][LABEL_DEPLOYMENT] == "nightly"
        assert meta["labels"][LABEL_MANAGED_BY] == "headwater"
        deployment = scene.emulator.object("deployments", "nightly") or {}
        owner = meta["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "Deployment", "nightly", deployment["metadata"]["uid"])
        assert status["lastScheduleTime"] == stamp(at(1))
        assert status["nextScheduleTime"] == stamp(at(2))
        assert scene.condition("Ready")["status"] == "True"
        await scene.wait_for(lambda: _has_event(scene, "RunCreated"))


async def test_cron_next_time_follows_the_zone_and_an_edit(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule(cron="30 2 * * *", timezone="America/New_York")
        new_york = next_fire_time(cron_in("30 2 * * *", "America/New_York"), START)
        assert new_york is not None
        assert new_york.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "02:30"
        assert scene.status()["nextScheduleTime"] == stamp(new_york)
        assert scene.status()["expression"] == "30 2 * * *"

        await scene.patch_spec("hourly", {"cron": "0 4 * * *", "timezone": "Europe/Berlin"})

        # The edit wakes the daemon at once (no tick needed) with the new zone's time.
        berlin = next_fire_time(cron_in("0 4 * * *", "Europe/Berlin"), START)
        assert berlin is not None
        assert berlin != new_york
        await scene.wait_for(lambda: scene.status()["nextScheduleTime"] == stamp(berlin))
        assert scene.status()["expression"] == "0 4 * * *"
        assert scene.status()["observedGeneration"] == 2


async def test_an_edit_never_fires_a_run_by_itself(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule()
        await scene.tick_to(clock, at(1))
        clock.set(at(1, 7))

        # */5 has ticks at 01:05 between the last tick and now: none of them may fire.
        await scene.patch_spec("hourly", {"interval": None, "cron": "*/5 * * * *"})

        await scene.wait_for(lambda: scene.status()["nextScheduleTime"] == stamp(at(1, 10)))
        assert scene.runs() == [run_name("hourly", at(1))]
        assert scene.status().get("missedTicks", 0) == 0

        await scene.tick_to(clock, at(1, 10))
        assert scene.runs() == [run_name("hourly", at(1)), run_name("hourly", at(1, 10))]


# --- missed ticks ---------------------------------------------------------------------
@pytest.mark.parametrize(("catchup", "deadline", "ran", "skipped", "reason"), [
    ({"policy": "None"}, None, [], 5, "CatchupPolicyNone"),
    ({"policy": "Latest"}, None, [6], 4, "CatchupPolicyLatest"),
    (None, None, [6], 4, "CatchupPolicyLatest"),  # Latest is the default
    ({"policy": "All", "maxRuns": 3}, None, [4, 5, 6], 2, "MaxRunsExceeded"),
    ({"policy": "All"}, 2.25 * HOUR, [5, 6], 3, "StartingDeadlineExceeded"),
])
async def test_operator_down_for_five_ticks_follows_the_catchup_policy(  # noqa: PLR0917
    scene: Scene, clock: ManualClock,
    catchup: dict[str, Any] | None, deadline: float | None, ran: list[int], skipped: int,
    reason: str,
) -> None:
    async with scene.running() as operator:
        await scene.deployment()
        extra: dict[str, Any] = {}
        if catchup is not None:
            extra["catchup"] = catchup
        if deadline is not None:
            extra["startingDeadlineSeconds"] = int(deadline)
        await scene.schedule(**extra)
        await scene.tick_to(clock, at(1))

        await operator.stop()
        clock.set(at(6, 30))  # ticks 02:00 … 06:00 pass while nobody watches
        await operator.start()

        status = await scene.settled(after=at(6, 30))  # runs are created before status
        expected = [run_name("hourly", at(1))] + [run_name("hourly", at(h)) for h in ran]
        assert scene.runs() == sorted(expected)
        assert status["lastScheduleTime"] == stamp(at(6))
        assert status["nextScheduleTime"] == stamp(at(7))
        assert status["missedTicks"] == skipped
        missed = scene.condition("MissedTicks")
        assert missed["status"] == "True"
        assert missed["reason"] == "TicksSkipped"
        assert f"skipped {skipped} missed tick(s) ({skipped} {reason}" in missed["message"]
        await scene.wait_for(lambda: _has_event(scene, "MissedTicks"))

        # Back to normal: the next tick runs on time, and nothing of the outage runs again.
        await scene.tick_to(clock, at(7))
        assert scene.runs() == sorted([*expected, run_name("hourly", at(7))])


async def _has_event(scene: Scene, reason: str) -> bool:
    return reason in await scene.reasons()


# --- suspend, paused deployment, invalid -----------------------------------------------
async def test_suspend_holds_runs_and_resume_runs_at_most_what_the_policy_allows(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule()
        await scene.tick_to(clock, at(1))

        await scene.patch_spec("hourly", {"suspend": True})
        await scene.wait_for(lambda: scene.condition("Ready").get("reason") == "Suspended")
        assert scene.condition("Ready")["status"] == "False"
        assert "spec.suspend" in scene.condition("Ready")["message"]
        assert scene.status().get("nextScheduleTime") is None
        clock.set(at(5, 30))  # four ticks while suspended
        await scene.wait_for(lambda: scene.status()["observedGeneration"] == 2)

        await scene.patch_spec("hourly", {"suspend": False})

        status = await scene.settled(after=at(5, 30))
        # Latest (the default): only the newest suspended tick runs — no burst.
        await scene.wait_for(lambda: len(scene.runs()) == 2)
        assert scene.runs() == sorted([run_name("hourly", at(1)), run_name("hourly", at(5))])
        assert status["missedTicks"] == 3
        assert scene.condition("Ready")["status"] == "True"


async def test_paused_deployment_creates_no_runs_and_the_schedule_says_so(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment(paused=True)
        await scene.schedule(catchup={"policy": "None"})
        # The Deployment and Schedule watches are separate streams: the daemon may first
        # see no Deployment, then is rung when the Deployment's event arrives.
        await scene.wait_for(lambda: scene.condition("Ready")["reason"] == "DeploymentPaused")
        ready = scene.condition("Ready")
        assert (ready["status"], ready["reason"]) == ("False", "DeploymentPaused")
        assert "nightly" in ready["message"]
        assert "spec.paused" in ready["message"]

        clock.set(at(3, 30))
        await scene.wait_for(lambda: scene.status().get("nextScheduleTime") is None)
        assert scene.runs() == []

        await scene.kube.patch(kube_module.DEPLOYMENTS, "nightly", {"spec": {"paused": False}},
                               namespace=scene.namespace)

        # Unpausing wakes the Schedule at once (no tick needed); policy None runs none.
        status = await scene.settled(after=at(3, 30))
        assert status["nextScheduleTime"] == stamp(at(4))
        assert scene.condition("Ready")["status"] == "True"
        assert scene.runs() == []
        await scene.tick_to(clock, at(4))
        assert scene.runs() == [run_name("hourly", at(4))]


async def test_missing_deployment_is_reported(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.schedule(deploymentRef={"name": "nope"})

        ready = scene.condition("Ready")
        assert (ready["status"], ready["reason"]) == ("False", "DeploymentNotFound")
        assert "'nope'" in ready["message"]
        assert "spec.deploymentRef.name" in ready["message"]


@pytest.mark.parametrize(("spec", "reason", "names"), [
    ({"interval": "1h", "timezone": "Mars/Olympus_Mons"}, "InvalidTimezone", "spec.timezone"),
    ({"cron": "0 0 30 2 *"}, "InvalidCron", "spec.cron"),
])
async def test_invalid_schedule_is_marked_and_creates_no_runs(
    scene: Scene, clock: ManualClock, spec: dict[str, Any],
    reason: str, names: str,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule(**spec)

        invalid = scene.condition("Invalid")
        assert (invalid["status"], invalid["reason"]) == ("True", reason)
        assert names in invalid["message"]
        assert scene.condition("Ready")["reason"] == "Invalid"
        await scene.wait_for(lambda: _has_event(scene, "Invalid"))

        clock.set(at(3))
        await scene.patch_spec("hourly", {"suspend": False})  # a wake-up after the ticks
        await scene.wait_for(lambda: scene.status()["observedGeneration"] == 2)
        assert scene.runs() == []
        assert scene.status().get("nextScheduleTime") is None


async def _hold(scene: Scene, how: str) -> None:
    """Hold the Schedule ``hourly`` (of Deployment ``nightly``) ``how``; wait until it says so."""
    if how == "suspend":
        await scene.patch_spec("hourly", {"suspend": True})
        reason = "Suspended"
    elif how == "pause":
        await scene.kube.patch(kube_module.DEPLOYMENTS, "nightly", {"spec": {"paused": True}},
                               namespace=scene.namespace)
        reason = "DeploymentPaused"
    else:
        await scene.patch_spec("hourly", {"timezone": "Mars/Olympus_Mons"})
        reason = "Invalid"
    await scene.wait_for(lambda: scene.condition("Ready").get("reason") == reason)


@pytest.mark.parametrize("how", ["suspend", "pause", "invalid"])
async def test_a_held_schedule_stops_listing_runs_that_ended(
    scene: Scene, clock: ManualClock, how: str,
) -> None:
    # Issue #11: the hold path wrote no `active`, so a held Schedule kept listing runs
    # that had finished long ago (CronJob keeps it current, suspended or not).
    async with scene.running():
        await scene.deployment()
        await scene.schedule()
        await scene.tick_to(clock, at(1))
        first = run_name("hourly", at(1))
        assert [entry["name"] for entry in scene.status()["active"]] == [first]
        await _hold(scene, how)
        assert [entry["name"] for entry in scene.status()["active"]] == [first]

        await scene.kube.patch(kube_module.FLOWRUNS, first, {"spec": {"cancel": True}},
                               namespace=scene.namespace)
        await scene.wait_for(lambda: scene.run(first)["status"]["phase"] == "Cancelled")

        await scene.wait_for(lambda: scene.status().get("active") == [])
        assert scene.condition("Ready")["status"] == "False"  # still held
        assert scene.runs() == [first]


async def test_a_held_schedule_drops_runs_deleted_with_its_deployment(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule()
        await scene.tick_to(clock, at(1))
        assert scene.status()["active"]

        # The runs are owned by the Deployment: the garbage collector deletes them too.
        await scene.kube.delete(kube_module.DEPLOYMENTS, "nightly", namespace=scene.namespace)

        await scene.wait_for(lambda: scene.condition("Ready").get("reason")
                             == "DeploymentNotFound")
        await scene.wait_for(lambda: scene.runs() == [])
        await scene.wait_for(lambda: scene.status().get("active") == [])


# --- concurrency policy ---------------------------------------------------------------
async def test_forbid_skips_ticks_while_a_run_is_active(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule(concurrencyPolicy="Forbid")
        await scene.tick_to(clock, at(1))
        first = run_name("hourly", at(1))

        status = await scene.tick_to(clock, at(2))

        assert scene.runs() == [first]
        assert status["missedTicks"] == 1
        assert [entry["name"] for entry in status["active"]] == [first]
        await scene.wait_for(lambda: _has_event(scene, "ForbidConcurrent"))

        # The run ending refreshes status.active at once, not at the next tick.
        await scene.kube.patch(kube_module.FLOWRUNS, first, {"spec": {"cancel": True}},
                               namespace=scene.namespace)
        await scene.wait_for(lambda: scene.run(first)["status"]["phase"] == "Cancelled")
        await scene.wait_for(lambda: scene.status().get("active") == [])
        assert scene.status()["lastScheduleTime"] == stamp(at(2))

        await scene.tick_to(clock, at(3))
        assert scene.runs() == [first, run_name("hourly", at(3))]


async def test_replace_cancels_the_active_run_for_the_new_tick(
    scene: Scene, clock: ManualClock,
) -> None:
    async with scene.running():
        await scene.deployment()
        await scene.schedule(concurrencyPolicy="Replace")
        await scene.tick_to(clock, at(1))
        first = run_name("hourly", at(1))

        await scene.tick_to(clock, at(2))

        second = run_name("hourly", at(2))
        assert scene.runs() == [first, second]
        assert scene.run(first)["spec"]["cancel"] is True
        assert [entry["name"] for entry in scene.status()["active"]] == [second]
        await scene.wait_for(lambda: scene.run(first)["status"]["phase"] == "Cancelled")
        assert (scene.run(second).get("status") or {}).get("phase") not in (
            "Cancelling", "Cancelled")
        await scene.wait_for(lambda: _has_event(scene, "Replaced"))


# --- a status write lost after the runs were made ----------------------------------------
async def test_runs_whose_ticks_the_status_has_not_recorded_are_not_pruned_and_made_again(
    scene: Scene, clock: ManualClock, api_writes: Any,
) -> None:
    # The chaos test once made three ticks of one Schedule twice: a leader created their
    # runs and died before its status write, the runs finished, history pruning deleted
    # them, and the next leader, catching up from the older lastScheduleTime, created them
    # again — the deterministic names stop a second create only while the run exists.
    # Staged here step by step; the Schedule is suspended across the restart only to
    # order pruning before its catch-up, which a loaded operator can do by itself.
    async with scene.running() as operator:
        await scene.deployment(history={"successfulRunsLimit": 0})
        await scene.schedule(catchup={"policy": "All"})
        await scene.tick_to(clock, at(1))
        await operator.stop()

        # A leader made the runs of 02:00, 03:00 and 04:00, then was killed before
        # writing lastScheduleTime; the runs finished meanwhile.
        namespace = scene.namespace
        schedule = await scene.kube.get(kube_module.SCHEDULES, "hourly", namespace=namespace)
        deployment = await scene.kube.get(kube_module.DEPLOYMENTS, "nightly",
                                          namespace=namespace)
        expr = expression_from_spec(schedule["spec"])
        made = [run_name("hourly", at(hour)) for hour in (2, 3, 4)]
        for hour in (2, 3, 4):
            clock.set(at(hour, 1))
            await _finished_run(scene, build_flow_run(schedule, deployment, expr, at(hour)),
                                ended=at(hour, 2))
        assert scene.status()["lastScheduleTime"] == stamp(at(1))
        # An ad-hoc run that pruning deletes last (its name sorts last): once it is gone,
        # the pass that would have deleted the scheduled runs is over.
        clock.set(at(4, 10))
        await _finished_run(scene, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": "zz-adhoc"}, "spec": {"deploymentRef": {"name": "nightly"}},
        }, ended=at(4, 11))
        await scene.patch_spec("hourly", {"suspend": True})

        clock.set(at(4, 30))
        await operator.start()
        await scene.wait_for(lambda: scene.run("zz-adhoc") == {})
        assert set(made) <= set(scene.runs())  # kept: their ticks are not recorded

        api_writes.reset()
        await scene.patch_spec("hourly", {"suspend": False})
        status = await scene.settled(after=at(4, 30))
        assert status["lastScheduleTime"] == stamp(at(4))
        # The catch-up found each run: three 409s, no run made a second time.
        assert api_writes.count(verb="create", resource="flowruns", code=201) == 0
        assert api_writes.count(verb="create", resource="flowruns", code=409) == 3
        # Recorded now, they go the way of any finished run (successfulRunsLimit 0).
        await scene.wait_for(lambda: not set(made) & set(scene.runs()))
        assert scene.runs() == [run_name("hourly", at(1))]  # active: kept


async def _finished_run(scene: Scene, body: dict[str, Any], *, ended: datetime) -> None:
    """Create ``body`` and mark it Completed at ``ended`` (as its pod's success would)."""
    await scene.kube.create(kube_module.FLOWRUNS, body, namespace=scene.namespace)
    await scene.kube.patch_status(kube_module.FLOWRUNS, body["metadata"]["name"], {
        "status": {"phase": "Completed", "startTime": stamp(ended - timedelta(minutes=1)),
                   "endTime": stamp(ended)},
    }, namespace=scene.namespace)
