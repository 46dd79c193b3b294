"""CR-side CEL rule evaluation (headwater_dev.cel.rule_violations) against Kubernetes 1.32.

Evidence: apiextensions-apiserver v0.32.9 pkg/apiserver/schema/cel/validation_test.go
(errors read ``root.foo: Invalid value: "string": gotta be baz`` — the bad value is the
schema's type; runtime errors "no such key: c", "index out of bounds: 100") and
validation.go (``failed rule: <rule>``, ``<err> evaluating rule: <rule>``, reasons).
"""

from __future__ import annotations

from typing import Any

from headwater_dev.cel import rule_violations


def crd_schema(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"replicas": {"type": "integer"}, "name": {"type": "string"},
                             "ports": {"type": "array", "items": {
                                 "type": "integer",
                                 "x-kubernetes-validations": [{"rule": "self > 0",
                                                               "message": "must be positive"}]}}}
    props.update(extra)
    return {"type": "object", "properties": {"spec": {
        "type": "object", "properties": props, "x-kubernetes-validations": list(rules)}}}


def messages(schema: dict[str, Any], new: dict[str, Any], old: dict[str, Any] | None = None
             ) -> list[str]:
    return [e.message() for e in rule_violations(schema, new, old)]


def test_plain_rule_default_message() -> None:
    s = crd_schema({"rule": "self.replicas <= 5"})
    assert messages(s, {"spec": {"replicas": 7}}) == [
        'spec: Invalid value: "object": failed rule: self.replicas <= 5']
    assert messages(s, {"spec": {"replicas": 3}}) == []


def test_missing_field_is_a_runtime_error() -> None:
    s = crd_schema({"rule": "self.replicas <= 5", "message": "at most 5"})
    assert messages(s, {"spec": {}}) == [
        'spec: Invalid value: "object": no such key: replicas evaluating rule: at most 5']


def test_index_out_of_bounds() -> None:
    s = crd_schema({"rule": "self.ports[3] > 0"})
    assert messages(s, {"spec": {"ports": [1]}}) == [
        'spec: Invalid value: "object": index out of bounds: 3 evaluating rule: self.ports[3] > 0']


def test_list_items_report_their_index() -> None:
    assert messages(crd_schema(), {"spec": {"ports": [1, -2, 3, 0]}}) == [
        'spec.ports[1]: Invalid value: "integer": must be positive',
        'spec.ports[3]: Invalid value: "integer": must be positive']


def test_transition_rule_runs_only_on_update() -> None:
    s = crd_schema({"rule": "self.name == oldSelf.name", "message": "name is immutable"})
    assert messages(s, {"spec": {"name": "b"}}) == []
    assert messages(s, {"spec": {"name": "b"}}, {"spec": {"name": "a"}}) == [
        'spec: Invalid value: "object": name is immutable']


def test_optional_old_self_runs_on_create() -> None:
    s = crd_schema({"rule": "!oldSelf.hasValue() || self.name == oldSelf.value().name",
                    "optionalOldSelf": True, "message": "name is immutable"})
    assert messages(s, {"spec": {"name": "b"}}) == []
    assert messages(s, {"spec": {"name": "b"}}, {"spec": {"name": "a"}}) == [
        'spec: Invalid value: "object": name is immutable']


def test_message_expression() -> None:
    s = crd_schema({"rule": "self.replicas <= 5",
                    "messageExpression": "'replicas ' + string(self.replicas) + ' > 5'"})
    assert messages(s, {"spec": {"replicas": 9}}) == [
        'spec: Invalid value: "object": replicas 9 > 5']


def test_reason_and_field_path() -> None:
    s = crd_schema({"rule": "self.name.size() < 3", "reason": "FieldValueForbidden",
                    "fieldPath": ".name", "message": "name too long"},
                   {"rule": "self.replicas < 3", "reason": "FieldValueDuplicate"},
                   {"rule": "has(self.name)", "reason": "FieldValueRequired",
                    "fieldPath": ".name", "message": "name is required"})
    errors = rule_violations(s, {"spec": {"name": "abcd", "replicas": 4}}, None)
    assert [(e.field, e.type.value, e.body()) for e in errors] == [
        ("spec.name", "FieldValueForbidden", "Forbidden: name too long"),
        ("spec", "FieldValueDuplicate", 'Duplicate value: "object"')]


def test_root_rules_report_at_nil_path() -> None:
    s = {"type": "object", "x-kubernetes-validations": [
        {"rule": "self.metadata.name.size() <= 3", "message": "short names"}],
         "properties": {"metadata": {"type": "object"}}}
    assert messages(s, {"metadata": {"name": "abcd"}}) == [
        '<nil>: Invalid value: "object": short names']


def test_ratcheting_unchanged_values() -> None:
    s = crd_schema({"rule": "self.replicas <= 5"})
    old = {"spec": {"replicas": 7}}
    assert messages(s, {"spec": {"replicas": 7}}, old) == []
    assert messages(s, {"spec": {"replicas": 8}}, old) == [
        'spec: Invalid value: "object": failed rule: self.replicas <= 5']


def test_set_lists_compare_without_order() -> None:
    s = crd_schema({"rule": "self.tags == oldSelf.tags", "message": "immutable"},
                   tags={"type": "array", "x-kubernetes-list-type": "set",
                         "items": {"type": "string"}})
    assert messages(s, {"spec": {"tags": ["b", "a"]}}, {"spec": {"tags": ["a", "b"]}}) == []


def test_runtime_cost_limit() -> None:
    s = crd_schema({"rule": "self.big.all(x, self.big.all(y, x == y || true))"},
                   big={"type": "array", "items": {"type": "integer"}})
    errors = messages(s, {"spec": {"big": list(range(1100))}})
    assert errors == [
        "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no "
        "further validation rules will be run due to call cost exceeds limit for rule: "
        "self.big.all(x, self.big.all(y, x == y || true))"]


def test_message_expression_reads_fields_its_rule_does_not() -> None:
    # The rule reads only self.replicas; its message reads self.name (converted on failure).
    s = crd_schema({"rule": "self.replicas <= 5",
                    "messageExpression": "'too many replicas for ' + self.name"})
    assert messages(s, {"spec": {"replicas": 7, "name": "web"}}) == [
        'spec: Invalid value: "object": too many replicas for web']


def test_rule_comparing_all_of_self_sees_every_field() -> None:
    s = crd_schema({"rule": "self == oldSelf", "message": "spec is immutable"})
    old = {"spec": {"replicas": 1, "name": "a", "ports": [1]}}
    assert messages(s, {"spec": {"replicas": 1, "name": "a", "ports": [2]}}, old) == [
        'spec: Invalid value: "object": spec is immutable']
    assert messages(s, {"spec": {"replicas": 1, "name": "a", "ports": [1]}}, old) == []


def test_a_bad_timestamp_only_fails_the_rule_that_reads_it() -> None:
    # Kubernetes converts a field when a rule reads it (UnstructuredToVal wraps lazily).
    s = crd_schema({"rule": "self.replicas <= 5"},
                   {"rule": "self.at > timestamp('2000-01-01T00:00:00Z')", "message": "late"},
                   at={"type": "string", "format": "date-time"})
    assert messages(s, {"spec": {"replicas": 3, "at": "not a time"}}) == [
        'spec: Invalid value: "object": format: date-time: invalid value not a time '
        "evaluating rule: late"]
