"""``flow.serve()``: a local scheduler for development that fires the flow's runs.

It is Prefect's ``serve`` without a server: one foreground process that waits for the
next tick of its schedules and starts each run as a subprocess (``python -m headwater
execute``, as a flow-run pod would), until Ctrl-C. Runs go to the local
``HEADWATER_HOME`` as any local run does.

The fire times are the operator's: each schedule becomes the ``spec`` of the Schedule
``flow.deploy()`` would write (:func:`headwater.deployments.schedule_spec`), parsed by
:func:`headwater.scheduling.expression_from_spec` and stepped by
:func:`headwater.scheduling.next_fire_time`, the code the Schedule controller runs, so a
cron crossing a DST change fires at the same instants here as in a cluster.

What it must respect: a tick is fired once; ticks missed while the machine slept are
skipped (as a Schedule's ``catchup: Latest`` would run only the newest, serve runs the
next one instead: it is a development tool); ``limit`` caps the runs in progress (a
tick that finds it reached is skipped and said so); Ctrl-C (SIGINT) or SIGTERM stops
scheduling, sends SIGTERM to runs in progress (the engine records them Cancelled) and
returns. Runs start in their own session, so the terminal's Ctrl-C reaches only this
process, which then stops them in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from headwater import contract
from headwater.deployments import schedule_names, schedule_spec
from headwater.schedules import Schedule

if TYPE_CHECKING:
    from headwater.scheduling import ScheduleExpression

STOP_GRACE_SECONDS = 10.0
"""How long runs in progress get after SIGTERM before they are killed."""


@dataclasses.dataclass(frozen=True)
class ServedSchedule:
    """One schedule as serve() fires it: its name, expression and parameters."""

    name: str
    expression: ScheduleExpression
    parameters: Mapping[str, Any]
    active: bool = True


def served_schedules(name: str, schedules: Sequence[Schedule],
                     parameters: Mapping[str, Any]) -> list[ServedSchedule]:
    """The schedules of ``serve(name=..., ...)``, parsed exactly as the operator parses
    the Schedule manifests ``deploy(name=..., ...)`` writes. Parameters merge as in a
    cluster: the served ``parameters`` < the schedule's own."""
    from headwater.deployments import kubernetes_name
    from headwater.scheduling import ScheduleError, expression_from_spec

    deployment = kubernetes_name(name, "serve name")
    served = []
    for schedule_name, schedule in zip(schedule_names(deployment, schedules), schedules,
                                       strict=True):
        spec = schedule_spec(schedule, deployment)
        try:
            expression = expression_from_spec(spec)
        except ScheduleError as exc:
            raise ValueError(f"schedule {schedule_name!r}: {exc}") from None
        served.append(ServedSchedule(schedule_name, expression,
                                     {**parameters, **(spec.get("parameters") or {})},
                                     active=schedule.active))
    return served


def upcoming(schedules: Sequence[ServedSchedule], after: datetime,
             ) -> Iterator[tuple[datetime, ServedSchedule]]:
    """Every tick of the active ``schedules`` strictly after ``after``, in time order
    (ties in the order given): what serve() fires, lazily and forever."""
    from headwater.scheduling import next_fire_time

    pending: dict[int, datetime] = {}
    for index, served in enumerate(schedules):
        tick = next_fire_time(served.expression, after) if served.active else None
        if tick is not None:
            pending[index] = tick
    while pending:
        index = min(pending, key=lambda i: (pending[i], i))
        tick = pending[index]
        yield tick, schedules[index]
        following = next_fire_time(schedules[index].expression, tick)
        if following is None:
            del pending[index]
        else:
            pending[index] = following


@dataclasses.dataclass
class Run:
    """A run serve() started."""

    name: str
    process: subprocess.Popen[bytes]


