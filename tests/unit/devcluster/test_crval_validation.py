"""The custom resource strategy's checks, composed in Kubernetes 1.32's order.

After apiextensions-apiserver v0.32.9 ``pkg/registry/customresource/strategy.go``
(``Validate``, ``ValidateUpdate``, ``hasBlockingErr``), ``status_strategy.go``,
``validator.go`` and ``pkg/apiserver/schema/objectmeta/validation.go``.
"""

from __future__ import annotations

from typing import Any

from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions.embedded import embedded_resource_errors
from headwater_dev.apiextensions.validation import (
    RULES_NOT_CHECKED,
    has_blocking_errors,
    has_validation_rules,
    scale_errors,
    status_strategy_errors,
    status_validation_errors,
    strategy_errors,
    type_meta_errors,
    validation_errors,
)

SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
    "metadata": {"type": "object"},
    "spec": {"type": "object", "properties": {
        "size": {"type": "integer", "maximum": 3},
        "tags": {"type": "array", "items": {"type": "string"},
                 "x-kubernetes-list-type": "set"}}},
    "status": {"type": "object", "properties": {
        "phase": {"type": "string", "enum": ["Ready"]},
        "count": {"type": "integer", "minimum": 0}}}}}
GROUP, VERSION, KIND = "example.com", "v1", "Widget"


def composed(obj: dict[str, Any], old: dict[str, Any] | None = None,
             **options: Any) -> list[str]:
    """The main resource's (or, with ``old`` and ``status=True``, the status') checks."""
    if options.pop("status", False):
        assert old is not None
        return messages(status_strategy_errors(SCHEMA, obj, old, group=GROUP, version=VERSION,
                                               kind=KIND, **options))
    return messages(strategy_errors(SCHEMA, obj, old, group=GROUP, version=VERSION,
                                    kind=KIND, **options))


def widget(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            **fields}


def messages(errors: list[fe.FieldError]) -> list[str]:
    return [error.message() for error in errors]


def test_schema_then_list_types_on_create() -> None:
    obj = widget(spec={"size": 5, "tags": ["a", "a"]})
    assert messages(validation_errors(SCHEMA, obj)) == [
        "spec.size: Invalid value: 5: spec.size in body should be less than or equal to 3",
        'spec.tags[1]: Duplicate value: "a"']


def test_update_ratchets_the_schema_and_the_list_types() -> None:
    old = widget(spec={"size": 5, "tags": ["a", "a"]})
    assert validation_errors(SCHEMA, widget(spec={"size": 5, "tags": ["a", "a", "b"]}),
                             old) == []
    assert messages(validation_errors(SCHEMA, widget(spec={"size": 6, "tags": ["a", "a"]}),
                                      old)) == [
        "spec.size: Invalid value: 6: spec.size in body should be less than or equal to 3"]
    clean = widget(spec={"size": 1, "tags": ["a"]})
    assert messages(validation_errors(SCHEMA, old, clean)) == [
        "spec.size: Invalid value: 5: spec.size in body should be less than or equal to 3",
        'spec.tags[1]: Duplicate value: "a"']


def test_a_status_write_checks_the_status_schema_without_ratcheting() -> None:
    old = widget(status={"phase": "Gone"})
    assert messages(status_validation_errors(SCHEMA, widget(status={"phase": "Gone"}), old)) == [
        'status.phase: Unsupported value: "Gone": supported values: "Ready"']
    assert messages(status_validation_errors(SCHEMA, widget(status={"count": "x"}), old)) == [
        'status.count: Invalid value: "string": count in body must be of type integer: '
        '"string"']
    assert status_validation_errors(SCHEMA, widget(), old) == []


def test_type_meta_must_name_the_served_kind() -> None:
    assert messages(type_meta_errors({"kind": "Gadget", "apiVersion": "example.com/v2"},
                                     group=GROUP, version=VERSION, kind=KIND)) == [
        'kind: Invalid value: "Gadget": must be Widget',
        'apiVersion: Invalid value: "example.com/v2": must be example.com/v1']


def test_wrong_type_meta_hides_the_object_meta_and_schema_errors() -> None:
    bad_meta = [fe.required("metadata.name", "name or generateName is required")]
    obj = {**widget(spec={"size": 5}), "kind": "Gadget"}
    assert composed(obj, object_meta_errors=bad_meta) == [
        'kind: Invalid value: "Gadget": must be Widget']
    assert composed(widget(spec={"size": 5, "tags": ["x", "x"]}),
                    object_meta_errors=bad_meta) == [
        "metadata.name: Required value: name or generateName is required",
        "spec.size: Invalid value: 5: spec.size in body should be less than or equal to 3",
        'spec.tags[1]: Duplicate value: "x"']


def test_the_status_strategy_composition() -> None:
    old = widget(spec={"tags": ["x", "x"]})
    new = widget(spec={"tags": ["x", "x"]}, status={"count": -1})
    assert composed(new, old, status=True) == [
        "status.count: Invalid value: -1: count in body should be greater than or equal to 0"]


