"""CRD-side CEL checks (headwater_dev.cel.schema_rule_errors) against Kubernetes 1.32 wording.

Evidence for the messages:
* the rule struct as bad value, and the compile error layout: cluster-api's
  internal/controllers/clusterclass tests pin Kubernetes' output, e.g.
  ``...x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{
  Rule:"ip(self).family() == 6", Message:"", MessageExpression:"", Reason:(*apiextensions.
  FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}: compilation
  failed: ERROR: <input>:1:3: undeclared reference to 'ip' (in container '')\\n | ...``;
* Kubernetes' CRD docs ("Validation rules"): ``compilation failed: ERROR: <input>:1:6:
  found no matching overload for '_==_' applied to '(int, bool)'`` and ``undefined field``;
* apiextensions-apiserver v0.32.9 pkg/apis/apiextensions/validation/validation.go for the
  other details (cost, oldSelf, optionalOldSelf, reason, fieldPath).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_dev.cel import check_schema_rules, schema_rule_errors

ROOT = "spec.versions[0].schema.openAPIV3Schema"
SPEC = f"{ROOT}.properties[spec]"
NIL_RULE = ("apiextensions.ValidationRule{{Rule:{rule}, Message:\"\", MessageExpression:{expr}, "
            "Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", "
            "OptionalOldSelf:(*bool)(nil)}}")


def schema(*rules: dict[str, Any], **spec_props: Any) -> dict[str, Any]:
    props = {"replicas": {"type": "integer"}, "name": {"type": "string"},
             "items": {"type": "array", "items": {"type": "string"}}}
    props.update(spec_props)
    return {"type": "object", "properties": {"spec": {
        "type": "object", "properties": props, "x-kubernetes-validations": list(rules)}}}


def messages(s: dict[str, Any]) -> list[str]:
    return [e.message() for e in schema_rule_errors(s, ROOT)]


def test_undefined_field_is_worded_as_cel_go() -> None:
    assert messages(schema({"rule": "self.nonexistent > 0"})) == [
        f"{SPEC}.x-kubernetes-validations[0].rule: Invalid value: "
        + NIL_RULE.format(rule='"self.nonexistent > 0"', expr='""')
        + ": compilation failed: ERROR: <input>:1:5: undefined field 'nonexistent'\n"
        " | self.nonexistent > 0\n | ....^"]


def test_type_mismatch_is_no_matching_overload() -> None:
    errors = schema_rule_errors(schema({"rule": "self.replicas == true"}), ROOT)
    assert [e.type.value for e in errors] == ["FieldValueInvalid"]
    assert errors[0].detail == (
        "compilation failed: ERROR: <input>:1:15: found no matching overload for '_==_' "
        "applied to '(int, bool)'\n | self.replicas == true\n | ..............^")


def test_undeclared_function_reports_every_error_in_cel_go_order() -> None:
    errors = schema_rule_errors(schema({"rule": "foo(self).bar() == 6"}), ROOT)
    assert errors[0].detail == (
        "compilation failed: ERROR: <input>:1:4: undeclared reference to 'foo' (in container '')"
        "\n | foo(self).bar() == 6\n | ...^\n"
        "ERROR: <input>:1:14: undeclared reference to 'bar' (in container '')"
        "\n | foo(self).bar() == 6\n | .............^")


def test_syntax_error_matches_cluster_api_pinned_output() -> None:
    expr = "'Expected integer greater or equal to 1, got ' + this does not compile"
    s = {"type": "integer", "x-kubernetes-validations": [
        {"rule": "self >= 1", "messageExpression": expr}]}
    errors = schema_rule_errors(s, "schema.openAPIV3Schema")
    assert [e.message() for e in errors] == [
        "schema.openAPIV3Schema.x-kubernetes-validations[0].messageExpression: Invalid value: "
        'apiextensions.ValidationRule{Rule:"self >= 1", Message:"", MessageExpression:'
        "\"'Expected integer greater or equal to 1, got ' + this does not compile\", "
        "Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", "
        "OptionalOldSelf:(*bool)(nil)}: messageExpression compilation failed: ERROR: "
        "<input>:1:55: Syntax error: mismatched input 'does' expecting <EOF>\n | " + expr
        + "\n | " + "." * 54 + "^"]


def test_rule_must_be_bool_and_message_expression_a_string() -> None:
    assert [e.detail for e in schema_rule_errors(schema({"rule": "self.replicas"}), ROOT)] == [
        "cel expression must evaluate to a bool"]
    errors = schema_rule_errors(schema({"rule": "self.replicas > 0", "messageExpression": "1"}),
                                ROOT)
    assert [(e.field, e.detail) for e in errors] == [
        (f"{SPEC}.x-kubernetes-validations[0].messageExpression",
         "messageExpression must evaluate to a string")]


def test_ast_validators_of_kubernetes_1_29() -> None:
    details = [e.detail for e in schema_rule_errors(schema(
        {"rule": "self.name.matches('[')"}, {"rule": "duration('1x') > duration('1s')"},
        {"rule": "[1, 'a'].size() > 0"}), ROOT)]
    assert details == [
        "compilation failed: ERROR: <input>:1:19: invalid matches argument\n"
        " | self.name.matches('[')\n | ..................^",
        "compilation failed: ERROR: <input>:1:10: invalid duration argument\n"
        " | duration('1x') > duration('1s')\n | .........^",
        "compilation failed: ERROR: <input>:1:5: expected type 'int' but found 'string'\n"
        " | [1, 'a'].size() > 0\n | ....^"]


def test_transition_rule_under_an_atomic_list_is_refused() -> None:
    s = schema(things={"type": "array", "maxItems": 10, "items": {
        "type": "object", "properties": {"a": {"type": "string", "maxLength": 10}},
        "x-kubernetes-validations": [{"rule": "self.a == oldSelf.a"}]}})
    assert messages(s) == [
        f"{SPEC}.properties[things].items.x-kubernetes-validations[0].rule: Invalid value: "
        '"self.a == oldSelf.a": oldSelf cannot be used on the uncorrelatable portion of the '
        f"schema within {SPEC}.properties[things]"]


def test_transition_rule_under_a_map_list_is_allowed() -> None:
    s = schema(things={"type": "array", "x-kubernetes-list-type": "map", "maxItems": 10,
                       "x-kubernetes-list-map-keys": ["a"], "items": {
                           "type": "object", "required": ["a"],
                           "properties": {"a": {"type": "string", "maxLength": 10}},
                           "x-kubernetes-validations": [{"rule": "self.a == oldSelf.a"}]}})
    assert messages(s) == []


def test_optional_old_self_without_old_self() -> None:
    assert messages(schema({"rule": "self.replicas > 0", "optionalOldSelf": False})) == [
        f"{SPEC}.x-kubernetes-validations[0].optionalOldSelf: Invalid value: false: "
        "may not be set if oldSelf is not used in rule"]
    assert messages(schema({"rule": "oldSelf.hasValue() || self.replicas > 0",
                            "optionalOldSelf": True})) == []


def test_reason_and_field_path_are_schema_errors() -> None:
    assert messages(schema({"rule": "self.replicas > 0", "reason": "Bad",
                            "fieldPath": ".nope"})) == [
        f'{SPEC}.x-kubernetes-validations[0].reason: Unsupported value: "Bad": supported values: '
        '"FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"',
        f'{SPEC}.x-kubernetes-validations[0].fieldPath: Invalid value: ".nope": '
        "fieldPath must be a valid path"]


def test_a_schema_error_stops_compilation_of_the_node() -> None:
    # validation.go: CEL is only compiled where no schema error was found at or below.
    result = check_schema_rules(schema({"rule": "self.nonexistent > 0", "reason": "Bad"}), ROOT)
    assert [e.field for e in result.schema] == [f"{SPEC}.x-kubernetes-validations[0].reason"]
    assert result.cel == []


@pytest.mark.parametrize(("rule", "message"), [
    ({"rule": " "}, "Required value: rule is not specified"),
    ({"rule": "true", "message": " "}, 'Invalid value: " ": message must be non-empty if '
     "specified"),
    ({"rule": "true", "message": "a\nb"}, 'Invalid value: "a\\nb": message must not contain '
     "line breaks"),
    ({"rule": "true &&\ntrue"}, "Required value: message must be specified if rule contains "
     "line breaks"),
])
def test_rule_text_and_message(rule: dict[str, Any], message: str) -> None:
    assert [e.body() for e in schema_rule_errors(schema(rule), ROOT)] == [message]


def test_cost_of_unbounded_list_of_unbounded_strings() -> None:
    s = schema({"rule": "self.items.all(x, self.items.all(y, x == y))"})
    assert messages(s) == [
        f"{SPEC}.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget "
        "by factor of more than 100x (try simplifying the rule, or adding maxItems, "
        "maxProperties, and maxLength where arrays, maps, and strings are declared)",
        f"{SPEC}.x-kubernetes-validations[0].rule: Forbidden: contributed to estimated rule cost "
        "total exceeding cost limit for entire OpenAPIv3 schema",
        f"{ROOT}: Forbidden: x-kubernetes-validations estimated rule cost total for entire "
        "OpenAPIv3 schema exceeds budget by factor of more than 100x (try simplifying the rule, "
        "or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are "
        "declared)"]


def test_bounds_make_the_same_rule_affordable() -> None:
    bounded = {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 10}}
    assert messages(schema({"rule": "self.items.all(x, self.items.all(y, x == y))"},
                           items=bounded)) == []


def test_headwater_crds_pass() -> None:
    # Every rule of Headwater's generated CRDs compiles and is affordable on a real server.
    crds = sorted(Path(__file__).parents[3].joinpath("crds").glob("*.yaml"))
    assert crds
    for path in crds:
        crd = yaml.safe_load(path.read_text())
        for i, version in enumerate(crd["spec"]["versions"]):
            s = copy.deepcopy(version["schema"]["openAPIV3Schema"])
            where = f"spec.versions[{i}].schema.openAPIV3Schema"
            assert schema_rule_errors(s, where) == [], path.name


def test_a_root_rule_compiles_beside_a_map_of_scalars() -> None:
    # The root type holds every field, maps included (FlowRun's status.taskRuns): its
    # protobuf form must declare the map entry as protobuf names it, and keep properties
    # whose camel-cased names coincide apart, or nothing compiles.
    schema = {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.size() <= 233"}],
        "properties": {
            "metadata": {"type": "object"},
            "status": {"type": "object", "properties": {
                "taskRuns": {"type": "object", "additionalProperties": {"type": "integer"}},
                "a_b": {"type": "string"}, "aB": {"type": "string"}}},
        },
    }
    assert schema_rule_errors(schema, "spec.validation.openAPIV3Schema") == []


@pytest.mark.parametrize(("node", "rule"), [
    ({"type": "object", "maxProperties": 8, "additionalProperties": {"type": "string"}},
     "self.all(k, k.matches('^[a-z]+$'))"),
    ({"type": "object", "maxProperties": 8, "additionalProperties": {
        "type": "object", "properties": {"name": {"type": "string", "maxLength": 8}}}},
     "self.all(k, self[k].name.size() > 0)"),
    ({"type": "array", "maxItems": 8, "items": {"type": "string", "maxLength": 8}},
     "self.all(x, x != '')"),
])
def test_a_rule_on_a_map_or_list_node_ranges_over_self(node: dict[str, Any],
                                                        rule: str) -> None:
    # cel-go compiles a comprehension over `self` when `self` is a map or a list (a map
    # ranges over its keys); the emulator's checker refused it ("cannot be the range of
    # a comprehension") until `self` was declared with Type.List/Type.Map.
    assert messages(schema(field={**node, "x-kubernetes-validations": [{"rule": rule}]})) == []
