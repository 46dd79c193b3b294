"""OpenAPI schema validation of custom resources, worded as Kubernetes 1.32 words it.

The expected messages of the first tests are those of apiextensions-apiserver v0.32.9
``pkg/apiserver/validation/validation_test.go`` (``TestValidateCustomResource``); the
others follow kube-openapi 32ad38e42d3f ``pkg/validation/errors/schema.go`` through
``kubeOpenAPIResultToFieldErrors``. Ratcheting follows ``ratcheting_test.go``.
"""

from __future__ import annotations

from typing import Any

import pytest
from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions.schemavalidator import (
    is_float64_json_integer,
    schema_errors,
)


def messages(schema: dict[str, Any], obj: Any, **options: Any) -> list[str]:
    return [error.message() for error in schema_errors(schema, obj, **options)]


def field_schema(**field: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"field": field}}


# --- types --------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "found"), [
    ("foo", "string"), (42, "integer"), (True, "boolean"), (1.2, "number"), ([], "array"),
    (None, "null")])
def test_a_wrong_type_names_the_type_found(value: Any, found: str) -> None:
    assert messages(field_schema(type="object"), {"field": value}) == [
        f'field: Invalid value: "{found}": field in body must be of type object: "{found}"']


def test_type_errors_are_type_invalid_and_carry_the_found_type() -> None:
    [error] = schema_errors({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"retries": {"type": "integer"}}}}},
        {"spec": {"retries": "three"}})
    assert error.type == fe.ErrorType.TYPE_INVALID
    assert error.message() == ('spec.retries: Invalid value: "string": spec.retries in body '
                               'must be of type integer: "string"')


def test_an_integral_float_is_an_integer_and_an_integer_is_a_number() -> None:
    assert messages(field_schema(type="integer"), {"field": 3.0}) == []
    assert messages(field_schema(type="number"), {"field": 3}) == []
    assert messages(field_schema(type="integer"), {"field": 3.5}) == [
        'field: Invalid value: "number": field in body must be of type integer: "number"']


def test_nullable_allows_null() -> None:
    assert messages(field_schema(type="string", nullable=True), {"field": None}) == []


def test_int_or_string_reports_both_types_and_its_any_of() -> None:
    schema = field_schema(**{"x-kubernetes-int-or-string": True, "nullable": True,
                             "anyOf": [{"type": "integer"}, {"type": "string"}]})
    for ok in (None, 42, "foo"):
        assert messages(schema, {"field": ok}) == []
    assert messages(schema, {"field": True}) == [
        'field: Invalid value: "boolean": field in body must be of type integer,string: '
        '"boolean"',
        '<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)',
        'field: Invalid value: "boolean": field in body must be of type integer: "boolean"']


