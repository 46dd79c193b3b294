"""Rendering: tables, JSON/YAML, durations, the get rows and the describe report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import yaml
from headwater_operator.cli.describe import (
    describe_text,
    next_fire_times,
    run_events,
    schedule_text,
)
from headwater_operator.cli.get import (
    automation_row,
    render_objects,
    schedule_row,
    sort_objects,
)
from headwater_operator.cli.output import (
    age,
    as_list,
    human_duration,
    relative,
    render_data,
    render_table,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def run(name: str, created: str, **status: Any) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": {"deploymentRef": {"name": "nightly"}, "trigger": "cli",
                     "parameters": {"n": 3}},
            "status": status}


def test_table_columns_are_aligned_and_trailing_space_stripped() -> None:
    text = render_table(("NAME", "PHASE"), [("a", "Running"), ("longer-name", "Ok")])
    assert text == ("NAME          PHASE\n"
                    "a             Running\n"
                    "longer-name   Ok\n")
    assert render_table(("NAME",), []) == ""


def test_json_and_yaml_round_trip_and_keep_key_order() -> None:
    data = as_list([{"b": 1, "a": [1, 2]}])
    assert json.loads(render_data(data, "json")) == data
    text = render_data(data, "yaml")
    assert yaml.safe_load(text) == data
    assert text.index("apiVersion") < text.index("items")


def test_human_durations() -> None:
    assert [human_duration(s) for s in (0, 45, 60, 192, 3600, 18240, 90000, 86400 * 12)] == [
        "0s", "45s", "1m", "3m12s", "1h", "5h4m", "1d1h", "12d"]


def test_age_and_relative_times() -> None:
    assert age("2026-03-10T11:55:00Z", NOW) == "5m"
    assert age(None, NOW) == "<unknown>"
    assert relative("2026-03-10T12:30:00Z", NOW) == "in 30m"
    assert relative("2026-03-09T12:00:00Z", NOW) == "1d ago"
    assert relative(None, NOW) == "<none>"


def test_get_runs_table_newest_first() -> None:
    items = sort_objects("runs", [
        run("old", "2026-03-10T10:00:00Z", phase="Completed", reason="Completed",
            durationSeconds=75.2, attempts=1, scheduledTime="2026-03-10T10:00:00Z"),
        run("new", "2026-03-10T11:59:00Z", phase="Failed", reason="FlowFailed", attempts=2),
    ])
    lines = render_objects("runs", items, "table", NOW).splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "REASON", "DEPLOYMENT", "TRIGGER",
                                "SCHEDULED", "DURATION", "ATTEMPTS", "AGE"]
    assert lines[1].split() == ["new", "Failed", "FlowFailed", "nightly", "cli", "<none>",
                                "<none>", "2", "1m"]
    assert lines[2].split() == ["old", "Completed", "Completed", "nightly", "cli",
                                "2026-03-10T10:00:00Z", "1m15s", "1", "2h"]


def test_get_json_is_a_list_or_the_single_object() -> None:
    items = [run("a", "2026-03-10T10:00:00Z")]
    assert json.loads(render_objects("runs", items, "json", NOW))["kind"] == "List"
    assert json.loads(render_objects("runs", items, "json", NOW, single=True))["metadata"][
        "name"] == "a"


def test_schedule_row_shows_expression_and_relative_ticks() -> None:
    schedule = {"metadata": {"name": "daily", "creationTimestamp": "2026-03-01T00:00:00Z"},
                "spec": {"deploymentRef": {"name": "nightly"}, "interval": "15m",
                         "timezone": "Europe/Berlin"},
                "status": {"lastScheduleTime": "2026-03-10T11:45:00Z",
                           "nextScheduleTime": "2026-03-10T12:00:10Z"}}
    assert list(schedule_row(schedule, NOW)) == [
        "daily", "nightly", "every 15m", "Europe/Berlin", "false", "15m ago", "in 10s", "9d12h"]


def test_automation_row_says_what_fires_it_what_it_does_and_how_delivery_went() -> None:
    on_failure = {"metadata": {"name": "on-failure", "creationTimestamp": "2026-03-10T10:00:00Z"},
                  "spec": {"trigger": {"runPhase": {"phases": ["Failed", "Crashed"]}},
                           "actions": [{"notify": {"blockRef": {"name": "slack"}}},
                                       {"suspend": {}}]},
                  "status": {"conditions": [{"type": "Ready", "status": "True"}],
                             "delivered": 3, "failed": 1, "lastDeliveries": [
                                 {"action": 0, "outcome": "Delivered",
                                  "time": "2026-03-10T11:50:00Z"},
                                 {"action": 1, "outcome": "Failed",
                                  "time": "2026-03-10T11:55:00Z"}]}}
    assert list(automation_row(on_failure, NOW)) == [
        "on-failure", "True", "runPhase Failed,Crashed", "notify,suspend", "3", "1",
        "Failed 5m ago", "2h"]
    stale = {"metadata": {"name": "stale", "creationTimestamp": "2026-03-10T11:00:00Z"},
             "spec": {"trigger": {"freshness": {"deployment": "etl", "within": "6h"}},
                      "actions": [{"runDeployment": {"name": "etl"}}]}}
    assert list(automation_row(stale, NOW)) == [
        "stale", "<none>", "freshness etl 6h", "runDeployment", "0", "0", "<none>", "1h"]


def test_describe_shows_outcome_counts_assets_conditions_and_events() -> None:
    body = run("r1", "2026-03-10T11:00:00Z", phase="Failed", reason="FlowFailed",
               message="the flow failed after 2 attempts: ValueError", attempts=2,
               podName="r1-2", taskRuns={"Completed": 9, "Failed": 1},
               artifacts=["report"], durationSeconds=61,
               assets=[{"key": "s3://lake/orders", "version": "v3", "upstream": ["s3://raw"]}],
               conditions=[{"type": "Ready", "status": "False", "reason": "FlowFailed",
                            "message": "failed"}])
    events = run_events([
        {"involvedObject": {"kind": "FlowRun", "name": "r1"}, "type": "Warning",
         "reason": "Retrying", "message": "attempt 1 failed", "lastTimestamp":
             "2026-03-10T11:01:00Z"},
        {"involvedObject": {"kind": "FlowRun", "name": "other"}, "reason": "Nope"},
        {"involvedObject": {"kind": "FlowRun", "name": "r1"}, "type": "Normal",
         "reason": "PodCreated", "message": "pod r1-1", "lastTimestamp":
             "2026-03-10T11:00:00Z"},
    ], "r1")
    assert [e["reason"] for e in events] == ["PodCreated", "Retrying"]
    text = describe_text(body, events, NOW)
    assert "Phase:          Failed\n" in text
    assert "Reason:         FlowFailed\n" in text
    assert "Message:        the flow failed after 2 attempts: ValueError\n" in text
    assert "Attempts:       2\n" in text
    assert "Source:" not in text  # the code is in the image
    body["status"]["source"] = {"url": "https://github.com/acme/flows.git", "ref": "main",
                                "commit": "0c1f" * 10, "path": "etl"}
    assert ("Source:         https://github.com/acme/flows.git @ " + "0c1f" * 10 +
            " (main), path etl\n") in describe_text(body, events, NOW)
    assert "Task runs:      Completed=9 Failed=1\n" in text
    assert "Duration:       1m1s\n" in text
    assert "Parameters:     n=3\n" in text
    assert "s3://lake/orders   v3        s3://raw" in text
    assert "Ready   False    FlowFailed" in text
    events_part = text.split("Events:\n", 1)[1]
    assert events_part.index("PodCreated") < events_part.index("Retrying")


def test_describe_of_a_fresh_run_says_none() -> None:
    text = describe_text(run("r2", "2026-03-10T11:59:00Z"), [], NOW)
    assert "Phase:          Scheduled\n" in text
    assert "Assets:         <none>\n" in text
    assert "Events:         <none>\n" in text


def _schedule(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "nightly", "namespace": "default",
                         "creationTimestamp": "2026-03-10T11:00:00Z"},
            "spec": {"deploymentRef": {"name": "etl"}, **spec}}


def test_describe_schedule_lists_the_next_fires_in_its_zone() -> None:
    schedule = _schedule(cron="30 2 * * *", timezone="America/New_York")
    text = schedule_text(schedule, next_fire_times(schedule, NOW), [], NOW)
    assert "Expression:     30 2 * * *" in text
    assert "Catch-up:       Latest, at most 100 runs" in text  # the defaults, spelled out
    fires = text.split("Next fires:\n", 1)[1].splitlines()[1:4]
    assert [line.split()[0] for line in fires] == [
        "2026-03-11T02:30:00-04:00", "2026-03-12T02:30:00-04:00", "2026-03-13T02:30:00-04:00"]


def test_describe_schedule_says_why_there_is_no_next_fire() -> None:
    invalid = _schedule(cron="61 * * * *")
    assert next_fire_times(invalid, NOW).startswith("<invalid: ")  # type: ignore[union-attr]
    ended = _schedule(rrule="DTSTART:20200101T000000\nRRULE:FREQ=DAILY;COUNT=2")
    text = schedule_text(ended, next_fire_times(ended, NOW), [], NOW)
    assert "Next fires:     <none: the schedule has ended>" in text