class Server:
    """The serve loop: wait for the next tick, start its run, reap finished runs."""

    def __init__(self, entrypoint: str, name: str, schedules: Sequence[ServedSchedule], *,
                 limit: int | None = None, out: IO[str] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.entrypoint = entrypoint
        self.name = name
        self.schedules = list(schedules)
        self.limit = limit
        self.out = out or sys.stdout
        self.now = now
        self.sleep = sleep
        self.runs: list[Run] = []
        self.started = 0

    def say(self, line: str) -> None:
        """One line of what the server does, for the developer watching it."""
        self.out.write(f"[serve {self.name}] {line}\n")
        self.out.flush()

    def serve_forever(self) -> None:
        """Fire ticks until interrupted (KeyboardInterrupt), then stop the runs."""
        previous = signal.signal(signal.SIGTERM, _interrupt) \
            if _in_main_thread() else None
        try:
            self.say(f"serving {self.entrypoint}: "
                     + ", ".join(f"{s.name} ({s.expression.kind.value} "
                                 f"{s.expression.expression!r} in {s.expression.timezone.key})"
                                 for s in self.schedules) + "; Ctrl-C stops")
            with contextlib.suppress(KeyboardInterrupt):
                self._loop()
        finally:
            self.stop()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _loop(self) -> None:
        ticks = upcoming(self.schedules, self.now())
        while (item := next(ticks, None)) is not None:
            tick, served = item
            while (wait := (tick - self.now()).total_seconds()) > 0:
                self.reap()
                self.sleep(min(wait, 1.0))
            if (self.now() - tick).total_seconds() > 1.0:
                # The machine slept or a run start blocked: skip to the present.
                self.say(f"{served.name}: tick {tick:%Y-%m-%dT%H:%M:%SZ} missed; skipped")
                ticks = upcoming(self.schedules, self.now())
                continue
            self.reap()
            self.fire(tick, served)
        self.say("no schedule has another tick; stopping")

    def fire(self, tick: datetime, served: ServedSchedule) -> None:
        """Start the run of ``tick`` unless ``limit`` runs are in progress."""
        run_name = f"{served.name}-{int(tick.timestamp())}"
        if self.limit is not None and len(self.runs) >= self.limit:
            self.say(f"{run_name}: skipped, {len(self.runs)} runs in progress "
                     f"(limit={self.limit})")
            return
        env = {**os.environ,
               contract.ENV_FLOW_RUN_NAME: run_name,
               contract.ENV_DEPLOYMENT_NAME: self.name,
               contract.ENV_SCHEDULED_TIME: tick.strftime("%Y-%m-%dT%H:%M:%SZ"),
               contract.ENV_PARAMETERS: json.dumps(dict(served.parameters), default=str)}
        env.pop(contract.ENV_SUMMARY_PATH, None)
        process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "execute", "--entrypoint", self.entrypoint],
            env=env, start_new_session=True)
        self.runs.append(Run(run_name, process))
        self.started += 1
        self.say(f"{run_name}: started (scheduled {tick:%Y-%m-%dT%H:%M:%SZ}, pid "
                 f"{process.pid})")

    def reap(self) -> None:
        """Report and forget the runs that ended."""
        for run in list(self.runs):
            code = run.process.poll()
            if code is not None:
                self.runs.remove(run)
                self.say(f"{run.name}: ended, exit code {code} ({_exit_meaning(code)})")

    def stop(self) -> None:
        """SIGTERM the runs in progress, wait for them (kill after a grace period)."""
        if self.runs:
            self.say(f"stopping: {len(self.runs)} run(s) in progress get SIGTERM")
        for run in self.runs:
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for run in self.runs:
            try:
                run.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait()
        self.reap()
        self.say(f"stopped after {self.started} run(s)")


def _exit_meaning(code: int) -> str:
    return {contract.EXIT_COMPLETED: "Completed", contract.EXIT_FAILED: "Failed",
            contract.EXIT_CRASHED: "Crashed",
            contract.EXIT_CANCELLED: "Cancelled"}.get(code, "Crashed")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
