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
