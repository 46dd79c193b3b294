"""The emulated API server's ``Table`` answers (``kubectl get``): columns from the CRDs'
``additionalPrinterColumns``, cells from their JSONPaths, the ``includeObject`` forms and
the ``Accept`` negotiation."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_dev.resources import ResourceSpec, default_resources
from headwater_dev.store import ApiError
from headwater_dev.tables import (
    evaluate_json_path,
    human_age,
    parse_json_path,
    render_table,
    wants_table,
)
from headwater_operator.api.resource import PrinterColumn

NOW = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.UTC)
KUBECTL_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                  "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


def _spec(plural: str, group: str = "headwater.dev") -> ResourceSpec:
    return next(s for s in default_resources() if s.plural == plural and s.group == group)


REPO = Path(__file__).resolve().parents[3]


def _crd_columns(plural: str) -> list[dict[str, Any]]:
    doc = next(d for d in yaml.safe_load_all(Path(REPO, "crds", f"{plural}.headwater.dev.yaml")
                                             .read_text(encoding="utf-8")) if d)
    columns: list[dict[str, Any]] = doc["spec"]["versions"][0]["additionalPrinterColumns"]
    return columns


def _flowrun(**status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
        "metadata": {"name": "hello-abc12", "namespace": "default", "resourceVersion": "41",
                     "creationTimestamp": "2026-12-04T11:55:00Z", "labels": {"a": "b"}},
        "spec": {"deploymentRef": {"name": "hello"}},
        "status": status,
    }


# --- columns --------------------------------------------------------------------------
@pytest.mark.parametrize("plural", ["flows", "deployments", "schedules", "flowruns"])
def test_columns_are_name_then_the_crds_columns_in_order(plural: str) -> None:
    declared = _crd_columns(plural)
    table = render_table(_spec(plural), [], include_object="Metadata", now=NOW)
    definitions = table["columnDefinitions"]
    assert definitions[0] == {**definitions[0], "name": "Name", "type": "string",
                              "format": "name", "priority": 0}
    assert [(d["name"], d["type"], d["priority"], d["description"]) for d in definitions[1:]] == [
        (c["name"], c["type"], c.get("priority", 0), c.get("description", "")) for c in declared]
    # Our CRDs declare their own Age; the server adds none.
    assert [d["name"] for d in definitions].count("Age") == 1
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["rows"] == []


def test_spec_carries_the_crd_printer_columns() -> None:
    spec = _spec("flowruns")
    reason = next(c for c in spec.printer_columns if c.name == "Reason")
    assert reason == PrinterColumn(name="Reason", type="string", json_path=".status.reason",
                                   description="Why it is in this phase.", priority=1)
    assert _spec("pods", group="").printer_columns == ()


def test_kinds_without_columns_get_name_and_age() -> None:
    pods = _spec("pods", group="")
    pod = {"metadata": {"name": "p-1", "creationTimestamp": "2026-12-04T10:59:30Z"}}
    table = render_table(pods, [pod], include_object="None", now=NOW)
    assert [(d["name"], d["type"]) for d in table["columnDefinitions"]] == [
        ("Name", "string"), ("Age", "date")]
    assert table["rows"] == [{"cells": ["p-1", "60m"]}]


# --- cells ----------------------------------------------------------------------------
def test_a_flowrun_renders_its_cells_in_column_order() -> None:
    run = _flowrun(phase="Failed", scheduledTime="2026-12-04T11:59:00Z",
                   startTime="2026-12-04T11:59:15Z", durationSeconds=12, reason="FlowFailed")
    table = render_table(_spec("flowruns"), [run], include_object="None", now=NOW)
    names = [d["name"] for d in table["columnDefinitions"]]
    assert dict(zip(names, table["rows"][0]["cells"], strict=True)) == {
        "Name": "hello-abc12", "Phase": "Failed", "Deployment": "hello", "Scheduled": "60s",
        "Started": "45s", "Duration": 12.0, "Reason": "FlowFailed", "Age": "5m"}


def test_missing_fields_are_none() -> None:
    table = render_table(_spec("flowruns"), [_flowrun()], include_object="None", now=NOW)
    assert table["rows"][0]["cells"] == ["hello-abc12", None, "hello", None, None, None, None,
                                         "5m"]


def test_a_schedule_renders_typed_cells() -> None:
    schedule = {
        "metadata": {"name": "nightly", "creationTimestamp": "2026-12-01T12:00:00Z"},
        "spec": {"deploymentRef": {"name": "etl"}, "timezone": "UTC", "suspend": True},
        "status": {"expression": "0 6 * * *", "lastScheduleTime": "2026-12-04T06:00:00Z",
                   "nextScheduleTime": "2026-12-05T06:00:00Z"},
    }
    table = render_table(_spec("schedules"), [schedule], include_object="None", now=NOW)
    names = [d["name"] for d in table["columnDefinitions"]]
    # Next is a string column: as a date, the future time would print "<invalid>" (see
    # test_cells_keep_or_drop_values_by_column_type), as on a real API server.
    assert dict(zip(names, table["rows"][0]["cells"], strict=True)) == {
        "Name": "nightly", "Expression": "0 6 * * *", "Timezone": "UTC", "Suspended": True,
        "Last": "6h", "Next": "2026-12-05T06:00:00Z", "Deployment": "etl", "Age": "3d"}


def _column(name: str, type_: Any, json_path: str) -> PrinterColumn:
    return PrinterColumn(name=name, json_path=json_path, type=type_, description="")


def test_cells_keep_or_drop_values_by_column_type() -> None:
    spec = ResourceSpec("x.dev", "v1", "things", "Thing", printer_columns=(
        _column("Count", "integer", ".n"), _column("Ratio", "number", ".n"),
        _column("On", "boolean", ".n"), _column("Text", "string", ".m"),
        _column("When", "date", ".bad"), _column("Flag", "string", ".flag")))
    obj = {"metadata": {"name": "t"}, "n": 2.7, "m": {"k": [1]}, "bad": "yesterday",
           "flag": False}
    cells = render_table(spec, [obj], include_object="None", now=NOW)["rows"][0]["cells"]
    assert cells == ["t", 2, 2.7, None, '{"k":[1]}', "<invalid>", "false"]


def test_index_quoted_key_and_filter_json_paths() -> None:
    obj = {"status": {"conditions": [
        {"type": "Invalid", "status": "False"}, {"type": "Ready", "status": "True"}]},
        "metadata": {"labels": {"app.kubernetes.io/name": "hello"}}}
    assert evaluate_json_path(obj, ".status.conditions[1].type") == ["Ready"]
    assert evaluate_json_path(obj, ".status.conditions[-1].type") == ["Ready"]
    assert evaluate_json_path(obj, ".status.conditions[2].type") == []
    assert evaluate_json_path(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert evaluate_json_path(obj, ".status.conditions[?(@.type=='Gone')].status") == []
    assert evaluate_json_path(obj, ".metadata.labels['app.kubernetes.io/name']") == ["hello"]
    assert evaluate_json_path(obj, "{.status.conditions[0].status}") == ["False"]
    assert evaluate_json_path(obj, ".status.missing.deeper") == []
    with pytest.raises(ValueError, match="unsupported JSONPath"):
        parse_json_path(".status.conditions[*].type")


def test_a_filter_column_shows_the_first_match() -> None:
    spec = ResourceSpec("x.dev", "v1", "things", "Thing", printer_columns=(
        _column("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),))
    obj = {"metadata": {"name": "t"}, "status": {"conditions": [
        {"type": "Ready", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    assert render_table(spec, [obj], include_object="None",
                        now=NOW)["rows"][0]["cells"] == ["t", "False"]


@pytest.mark.parametrize(("seconds", "shown"), [
    (-5, "<invalid>"), (-0.5, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (250, "4m10s"),
    (600, "10m"), (179 * 60, "179m"), (3 * 3600, "3h"), (3 * 3600 + 300, "3h5m"),
    (47 * 3600, "47h"), (50 * 3600, "2d2h"), (8 * 86400, "8d"), (800 * 86400, "2y70d"),
    (9 * 365 * 86400, "9y"),
])
def test_ages_read_like_kubectl(seconds: float, shown: str) -> None:
    assert human_age(seconds) == shown


# --- rows' objects and list metadata --------------------------------------------------
def test_include_object_variants() -> None:
    run = _flowrun(phase="Running")
    spec = _spec("flowruns")
    metadata_row = render_table(spec, [run], include_object="Metadata", now=NOW)["rows"][0]
    assert metadata_row["object"] == {"kind": "PartialObjectMetadata",
                                      "apiVersion": "meta.k8s.io/v1",
                                      "metadata": run["metadata"]}
    assert render_table(spec, [run], include_object="Object",
                        now=NOW)["rows"][0]["object"] == run
    assert "object" not in render_table(spec, [run], include_object="None",
                                        now=NOW)["rows"][0]
    with pytest.raises(ApiError) as raised:
        render_table(spec, [run], include_object="Everything", now=NOW)
    assert raised.value.code == 400


def test_list_metadata_carries_resource_version_and_continue() -> None:
    spec = _spec("flowruns")
    runs = [_flowrun(), {**_flowrun(), "metadata": {"name": "second"}}]
    table = render_table(spec, runs, include_object="None", now=NOW,
                         list_metadata={"resourceVersion": 57, "continue": "tok",
                                        "selfLink": "ignored"})
    assert table["metadata"] == {"resourceVersion": "57", "continue": "tok"}
    assert [row["cells"][0] for row in table["rows"]] == ["hello-abc12", "second"]
    assert render_table(spec, runs, include_object="None", now=NOW,
                        list_metadata={"resourceVersion": "9"})["metadata"] == {
        "resourceVersion": "9"}


# --- Accept ---------------------------------------------------------------------------
@pytest.mark.parametrize(("accept", "table"), [
    (KUBECTL_ACCEPT, True),
    ("application/json;as=Table;g=meta.k8s.io;v=v1", True),
    ("application/json", False),
    ("application/json, */*", False),
    (None, False),
    ("", False),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json", False),
    ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
     False),
    ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
     "application/json;as=Table;v=v1;g=meta.k8s.io", True),
    ("application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io", True),
    ("application/json;q=0.5, application/json;as=Table;v=v1;g=meta.k8s.io", True),
    ("application/json;as=Table;v=v1;g=meta.k8s.io;q=0, application/json", False),
])
def test_the_first_acceptable_media_type_decides(accept: str | None, table: bool) -> None:
    assert wants_table(accept) is table
