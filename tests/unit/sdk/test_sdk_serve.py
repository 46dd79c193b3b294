"""``flow.serve()``: the local development scheduler, end to end in a real process.

A flow file written as for Prefect's ``serve`` (only the import changed) is started with
``python file.py``; its runs write a marker each; Ctrl-C (SIGINT) stops it. The fire
times themselves are checked against the operator's scheduling code in
tests/unit/scheduling/test_scheduling_serve.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from headwater import flow
from headwater.deployments import collect_schedules, schedule_spec
from headwater.schedules import Cron, Interval, RRule

SERVED = textwrap.dedent('''
    import json
    import os
    from pathlib import Path

    from headwater import flow, runtime


    @flow
    def tick(label: str = "default", n: int = 0) -> None:
        scheduled = runtime.flow_run.scheduled_start_time
        marker = Path(os.environ["MARKERS"]) / f"{runtime.flow_run.name}.json"
        marker.write_text(json.dumps({"label": label, "n": n,
                                      "scheduled": scheduled.isoformat()}))


    if __name__ == "__main__":
        tick.serve(name="every-second", interval=1, parameters={"label": "served", "n": 1})
''')
WAIT_SECONDS = 90.0
"""Generous: each run is a fresh Python process on a shared 2-core machine."""


@pytest.mark.slow
def test_serve_fires_a_run_each_second_and_ctrl_c_stops_it_cleanly(tmp_path: Path) -> None:
    (tmp_path / "served.py").write_text(SERVED, encoding="utf-8")
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "MARKERS": str(markers), "HEADWATER_HOME": str(tmp_path / "home")}
    process = subprocess.Popen([sys.executable, "served.py"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(list(markers.iterdir())) < 3 and time.monotonic() < deadline \
                and process.poll() is None:
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    runs = [json.loads(path.read_text()) for path in markers.iterdir()]
    assert len(runs) >= 3, output
    assert {(run["label"], run["n"]) for run in runs} == {("served", 1)}
    # Each run was given its own tick: whole seconds (1s ticks are aligned to the
    # second), all different.
    ticks = sorted(datetime.fromisoformat(run["scheduled"]) for run in runs)
    assert all(tick.microsecond == 0 for tick in ticks)
    assert len(set(ticks)) == len(ticks)
    assert "[serve every-second] serving" in output
    assert "Ctrl-C stops" in output
    stopped = re.search(r"stopped after (\d+) run\(s\)", output)
    assert stopped is not None, output
    assert int(stopped.group(1)) >= len(runs)
    assert "Traceback" not in output


def test_prefect_schedule_arguments_become_schedule_specs() -> None:
    found = collect_schedules(interval=[3600, timedelta(minutes=15)], cron="0 6 * * 1-5",
                              rrule="FREQ=WEEKLY;BYDAY=MO", timezone="Europe/Paris",
                              schedules=[Cron("@daily", active=False,
                                              parameters={"full": True})])
    specs = [schedule_spec(schedule, "etl") for schedule in found]
    assert specs == [
        {"deploymentRef": {"name": "etl"}, "interval": "1h", "timezone": "Europe/Paris"},
        {"deploymentRef": {"name": "etl"}, "interval": "15m", "timezone": "Europe/Paris"},
        {"deploymentRef": {"name": "etl"}, "cron": "0 6 * * 1-5",
         "timezone": "Europe/Paris"},
        {"deploymentRef": {"name": "etl"}, "rrule": "FREQ=WEEKLY;BYDAY=MO",
         "timezone": "Europe/Paris"},
        {"deploymentRef": {"name": "etl"}, "cron": "@daily", "timezone": "UTC",
         "parameters": {"full": True}, "suspend": True},
    ]
    anchored = Interval(90, anchor_date=datetime.fromisoformat("2026-01-01T00:00:30+01:00"))
    assert schedule_spec(anchored, "etl")["anchorTime"] == "2025-12-31T23:00:30Z"


@pytest.mark.parametrize(("schedule", "message"), [
    (Cron("0 6 13 * 5", day_or=False), "day_or=False .* no Headwater equivalent"),
    (Interval(1.5), "not a whole number of seconds"),
    (Interval(60, anchor_date=datetime(2026, 1, 1)), "anchor_date .* has no UTC offset"),
])
def test_schedules_headwater_cannot_express_are_refused_with_the_reason(
        schedule: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        schedule_spec(schedule, "etl")  # type: ignore[arg-type]


def test_serve_refuses_a_schedule_the_operator_would_refuse() -> None:
    @flow
    def nightly() -> None:
        pass

    with pytest.raises(ValueError, match=r"spec\.rrule"):
        nightly.serve(name="nightly", schedules=[RRule("FREQ=FORTNIGHTLY")])


# --- the serve loop, with a fake clock and fake run processes ------------------------------


class FakeProcess:
    """A run process that ends only when told (or when signalled)."""

    def __init__(self, argv: list[str], env: dict[str, str], **_: object) -> None:
        self.argv, self.env = argv, env
        self.pid = 4242
        self.code: int | None = None
        self.signals: list[int] = []

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)
        self.code = 3  # the engine records SIGTERM as Cancelled (EXIT_CANCELLED)

    def wait(self, timeout: float | None = None) -> int:
        assert self.code is not None
        return self.code

    def kill(self) -> None:
        self.code = -9


class FakeClock:
    def __init__(self, start: datetime, stop_after_sleeps: int, step: float = 0.5) -> None:
        self.time, self.left, self.step = start, stop_after_sleeps, step

    def now(self) -> datetime:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt  # Ctrl-C
        self.time += timedelta(seconds=max(seconds, self.step))


def serve_with_fakes(monkeypatch: pytest.MonkeyPatch, clock: FakeClock, *,
                     limit: int | None = None) -> tuple[list[FakeProcess], str]:
    import io

    from headwater import serve

    started: list[FakeProcess] = []

    def popen(argv: list[str], **kwargs: object) -> FakeProcess:
        process = FakeProcess(argv, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    monkeypatch.setattr(serve.subprocess, "Popen", popen)
    schedules = serve.served_schedules("tick", collect_schedules(interval=1), {"n": 2})
    out = io.StringIO()
    serve.Server("flows/tick.py:tick", "tick", schedules, limit=limit, out=out,
                 now=clock.now, sleep=clock.sleep).serve_forever()
    return started, out.getvalue()


def test_each_tick_starts_a_run_with_its_name_time_and_parameters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC

    clock = FakeClock(datetime(2026, 12, 7, 20, 0, 0, 300000, tzinfo=UTC), 4)
    started, out = serve_with_fakes(monkeypatch, clock)
    # Four waits of the clock, four whole-second ticks: each fired once, in order.
    assert [p.env["HEADWATER_SCHEDULED_TIME"] for p in started] == [
        f"2026-12-07T20:00:0{second}Z" for second in (1, 2, 3, 4)]
    first = started[0]
    assert first.argv[1:] == ["-m", "headwater", "execute", "--entrypoint",
                              "flows/tick.py:tick"]
    assert first.env["HEADWATER_FLOW_RUN_NAME"] == "tick-1796673601"
    assert json.loads(first.env["HEADWATER_PARAMETERS"]) == {"n": 2}
    # Ctrl-C: the runs still going get SIGTERM, and serve() returns.
    assert all(p.signals == [signal.SIGTERM] for p in started)
    assert "stopping: 4 run(s) in progress get SIGTERM" in out
    assert out.rstrip().endswith("stopped after 4 run(s)")


def test_a_tick_that_finds_the_limit_reached_is_skipped_and_said_so(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC

    clock = FakeClock(datetime(2026, 12, 7, 20, 0, 0, 300000, tzinfo=UTC), 4)
    started, out = serve_with_fakes(monkeypatch, clock, limit=1)
    assert len(started) == 1
    assert "tick-1796673602: skipped, 1 runs in progress (limit=1)" in out


def test_ticks_missed_while_the_machine_slept_are_skipped_not_caught_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC

    # Each sleep lasts 30 s (a laptop lid closed): the due tick is 29 s late.
    clock = FakeClock(datetime(2026, 12, 7, 20, 0, 0, 300000, tzinfo=UTC), 2, step=30)
    started, out = serve_with_fakes(monkeypatch, clock)
    assert started == []
    assert "tick 2026-12-07T20:00:01Z missed; skipped" in out