def test_all_of_around_any_of() -> None:
    schema = field_schema(**{"x-kubernetes-int-or-string": True, "nullable": True,
                             "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}]})
    assert sorted(messages(schema, {"field": 1.2})) == sorted([
        '<nil>: Invalid value: "": "field" must validate all the schemas (allOf). None validated',
        '<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)',
        'field: Invalid value: "number": field in body must be of type integer,string: '
        '"number"',
        'field: Invalid value: "number": field in body must be of type integer: "number"'])


def test_one_of_and_not() -> None:
    one_of = field_schema(type="integer", oneOf=[{"minimum": 0}, {"maximum": 10}])
    assert messages(one_of, {"field": 5}) == [
        '<nil>: Invalid value: "": "field" must validate one and only one schema (oneOf). '
        'Found 2 valid alternatives']
    assert messages(one_of, {"field": 20}) == []
    negated = field_schema(type="string", **{"not": {"enum": ["forbidden"]}})
    assert messages(negated, {"field": "forbidden"}) == [
        '<nil>: Invalid value: "": "field" must not validate the schema (not)']


def test_summaries_land_on_the_validated_root() -> None:
    schema = {"type": "object", "properties": {"phase": {
        "type": "string", "not": {"enum": ["x"]}}}}
    assert messages(schema, {"phase": "x"}, root="status") == [
        'status: Invalid value: "": "phase" must not validate the schema (not)']


# --- required, enum ------------------------------------------------------------------------
def test_required_fields() -> None:
    schema = {"type": "object", "required": ["field"], "properties": {"field": {
        "type": "object", "required": ["nested"], "properties": {"nested": {}}}}}
    assert messages(schema, {"test": "a"}) == ["field: Required value"]
    assert messages(schema, {"field": {}}) == ["field.nested: Required value"]


def test_enum_values_are_listed_quoted_and_a_wrong_type_fails_both_checks() -> None:
    schema = field_schema(type="object", required=["nestedint", "nestedstring"], properties={
        "nestedint": {"type": "integer", "enum": [1, 2]},
        "nestedstring": {"type": "string", "enum": ["a", "b"]}})
    assert messages(schema, {"field": {}}) == [
        "field.nestedint: Required value", "field.nestedstring: Required value"]
    assert messages(schema, {"field": {"nestedint": "x", "nestedstring": True}}) == [
        'field.nestedint: Invalid value: "string": field.nestedint in body must be of type '
        'integer: "string"',
        'field.nestedint: Unsupported value: "x": supported values: "1", "2"',
        'field.nestedstring: Invalid value: "boolean": field.nestedstring in body must be of '
        'type string: "boolean"',
        'field.nestedstring: Unsupported value: true: supported values: "a", "b"']


def test_enum_compares_after_gos_conversion() -> None:
    # basicCommonValidator converts the value to the enum value's type before comparing.
    assert messages(field_schema(type="number", enum=[1]), {"field": 1.0}) == []
    assert messages(field_schema(type="number", enum=[1.5]), {"field": 1}) == [
        'field: Unsupported value: 1: supported values: "1.5"']


def test_null_fails_an_enum_without_null() -> None:
    assert messages(field_schema(type="string", nullable=True, enum=["a"]), {"field": None}) == [
        'field: Unsupported value: "null": supported values: "a"']


# --- strings ---------------------------------------------------------------------------------
def test_max_length_is_too_long_in_bytes_words_but_counts_characters() -> None:
    assert messages(field_schema(type="string", maxLength=2), {"fieldX": "abc", "field": "abc"}
                    ) == ["field: Too long: may not be more than 2 bytes"]
    assert messages(field_schema(type="string", maxLength=2), {"field": "éé"}) == []


def test_min_length_and_pattern_and_only_the_first_string_failure() -> None:
    schema = field_schema(type="string", minLength=3, pattern="^[a-z]+$")
    assert messages(schema, {"field": "A"}) == [
        'field: Invalid value: "A": field in body should be at least 3 chars long']
    assert messages(schema, {"field": "ABC"}) == [
        "field: Invalid value: \"ABC\": field in body should match '^[a-z]+$'"]


def test_patterns_are_go_regular_expressions() -> None:
    # RE2: "$" is the end of the text (Python's re would accept the newline), \d is ASCII.
    assert messages(field_schema(type="string", pattern="^[a-z]+$"), {"field": "abc\n"}) == [
        "field: Invalid value: \"abc\\n\": field in body should match '^[a-z]+$'"]
    assert messages(field_schema(type="string", pattern=r"^\d+$"), {"field": "١٢"}) != []
    assert messages(field_schema(type="string", pattern=r"^\pL+$"), {"field": "héllo"}) == []


def test_an_invalid_pattern_is_reported_in_gos_words() -> None:
    # validation_test.go "invalid regex" (CRD validation refuses such patterns first).
    assert messages(field_schema(type="string", pattern="+"), {"field": "foo"}) == [
        "field: Invalid value: \"foo\": field in body should match '+, but pattern is invalid: "
        "error parsing regexp: missing argument to repetition operator: `+`'"]


# --- formats -----------------------------------------------------------------------------------
def test_date_time_format() -> None:
    schema = field_schema(type="string", format="date-time")
    for ok in ("2024-05-01T10:00:00Z", "2024-05-01t10:00:00.123+02:00"):
        assert messages(schema, {"field": ok}) == []
    assert messages(schema, {"field": "tomorrow"}) == [
        'field: Invalid value: "tomorrow": field in body must be of type date-time: '
        '"tomorrow"']
    assert messages(schema, {"field": "2023-02-29T00:00:00Z"}) != []


def test_formats_the_server_strips_constrain_nothing() -> None:
    # formats.go StripUnsupportedFormatsPostProcess: int32, int64, float, double are dropped.
    assert messages(field_schema(type="integer", format="int32"), {"field": 2**31}) == []
    assert messages(field_schema(type="string", format="no-such-format"), {"field": "x"}) == []


def test_a_format_on_a_value_of_another_kind_is_a_type_error_naming_the_format() -> None:
    assert messages(field_schema(type="string", format="date-time"), {"field": 5}) == [
        'field: Invalid value: "int64": field in body must be of type date-time: "int64"']


@pytest.mark.parametrize(("fmt", "good", "bad"), [
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123"),
    ("ipv4", "10.0.0.1", "10.0.0.256"),
    ("ipv6", "fe80::1", "fe80::1%eth0"),
    ("cidr", "10.0.0.0/8", "10.0.0.0/33"),
    ("hostname", "example.com", "-example.com"),
    ("uri", "https://example.com/x", "example.com"),
    ("email", "someone@example.com", "someone"),
    ("mac", "01:23:45:67:89:ab", "01:23:45"),
    ("date", "2024-02-29", "2023-02-29"),
    ("duration", "1h30m", "soon"),
    ("byte", "aGVsbG8=", "hello!"),
])
def test_supported_formats(fmt: str, good: str, bad: str) -> None:
    schema = field_schema(type="string", format=fmt)
    assert messages(schema, {"field": good}) == []
    assert messages(schema, {"field": bad}) == [
        f'field: Invalid value: "{bad}": field in body must be of type {fmt}: "{bad}"']


# --- numbers ----------------------------------------------------------------------------------
def test_minimum_and_maximum() -> None:
    schema = field_schema(type="integer", minimum=0, maximum=10)
    assert messages(schema, {"field": -1}) == [
        "field: Invalid value: -1: field in body should be greater than or equal to 0"]
    assert messages(schema, {"field": 11}) == [
        "field: Invalid value: 11: field in body should be less than or equal to 10"]


def test_exclusive_bounds_and_float_values() -> None:
    schema = field_schema(type="number", minimum=1, exclusiveMinimum=True, maximum=2.5,
                          exclusiveMaximum=True)
    assert messages(schema, {"field": 1}) == [
        "field: Invalid value: 1: field in body should be greater than 1"]
    assert messages(schema, {"field": 2.5}) == [
        "field: Invalid value: 2.5: field in body should be less than 2.5"]
    assert messages(field_schema(type="number", minimum=1), {"field": 0.5}) == [
        "field: Invalid value: 0.5: field in body should be greater than or equal to 1"]


def test_an_integer_value_meets_a_fractional_bound_truncated() -> None:
    # MinimumNativeType compares an int64 value with int64(minimum).
    assert messages(field_schema(type="integer", minimum=0.5), {"field": 0}) == []


def test_multiple_of() -> None:
    assert messages(field_schema(type="integer", multipleOf=5), {"field": 12}) == [
        "field: Invalid value: 12: field in body should be a multiple of 5"]
    assert messages(field_schema(type="number", multipleOf=0.5), {"field": 1.5}) == []
    assert messages(field_schema(type="number", multipleOf=0.5), {"field": 1.25}) == [
        "field: Invalid value: 1.25: field in body should be a multiple of 0.5"]


def test_float64_json_integer_matches_go_openapi_swag() -> None:
    assert is_float64_json_integer(3.0)
    assert is_float64_json_integer(5.0000000001)  # within the relative epsilon
    assert not is_float64_json_integer(-3.5)
    assert not is_float64_json_integer(0.5)
    assert not is_float64_json_integer(2.0**60)


# --- arrays and objects -------------------------------------------------------------------------
def test_items_sizes() -> None:
    schema = field_schema(type="array", minItems=1, maxItems=2, items={"type": "string"})
    assert messages(schema, {"field": []}) == [
        "field: Invalid value: 0: field in body should have at least 1 items"]
    assert messages(schema, {"field": ["a", "b", "c"]}) == [
        "field: Too many: 3: must have at most 2 items"]
    assert messages(schema, {"field": ["a", 1]}) == [
        'field[1]: Invalid value: "integer": field[1] in body must be of type string: '
        '"integer"']


def test_properties_counts() -> None:
    schema = {"type": "object", "properties": {"fieldX": {
        "type": "object", "maxProperties": 2, "minProperties": 1}}}
    assert messages(schema, {"fieldX": {"a": True, "b": True, "c": True}}) == [
        "fieldX: Too many: 3: must have at most 2 items"]
    assert messages(schema, {"fieldX": {}}) == [
        "fieldX: Invalid value: 0: fieldX in body should have at least 1 properties"]


def test_additional_properties_values_are_validated_under_their_key() -> None:
    schema = field_schema(type="object", additionalProperties={"type": "integer"})
    assert messages(schema, {"field": {"b": "x", "a": 1}}) == [
        'field.b: Invalid value: "string": field.b in body must be of type integer: "string"']


def test_status_errors_are_named_under_status_but_worded_without_it() -> None:
    schema = {"type": "object", "properties": {"phase": {"type": "string", "enum": ["A"]},
                                               "attempts": {"type": "integer"}}}
    assert messages(schema, {"phase": "B", "attempts": "x"}, root="status") == [
        'status.attempts: Invalid value: "string": attempts in body must be of type integer: '
        '"string"',
        'status.phase: Unsupported value: "B": supported values: "A"']


def test_siblings_are_reported_in_name_order() -> None:
    schema = {"type": "object", "properties": {
        name: {"type": "integer"} for name in ("zeta", "alpha", "mid")}}
    assert [error.field for error in schema_errors(
        schema, {"zeta": "x", "alpha": "x", "mid": "x"})] == ["alpha", "mid", "zeta"]


# --- ratcheting ---------------------------------------------------------------------------------
MEDIUM: dict[str, Any] = {"type": "number", "minimum": 50, "maximum": 10000}
OBJECT: dict[str, Any] = {"type": "object", "properties": {
    "small": {"type": "number", "maximum": 50},
    "medium": MEDIUM}}
NESTED = {"type": "object", "properties": {"nested": OBJECT}}


def ratcheted(schema: dict[str, Any], new: Any, old: Any) -> list[str]:
    return messages(schema, new, old=old, ratchet=True)


def test_an_unchanged_invalid_value_is_let_through_a_changed_one_is_not() -> None:
    # ratcheting_test.go TestScalarRatcheting, TestObject*FieldsRatcheting.
    assert ratcheted(MEDIUM, 1, 1) == []
    assert ratcheted(MEDIUM, 1, 2) != []
    assert ratcheted(OBJECT, {"small": 500}, {"small": 500}) == []
    assert ratcheted(OBJECT, {"small": 501}, {"small": 501, "medium": 500}) == []
    assert ratcheted(OBJECT, {"small": 500}, {"small": 501}) == [
        "small: Invalid value: 500: small in body should be less than or equal to 50"]
    assert ratcheted(NESTED, {"nested": {"small": 501}},
                     {"nested": {"small": 501, "medium": 500}}) == []
    assert ratcheted(NESTED, {"nested": {"small": 500}}, {"nested": {"small": 501}}) != []


def test_without_ratcheting_unchanged_values_are_still_errors() -> None:
    assert messages(OBJECT, {"small": 500}, old={"small": 500}) != []


def test_items_of_map_lists_ratchet_by_key_other_lists_as_a_whole() -> None:
    item = {"type": "object", "properties": {"k": {"type": "string"},
                                             "v": {"type": "integer", "maximum": 1}}}
    keyed = {"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
        "items": item}}}
    old = {"l": [{"k": "a", "v": 5}, {"k": "b", "v": 0}]}
    # Reordered, one new valid item: the invalid "a" is unchanged, so it ratchets.
    assert ratcheted(keyed, {"l": [{"k": "c", "v": 0}, {"k": "a", "v": 5}]}, old) == []
    atomic = {"type": "object", "properties": {"l": {"type": "array", "items": item}}}
    assert ratcheted(atomic, {"l": [{"k": "c", "v": 0}, {"k": "a", "v": 5}]}, old) == [
        "l[1].v: Invalid value: 5: l[1].v in body should be less than or equal to 1"]
    assert ratcheted(atomic, old, old) == []


def test_kind_and_api_version_never_ratchet_on_their_own() -> None:
    schema = {"type": "object", "properties": {"kind": {"type": "string", "enum": ["A"]},
                                               "spec": {"type": "string"}}}
    assert ratcheted(schema, {"kind": "B", "spec": "new"}, {"kind": "B", "spec": "old"}) == [
        'kind: Unsupported value: "B": supported values: "A"']
    # An object unchanged as a whole ratchets at its root, kind included.
    assert ratcheted(schema, {"kind": "B", "spec": "x"}, {"kind": "B", "spec": "x"}) == []


def test_preserved_unknown_content_never_counts_as_unchanged() -> None:
    # CorrelatedObject.Key finds no schema for an undeclared key, so the node differs.
    schema = {"type": "object", "properties": {"free": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True, "maxProperties": 0}}}
    assert ratcheted(schema, {"free": {"a": 1}}, {"free": {"a": 1}}) == [
        "free: Too many: 1: must have at most 0 items"]