def test_blocking_errors_stop_the_cel_rules() -> None:
    assert has_blocking_errors([fe.required("spec", "")])
    assert has_blocking_errors([fe.type_invalid("spec.x", "string", "wrong type")])
    assert has_blocking_errors([fe.not_supported("spec.x", "a", ["b"])])
    assert has_blocking_errors([fe.too_long("spec.x", 3)])
    assert has_blocking_errors([fe.too_many("spec.x", 4, 3)])
    assert not has_blocking_errors([fe.invalid("spec.x", 1, "should be greater")])
    assert not has_blocking_errors([fe.duplicate("spec.x[1]", "a")])
    assert not has_blocking_errors([])
    assert RULES_NOT_CHECKED.cause() == {
        "reason": "FieldValueInvalid", "field": "<nil>",
        "message": 'Invalid value: "null": some validation rules were not checked because the '
                   "object was invalid; correct the existing errors to complete validation"}


def test_scale_paths() -> None:
    scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
             "labelSelectorPath": ".status.selector"}
    assert messages(scale_errors(widget(spec={"replicas": -1},
                                        status={"replicas": "3", "selector": 1}), scale)) == [
        # field.NewPath(specReplicasPath): the path keeps the leading dot.
        ".spec.replicas: Invalid value: -1: should be a non-negative integer",
        '.status.replicas: Invalid value: 0: .status.replicas accessor error: 3 is of the type '
        "string, expected int64",
        '.status.selector: Invalid value: "": .status.selector accessor error: 1 is of the type '
        "int64, expected string"]
    assert messages(scale_errors(widget(spec={"replicas": 2**31}), scale)) == [
        ".spec.replicas: Invalid value: 2147483648: should be less than or equal to 2147483647"]
    assert scale_errors(widget(spec={"replicas": -1}), scale, spec=False) == []


EMBEDDING = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                 "x-kubernetes-preserve-unknown-fields": True}}}}}


def test_embedded_resources_need_api_version_and_kind() -> None:
    assert messages(embedded_resource_errors(EMBEDDING, {"spec": {"template": {}}})) == [
        "spec.template.apiVersion: Required value: must not be empty",
        "spec.template.kind: Required value: must not be empty"]
    assert messages(embedded_resource_errors(EMBEDDING, {"spec": {"template": {
        "apiVersion": "a/b/c", "kind": "Bad_Kind"}}})) == [
        'spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: '
        "a/b/c",
        'spec.template.kind: Invalid value: "Bad_Kind": may have mixed case, but should '
        "otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters "
        "or '-', start with an alphabetic character, and end with an alphanumeric character "
        "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')"]
    assert embedded_resource_errors(EMBEDDING, {"spec": {"template": {
        "apiVersion": "apps/v1", "kind": "Deployment"}}}) == []


def test_embedded_metadata_goes_to_the_object_meta_rules() -> None:
    seen: list[tuple[dict[str, Any], bool, str]] = []

    def rules(meta: Any, namespaced: bool, path: str) -> list[fe.FieldError]:
        seen.append((dict(meta), namespaced, path))
        return [fe.invalid(f"{path}.name", meta["name"], "checked")]

    obj = {"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
                                 "metadata": {"namespace": "ns", "labels": {"a": "b"}}}}}
    assert messages(embedded_resource_errors(EMBEDDING, obj, object_meta_rules=rules)) == [
        'spec.template.metadata.name: Invalid value: "fakename": checked']
    assert seen == [({"name": "fakename", "namespace": "ns", "labels": {"a": "b"}}, True,
                     "spec.template.metadata")]
    bad = {"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": "x"}}}
    assert messages(embedded_resource_errors(EMBEDDING, bad)) == [
        'spec.template.metadata: Invalid value: "x": json: cannot unmarshal string into Go '
        "value of type v1.ObjectMeta"]


def test_only_a_schema_with_rules_has_a_cel_validator() -> None:
    assert not has_validation_rules(SCHEMA)
    assert not has_validation_rules(None)
    rule = [{"rule": "self.size < 3"}]
    assert has_validation_rules({**SCHEMA, "x-kubernetes-validations": rule})
    assert has_validation_rules({"type": "object", "properties": {"l": {
        "type": "array", "items": {"type": "object", "additionalProperties": {
            "type": "string", "x-kubernetes-validations": rule}}}}})
    assert not has_validation_rules({"type": "object", "anyOf": [
        {"x-kubernetes-validations": rule}]})


def test_an_embedded_resource_deep_below_plain_parts_is_still_checked() -> None:
    schema = {"type": "object", "properties": {
        "plain": {"type": "object", "properties": {"name": {"type": "string"}}},
        "templates": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "object", "x-kubernetes-embedded-resource": True}}},
    }}
    obj = {"plain": {"name": "n"}, "templates": {"web": [{"apiVersion": "v1"}]}}
    assert messages(embedded_resource_errors(schema, obj)) == [
        "templates[web][0].kind: Required value: must not be empty"]
