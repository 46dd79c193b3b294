"""Structural defaulting, as apiextensions-apiserver 1.32 applies it on requests and reads.

Cases after apiextensions-apiserver v0.32.9
``pkg/apiserver/schema/defaulting/algorithm_test.go`` (``TestDefault``).
"""

from __future__ import annotations

from typing import Any

from headwater_dev.apiextensions.defaulting import apply_defaults


def spec_of(schema: dict[str, Any], spec: Any) -> Any:
    root = {"type": "object", "properties": {"spec": schema}}
    return apply_defaults(root, {"spec": spec})["spec"]


ITEM = {"type": "object", "properties": {name: {"type": "string", "default": name.upper()}
                                         for name in ("a", "b", "c")}}


def test_missing_properties_of_each_item_get_their_defaults() -> None:
    assert spec_of({"type": "array", "items": ITEM}, [{"a": 1}, {"b": 1}, {"c": 1}]) == [
        {"a": 1, "b": "B", "c": "C"}, {"a": "A", "b": 1, "c": "C"},
        {"a": "A", "b": "B", "c": 1}]


def test_only_missing_and_non_nullable_null_values_are_replaced() -> None:
    item = {"type": "object", "properties": {"a": {"type": "string", "default": "A"}}}
    assert spec_of({"type": "array", "items": item},
                   [{}, {"a": 1}, {"a": 0}, {"a": 0.0}, {"a": ""}, {"a": None}, {"a": []}]) == [
        {"a": "A"}, {"a": 1}, {"a": 0}, {"a": 0.0}, {"a": ""}, {"a": "A"}, {"a": []}]
    nullable = {"type": "object", "properties": {"a": {
        "type": "string", "nullable": True, "default": "A"}}}
    assert spec_of(nullable, {"a": None}) == {"a": None}


def test_additional_properties_and_nested_defaults() -> None:
    schema = {"type": "object", "properties": {
        "object": {"type": "object", "properties": {"a": {"type": "string", "default": "N"},
                                                    "b": {"type": "string", "default": "O"}}},
        "additionalProperties": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"a": {"type": "string", "default": "alpha"},
                                             "b": {"type": "string", "default": "beta"}}}},
        "foo": {"type": "string", "default": "bar"}}}
    assert spec_of(schema, {"object": {"a": 1}, "additionalProperties": {"x": {"a": 1},
                                                                         "y": {"b": 2}}}) == {
        "object": {"a": 1, "b": "O"},
        "additionalProperties": {"x": {"a": 1, "b": "beta"}, "y": {"a": "alpha", "b": 2}},
        "foo": "bar"}


def test_a_defaulted_object_is_defaulted_inside_and_each_default_is_a_copy() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"inner": {
        "type": "object", "default": {},
        "properties": {"x": {"type": "integer", "default": 1}}}}}
    first, second = spec_of(schema, {}), spec_of(schema, {})
    assert first == {"inner": {"x": 1}}
    first["inner"]["x"] = 2
    assert second == {"inner": {"x": 1}}
    assert schema["properties"]["inner"]["default"] == {}


def test_null_items_and_map_values_get_the_items_default() -> None:
    assert spec_of({"type": "array", "items": {"type": "string", "default": "d"}},
                   [None, "x"]) == ["d", "x"]
    assert spec_of({"type": "object", "additionalProperties": {"type": "string",
                                                               "default": "d"}},
                   {"k": None}) == {"k": "d"}


def test_defaults_inside_value_validations_are_not_applied() -> None:
    schema = {"type": "object", "anyOf": [{"properties": {"x": {"default": 1}}}]}
    assert spec_of(schema, {}) == {}


def test_the_argument_is_left_alone() -> None:
    obj: dict[str, Any] = {"spec": {}}
    apply_defaults({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"x": {"type": "integer", "default": 1}}}}}, obj)
    assert obj == {"spec": {}}
