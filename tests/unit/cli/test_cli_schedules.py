"""``schedule preview`` (offline, DST) and backfill planning ([start, end), scheduler names)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater.cli import build_parser
from headwater.scheduling.expression import expression_from_spec
from headwater_operator.cli.backfill import check_window, plan_backfill, window_ticks
from headwater_operator.cli.common import CliError, Io
from headwater_operator.cli.parsers import DEFAULT_MAX_RUNS
from headwater_operator.scheduling import scheduled_run_name
from headwater_operator.scheduling.runs import build_flow_run

NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def preview(tmp_path: Path, spec: dict[str, Any], *argv: str,
            name: str = "nightly") -> tuple[int, str, str]:
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
                                    "metadata": {"name": name},
                                    "spec": {"deploymentRef": {"name": "etl"}, **spec}}),
                    encoding="utf-8")
    args = build_parser().parse_args(["schedule", "preview", "-f", str(path), *argv])
    out, err = io.StringIO(), io.StringIO()
    args.io = Io(out=out, err=err, now=lambda: NOW)
    return args.func(args), out.getvalue(), err.getvalue()


def test_preview_spring_forward_gap_fires_once_when_the_gap_ends(tmp_path: Path) -> None:
    code, out, _ = preview(tmp_path, {"cron": "30 2 * * *", "timezone": "America/New_York"},
                           "--count", "3")  # after NOW = 5 March: 6, 7, 8 March
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Schedule nightly: cron 30 2 * * * in America/New_York"
    assert lines[1].split() == ["#", "LOCAL", "(America/New_York)", "UTC", "RUN", "NAME"]
    rows = [line.split() for line in lines[2:]]
    assert [row[1] for row in rows] == ["2026-03-06T02:30:00-05:00",
                                        "2026-03-07T02:30:00-05:00",
                                        "2026-03-08T03:00:00-04:00"]
    assert [row[2] for row in rows] == ["2026-03-06T07:30:00Z", "2026-03-07T07:30:00Z",
                                        "2026-03-08T07:00:00Z"]
    tick = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert rows[2][3] == scheduled_run_name("nightly", tick)


def test_preview_fall_back_repeated_hour_fires_once_json(tmp_path: Path) -> None:
    code, out, _ = preview(tmp_path, {"cron": "30 1 * * *", "timezone": "America/New_York"},
                           "--after", "2026-10-31T12:00", "--count", "2", "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert data["timezone"] == "America/New_York"
    assert [t["local"] for t in data["ticks"]] == ["2026-11-01T01:30:00-04:00",
                                                    "2026-11-02T01:30:00-05:00"]
    assert [t["utc"] for t in data["ticks"]] == ["2026-11-01T05:30:00Z",
                                                  "2026-11-02T06:30:00Z"]


def test_preview_after_without_offset_is_read_in_the_schedule_zone(tmp_path: Path) -> None:
    # 06:00 in Berlin is 05:00Z; the hourly tick at 06:00 local must not be included.
    code, out, _ = preview(tmp_path, {"cron": "0 * * * *", "timezone": "Europe/Berlin"},
                           "--after", "2026-01-10T06:00", "--count", "1", "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(out)["ticks"][0]["utc"] == "2026-01-10T06:00:00Z"


def test_preview_of_an_ended_rrule_says_so(tmp_path: Path) -> None:
    code, out, _ = preview(tmp_path, {"rrule": "DTSTART:20260101T090000\nRRULE:FREQ=DAILY;"
                                      "COUNT=2"}, "--count", "5")
    assert code == 0
    assert "no further fire times" in out


def test_preview_rejects_an_invalid_manifest_naming_the_fields(tmp_path: Path) -> None:
    code, out, err = preview(tmp_path, {"cron": "0 6 * * *", "interval": "1h",
                                        "timezone": "Mars/Olympus"})
    assert code == 2
    assert out == ""
    assert "is not a valid Schedule" in err
    assert "exactly one of spec.cron, spec.interval or spec.rrule" in err
    assert "spec.timezone" in err


def test_preview_needs_no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "does-not-exist"))
    code, out, _ = preview(tmp_path, {"interval": "90m"}, "--count", "2")
    assert code == 0
    assert len(out.splitlines()) == 4


# --- backfill planning ----------------------------------------------------------------
SCHEDULE: dict[str, Any] = {"metadata": {"name": "daily", "namespace": "default"},
            "spec": {"deploymentRef": {"name": "nightly"}, "cron": "0 0 * * *",
                     "timezone": "America/New_York", "parameters": {"region": "eu"},
                     "windowParameters": {"start": "start_date", "end": "end_date",
                                          "format": "Date"}}}
DEPLOYMENT: dict[str, Any] = {"metadata": {"name": "nightly", "uid": "uid-1"}}


def test_window_is_start_inclusive_end_exclusive() -> None:
    expr = expression_from_spec(SCHEDULE["spec"])
    start = datetime(2026, 3, 1, 5, tzinfo=UTC)  # exactly the 1 March midnight tick
    end = datetime(2026, 3, 4, 5, tzinfo=UTC)  # exactly the 4 March midnight tick
    ticks = window_ticks(expr, start, end, DEFAULT_MAX_RUNS)
    assert ticks == [datetime(2026, 3, d, 5, tzinfo=UTC) for d in (1, 2, 3)]
    # Adjacent windows tile: no tick is in both, none is lost.
    following = window_ticks(expr, end, datetime(2026, 3, 6, 5, tzinfo=UTC), DEFAULT_MAX_RUNS)
    assert following == [datetime(2026, 3, 4, 5, tzinfo=UTC),
                         datetime(2026, 3, 5, 5, tzinfo=UTC)]


def test_window_across_spring_forward_keeps_one_tick_per_day() -> None:
    spec = {**SCHEDULE["spec"], "cron": "30 2 * * *"}
    expr = expression_from_spec(spec)
    ticks = window_ticks(expr, datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 10,
                                                                          tzinfo=UTC), 100)
    local = [t.astimezone(expr.timezone).strftime("%d %H:%M") for t in ticks]
    assert local == ["07 02:30", "08 03:00", "09 02:30"]


def test_window_ticks_stop_one_past_the_limit() -> None:
    expr = expression_from_spec({"interval": "1m"})
    ticks = window_ticks(expr, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1,
                                                                          tzinfo=UTC), 5)
    assert len(ticks) == 6


def test_planned_runs_are_the_schedulers_runs_marked_backfill() -> None:
    expr = expression_from_spec(SCHEDULE["spec"])
    tick = datetime(2026, 3, 2, 5, tzinfo=UTC)
    [planned] = plan_backfill(SCHEDULE, DEPLOYMENT, expr, [tick])
    scheduled = build_flow_run(SCHEDULE, DEPLOYMENT, expr, tick)
    assert planned.name == scheduled["metadata"]["name"] == scheduled_run_name("daily", tick)
    assert planned.body["metadata"]["labels"] == scheduled["metadata"]["labels"]
    assert planned.body["metadata"]["ownerReferences"] == scheduled["metadata"][
        "ownerReferences"]
    assert planned.body["metadata"]["annotations"] == {
        **scheduled["metadata"]["annotations"], "headwater.dev/trigger": "backfill"}
    assert planned.body["spec"] == {**scheduled["spec"], "trigger": "backfill"}
    assert planned.body["spec"]["parameters"] == {"region": "eu", "start_date": "2026-03-01",
                                                  "end_date": "2026-03-02"}


def test_check_window_refuses_inverted_and_oversized_windows() -> None:
    start, end = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(CliError) as inverted:
        check_window(start, end, 0, None)
    assert inverted.value.code == 2
    assert "is not after --start" in inverted.value.message
    check_window(end, start, DEFAULT_MAX_RUNS, None)  # exactly the default is allowed
    with pytest.raises(CliError) as too_many:
        check_window(end, start, DEFAULT_MAX_RUNS + 1, None)
    assert "--max-runs N" in too_many.value.message
    assert too_many.value.code == 2
    check_window(end, start, 500, 500)
    with pytest.raises(CliError) as over_explicit:
        check_window(end, start, 501, 500)
    assert "larger --max-runs" in over_explicit.value.message
