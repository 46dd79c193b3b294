"""The run form from a Flow's parametersSchema: fields, defaults, conversion, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_operator.flowruns.settings import merge_parameters, parameter_errors
from headwater_operator.ui.forms import (
    FIELD_PREFIX,
    NONE_OPTION,
    form_fields,
    prefill_values,
    read_run_form,
    resolve,
    schema_errors,
)

ROOT = Path(__file__).resolve().parents[3]

# What `headwater schema` prints for a flow with one parameter of each kind (generated
# from a real signature: date, datetime, int, float, bool, Literal, Enum, Optional[str],
# list[str], a pydantic model, Optional[date], Optional[int]).
RICH: dict[str, Any] = {
    "title": "Parameters", "type": "object",
    "properties": {
        "day": {"format": "date", "title": "day", "type": "string", "position": 0},
        "at": {"format": "date-time", "title": "at", "type": "string", "position": 1},
        "n": {"default": 3, "title": "n", "type": "integer", "position": 2,
              "minimum": 1, "maximum": 10},
        "ratio": {"default": 0.5, "title": "ratio", "type": "number", "position": 3},
        "flag": {"default": False, "title": "flag", "type": "boolean", "position": 4},
        "mode": {"default": "fast", "enum": ["fast", "slow"], "title": "mode",
                 "type": "string", "position": 5},
        "color": {"$ref": "#/definitions/Color", "default": "red", "title": "color",
                  "position": 6},
        "name": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None,
                 "title": "name", "position": 7},
        "tags": {"default": [], "items": {"type": "string"}, "title": "tags",
                 "type": "array", "position": 8},
        "cfg": {"$ref": "#/definitions/Cfg", "default": {"a": 1}, "title": "cfg",
                "position": 9},
        "maybe_day": {"anyOf": [{"format": "date", "type": "string"}, {"type": "null"}],
                      "default": None, "title": "maybe_day", "position": 10},
        "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None,
                  "title": "limit", "position": 11},
    },
    "required": ["day", "at"],
    "definitions": {
        "Cfg": {"properties": {"a": {"default": 1, "title": "A", "type": "integer"}},
                "title": "Cfg", "type": "object"},
        "Color": {"enum": ["red", "blue"], "title": "Color", "type": "string"},
    },
}


def _form(**values: str) -> dict[str, str]:
    return {FIELD_PREFIX + name: value for name, value in values.items()}


def _unchanged_form(schema: dict[str, Any], flow: dict[str, Any] | None = None,
                    deployment: dict[str, Any] | None = None) -> dict[str, str]:
    """What a browser submits for the form as it was rendered."""
    form: dict[str, str] = {}
    for f in form_fields(schema, prefill_values(schema, flow or {}, deployment or {})):
        if f.widget == "checkbox":
            if f.checked:
                form[f.control_name] = "on"
        elif f.widget == "select":
            form[f.control_name] = next(o.value for o in f.options if o.selected)
        else:
            form[f.control_name] = f.text
    return form


def test_widgets_follow_the_schema_in_position_order() -> None:
    fields = form_fields(RICH, prefill_values(RICH))
    assert [(f.name, f.widget) for f in fields] == [
        ("day", "date"), ("at", "datetime"), ("n", "number"), ("ratio", "number"),
        ("flag", "checkbox"), ("mode", "select"), ("color", "select"), ("name", "text"),
        ("tags", "json"), ("cfg", "json"), ("maybe_day", "date"), ("limit", "number")]
    by = {f.name: f for f in fields}
    assert by["day"].required
    assert by["at"].required
    assert not by["n"].required
    assert by["n"].html == {"step": "1", "min": "1", "max": "10"}
    assert by["ratio"].html == {"step": "any"}
    assert [o.label for o in by["color"].options] == ["red", "blue"]
    assert by["name"].nullable
    assert by["name"].type_label == "string or null"
    assert by["maybe_day"].type_label == "string (date) or null"


def test_defaults_fill_the_form_and_deployment_values_win() -> None:
    values = prefill_values(RICH, {"ratio": 0.25}, {"mode": "slow", "day": "2026-03-01"})
    by = {f.name: f for f in form_fields(RICH, values)}
    assert by["n"].text == "3"
    assert by["ratio"].text == "0.25"
    assert by["day"].text == "2026-03-01"
    assert [o.value for o in by["mode"].options if o.selected] == [json.dumps("slow")]
    assert json.loads(by["cfg"].text) == {"a": 1}
    assert by["flag"].checked is False
    assert by["at"].text == ""
    assert not by["at"].has_prefill


def test_an_unchanged_valid_form_sends_only_what_was_typed() -> None:
    form = _unchanged_form(RICH)
    form.update(_form(day="2026-03-01", at="2026-03-01T06:30"))
    result = read_run_form(RICH, {}, {}, form)
    assert result.ok, result.errors
    assert result.overrides == {"day": "2026-03-01", "at": "2026-03-01T06:30"}


def test_changed_values_are_converted_to_their_json_types() -> None:
    form = _unchanged_form(RICH)
    form.update(_form(day="2026-03-01", at="2026-03-01T06:30", n="7", ratio="1.5",
                      flag="on", mode=json.dumps("slow"), tags='["a", "b"]',
                      name="Ada", limit="4"))
    result = read_run_form(RICH, {}, {}, form)
    assert result.ok, result.errors
    assert result.overrides == {"day": "2026-03-01", "at": "2026-03-01T06:30", "n": 7,
                                "ratio": 1.5, "flag": True, "mode": "slow",
                                "tags": ["a", "b"], "name": "Ada", "limit": 4}


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("n", "abc", "'abc' is not a number"),
    ("n", "2.5", "'2.5' is not a whole number"),
    ("n", "11", "11 is greater than the maximum of 10"),
    ("day", "03/01/2026", "is not a date"),
    ("at", "tomorrow", "is not a date and time"),
    ("tags", "[a", "not valid JSON"),
    ("tags", '"x"', "'x' is not of type 'array'"),
    ("mode", json.dumps("medium"), "choose one of the listed values"),
])
def test_a_bad_value_is_an_error_on_its_field_and_nothing_else(name: str, text: str,
                                                               expected: str) -> None:
    form = _unchanged_form(RICH)
    form.update(_form(day="2026-03-01", at="2026-03-01T06:30"))
    form[FIELD_PREFIX + name] = text
    result = read_run_form(RICH, {}, {}, form)
    assert not result.ok
    assert list(result.errors) == [name]
    assert any(expected in message for message in result.errors[name]), result.errors


def test_required_fields_left_empty_are_errors_on_those_fields() -> None:
    result = read_run_form(RICH, {}, {}, _unchanged_form(RICH))
    assert sorted(result.errors) == ["at", "day"]
    assert "required" in result.errors["day"][0]


def test_a_deployment_value_satisfies_a_required_field() -> None:
    deployment = {"day": "2026-03-01", "at": "2026-03-01T00:00:00Z"}
    result = read_run_form(RICH, {}, deployment, _unchanged_form(RICH, {}, deployment))
    assert result.ok, result.errors
    assert result.overrides == {}


def test_an_rfc3339_prefill_left_alone_is_not_rewritten() -> None:
    deployment = {"day": "2026-03-01", "at": "2026-03-01T06:00:00+01:00"}
    form = _unchanged_form(RICH, {}, deployment)
    assert form[FIELD_PREFIX + "at"] == "2026-03-01T06:00:00"
    assert read_run_form(RICH, {}, deployment, form).overrides == {}


def test_a_rejected_form_is_shown_again_as_typed() -> None:
    form = _unchanged_form(RICH)
    form.update(_form(day="2026-03-01", at="2026-03-01T06:30", n="abc"))
    by = {f.name: f for f in read_run_form(RICH, {}, {}, form).fields}
    assert by["n"].text == "abc"
    assert by["day"].text == "2026-03-01"


def test_a_nullable_select_offers_none_and_a_plain_one_asks_to_choose() -> None:
    schema = {"type": "object", "properties": {
        "level": {"anyOf": [{"enum": [1, 2]}, {"type": "null"}], "default": None},
        "kind": {"enum": ["a", "b"]}}, "required": ["kind"]}
    by = {f.name: f for f in form_fields(schema, prefill_values(schema))}
    assert [(o.value, o.selected) for o in by["level"].options] == [
        (NONE_OPTION, True), ("1", False), ("2", False)]
    assert by["kind"].options[0].value == NONE_OPTION
    assert by["kind"].options[0].selected
    result = read_run_form(schema, {}, {}, {FIELD_PREFIX + "kind": NONE_OPTION,
                                            FIELD_PREFIX + "level": "2"})
    assert list(result.errors) == ["kind"]
    result = read_run_form(schema, {}, {}, {FIELD_PREFIX + "kind": '"b"',
                                            FIELD_PREFIX + "level": "2"})
    assert result.ok
    assert result.overrides == {"kind": "b", "level": 2}


def test_unchecking_a_default_true_checkbox_sends_false() -> None:
    schema = {"type": "object", "properties": {"dry": {"type": "boolean", "default": True}}}
    assert read_run_form(schema, {}, {}, {}).overrides == {"dry": False}
    assert read_run_form(schema, {}, {}, {FIELD_PREFIX + "dry": "on"}).overrides == {}


def test_errors_inside_a_parameter_name_the_path() -> None:
    schema = {"type": "object", "definitions": RICH["definitions"],
              "properties": {"cfg": {"$ref": "#/definitions/Cfg"}}}
    errors = schema_errors({"cfg": {"a": "x"}}, schema)
    assert errors == {"cfg": ["[\"a\"]: 'x' is not of type 'integer'"]}


def test_an_invalid_schema_is_a_form_error() -> None:
    assert list(schema_errors({}, {"type": "object", "properties": {"a": {"type": 5}}})) == [
        ""]


def test_resolve_follows_refs_allof_and_optional() -> None:
    schema = {"$defs": {"E": {"enum": ["x"], "type": "string"}}}
    resolved, nullable = resolve({"allOf": [{"$ref": "#/$defs/E"}], "default": "x"}, schema)
    assert resolved["enum"] == ["x"]
    assert resolved["default"] == "x"
    assert not nullable
    resolved, nullable = resolve({"type": ["integer", "null"]}, {})
    assert resolved["type"] == "integer"
    assert nullable


@pytest.mark.parametrize("parameters", [
    {}, {"day": "2026-03-01"}, {"day": "2026-03-01", "at": "x"},
    {"day": 5, "at": "x"}, {"day": "d", "at": "t", "n": "3"}, {"day": "d", "at": "t", "n": 3},
    {"day": "d", "at": "t", "mode": "medium"}, {"day": "d", "at": "t", "cfg": {"a": []}},
    {"day": "d", "at": "t", "limit": None}, {"day": "d", "at": "t", "flag": 1},
])
def test_the_verdict_is_the_clis(parameters: dict[str, Any]) -> None:
    """The form accepts exactly what `headwater run` (and admission) accepts."""
    assert bool(schema_errors(parameters, RICH)) == bool(parameter_errors(parameters, RICH))
    total = sum(len(v) for v in schema_errors(parameters, RICH).values())
    assert total == len(parameter_errors(parameters, RICH))


@pytest.mark.parametrize("path", ["examples/pipeline/flow.yaml", "examples/assets/flow.yaml"])
def test_the_examples_schemas_make_forms(path: str) -> None:
    flow = next(doc for doc in yaml.safe_load_all((ROOT / path).read_text())
                if doc and doc.get("kind") == "Flow")
    schema = flow["spec"]["parametersSchema"]
    fields = form_fields(schema, prefill_values(schema, flow["spec"].get("parameters") or {}))
    assert fields
    assert all(f.widget == "date" for f in fields)
    result = read_run_form(schema, flow["spec"].get("parameters") or {}, {},
                           {f.control_name: "2026-03-0" for f in fields})
    assert set(result.errors) == {f.name for f in fields}
    good = {f.control_name: "2026-03-01" for f in fields}
    result = read_run_form(schema, {}, {}, good)
    assert result.ok
    assert not parameter_errors(merge_parameters(result.overrides), schema)
