"""Pruning and the unknown fields it reports, as apiextensions-apiserver 1.32's decoder does.

Expected values come from apiextensions-apiserver v0.32.9
``pkg/apiserver/schema/pruning/algorithm_test.go`` (pruned objects and paths) and
kubernetes ``test/integration/apiserver/field_validation_test.go`` (the unknown field
paths of a strict create of a custom resource, in the server's order).
"""

from __future__ import annotations

from typing import Any

import pytest
from headwater_dev.apiextensions.pruning import (
    MalformedObjectError,
    prune,
    unknown_fields,
)

RESOURCE = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}


def resource(**fields: Any) -> dict[str, Any]:
    return {**RESOURCE, **fields}


def root(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"apiVersion": {"type": "string"},
                                             "kind": {"type": "string"},
                                             "metadata": {"type": "object"}, **properties}}


PORTS_SCHEMA = root(spec={"type": "object", "properties": {
    "cronSpec": {"type": "string"},
    "knownField1": {"type": "string"},
    "ports": {"type": "array", "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
              "items": {"type": "object", "required": ["containerPort", "protocol"],
                        "properties": {"containerPort": {"type": "integer"},
                                       "hostPort": {"type": "integer"},
                                       "name": {"type": "string"},
                                       "protocol": {"type": "string"}}}}}})


def test_unknown_fields_are_reported_sorted_as_the_strict_create_of_a_custom_resource() -> None:
    # field_validation_test.go testFieldValidationPostCRD: crdInvalidBody's unknown fields.
    obj = resource(spec={"unknown1": "val1", "unknownDupe": "valDupe2", "knownField1": "val2",
                         "ports": [{"name": "portName", "containerPort": 8080,
                                    "protocol": "TCP", "hostPort": 8082,
                                    "unknownNested": "val"}]})
    assert unknown_fields(PORTS_SCHEMA, obj) == [
        "spec.ports[0].unknownNested", "spec.unknown1", "spec.unknownDupe"]
    assert prune(PORTS_SCHEMA, obj)["spec"] == {
        "knownField1": "val2",
        "ports": [{"name": "portName", "containerPort": 8080, "protocol": "TCP",
                   "hostPort": 8082}]}


def test_items_and_objects_are_pruned_by_their_schemas() -> None:
    # algorithm_test.go "object array object".
    schema = root(spec={"type": "object", "properties": {
        "array": {"type": "array", "items": {"type": "object", "properties": {
            "a": {"type": "integer"}, "c": {"type": "integer"}}}},
        "specified": {"type": "object", "properties": {"a": {"type": "integer"},
                                                       "c": {"type": "integer"}}}}})
    spec = {"array": [{"a": 1}, {"b": 1}, {"a": 1, "b": 2, "c": 3}],
            "unspecified": {"a": 1}, "specified": {"a": 1, "b": 2, "c": 3}}
    obj = resource(spec=spec)
    assert prune(schema, obj)["spec"] == {"array": [{"a": 1}, {}, {"a": 1, "c": 3}],
                                          "specified": {"a": 1, "c": 3}}
    assert unknown_fields(schema, obj) == [
        "spec.array[1].b", "spec.array[2].b", "spec.specified.b", "spec.unspecified"]
    assert obj["spec"] is spec, "the argument is left alone"
    assert "unspecified" in spec


def test_paths_sort_as_go_strings_sort_them() -> None:
    schema = root(spec={"type": "object", "properties": {"items": {
        "type": "array", "items": {"type": "object", "properties": {}}}}})
    obj = resource(spec={"items": [{"x": i} for i in range(11)]})
    assert unknown_fields(schema, obj)[:3] == [
        "spec.items[0].x", "spec.items[10].x", "spec.items[1].x"]


def test_preserve_unknown_fields_keeps_unknown_keys_but_prunes_declared_ones() -> None:
    schema = root(spec={"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"known": {"type": "object", "properties": {
                            "a": {"type": "string"}}}}})
    obj = resource(spec={"anything": {"deep": [1, {"x": 2}]}, "known": {"a": "x", "b": 1}})
    assert prune(schema, obj)["spec"] == {"anything": {"deep": [1, {"x": 2}]},
                                          "known": {"a": "x"}}
    assert unknown_fields(schema, obj) == ["spec.known.b"]


def test_additional_properties_prune_each_value() -> None:
    schema = root(spec={"type": "object", "properties": {"limits": {
        "type": "object", "additionalProperties": {"type": "object", "properties": {
            "a": {"type": "integer"}}}}}})
    obj = resource(spec={"limits": {"x": {"a": 1, "b": 2}, "y": {}}})
    assert prune(schema, obj)["spec"] == {"limits": {"x": {"a": 1}, "y": {}}}
    assert unknown_fields(schema, obj) == ["spec.limits.x.b"]


def test_a_value_where_a_scalar_is_declared_loses_its_fields() -> None:
    # pruning.prune: an object under a schema without properties keeps no key.
    schema = root(spec={"type": "object", "properties": {"name": {"type": "string"}}})
    obj = resource(spec={"name": {"first": "a"}})
    assert prune(schema, obj)["spec"] == {"name": {}}
    assert unknown_fields(schema, obj) == ["spec.name.first"]


def test_root_type_meta_and_undeclared_top_level_fields() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object"}}}
    obj = resource(spec={}, extra=1)
    assert prune(schema, obj) == {**RESOURCE, "spec": {}}
    assert unknown_fields(schema, obj) == ["extra"]


def test_nested_metadata_that_is_not_an_embedded_resource_is_pruned_like_any_field() -> None:
    schema = root(spec={"type": "object", "properties": {}})
    obj = resource(spec={"metadata": {"name": "x"}, "kind": "K"})
    assert prune(schema, obj)["spec"] == {}
    assert unknown_fields(schema, obj) == ["spec.kind", "spec.metadata"]


def test_root_metadata_round_trips_through_object_meta() -> None:
    obj = {**RESOURCE, "metadata": {"name": "w", "labels": {}, "namespace": "",
                                    "creationTimestamp": "2024-05-01T12:00:00.5+02:00",
                                    "ownerReferences": [{"name": "o", "extra": 1}],
                                    "clusterName": "x"}}
    assert prune(root(), obj)["metadata"] == {
        "name": "w", "creationTimestamp": "2024-05-01T10:00:00Z",
        "ownerReferences": [{"apiVersion": "", "kind": "", "name": "o", "uid": ""}]}
    assert unknown_fields(root(), obj) == ["metadata.clusterName",
                                           "metadata.ownerReferences[0].extra"]


def test_malformed_root_metadata_is_a_decode_error_in_gos_words() -> None:
    with pytest.raises(MalformedObjectError) as refused:
        prune(root(), {**RESOURCE, "metadata": {"name": "w", "labels": {"a": 1}}})
    assert str(refused.value) == (
        "json: cannot unmarshal number into Go struct field ObjectMeta.labels of type string")
    with pytest.raises(MalformedObjectError) as refused:
        prune(root(), {**RESOURCE, "metadata": {"generation": 1.5}})
    assert str(refused.value) == ("json: cannot unmarshal number 1.5 into Go struct field "
                                  "ObjectMeta.generation of type int64")
    with pytest.raises(MalformedObjectError) as refused:
        prune(root(), {**RESOURCE, "metadata": {"creationTimestamp": "tomorrow"}})
    assert str(refused.value) == (
        'parsing time "tomorrow" as "2006-01-02T15:04:05Z07:00": cannot parse "tomorrow" '
        'as "2006"')


EMBEDDED = root(spec={"type": "object", "properties": {"template": {
    "type": "object", "x-kubernetes-embedded-resource": True,
    "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}}})


def test_embedded_resources_keep_type_meta_and_prune_their_metadata_to_object_meta() -> None:
    obj = resource(spec={"template": {"apiVersion": "v1", "kind": "Pod",
                                      "metadata": {"name": "p", "bogus": 1, "labels": {}},
                                      "spec": {"a": "x", "b": "y"}, "other": 1}})
    assert prune(EMBEDDED, obj)["spec"] == {"template": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": "x"}}}
    # Pruning's own paths first (sorted), then those of the embedded metadata.
    assert unknown_fields(EMBEDDED, obj) == [
        "spec.template.other", "spec.template.spec.b", "spec.template.metadata.bogus"]


def test_an_embedded_kind_that_is_not_a_string_is_refused() -> None:
    obj = resource(spec={"template": {"apiVersion": "v1", "kind": 5}})
    with pytest.raises(MalformedObjectError) as refused:
        prune(EMBEDDED, obj)
    assert str(refused.value) == "spec.template.kind: Invalid value: 5: must be a string"


def test_nulls_the_schema_cannot_hold_are_dropped_unless_a_default_replaces_them() -> None:
    schema = root(spec={"type": "object", "properties": {
        "plain": {"type": "string"},
        "allowed": {"type": "string", "nullable": True},
        "defaulted": {"type": "string", "default": "x"},
        "list": {"type": "array", "items": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}})
    obj = resource(spec={"plain": None, "allowed": None, "defaulted": None, "list": [None],
                         "free": {"x": None}})
    assert prune(schema, obj)["spec"] == {"allowed": None, "defaulted": None, "list": [None],
                                          "free": {"x": None}}
    assert unknown_fields(schema, obj) == []


def test_without_a_schema_nothing_is_pruned() -> None:
    obj = resource(spec={"x": 1})
    assert prune(None, obj) == obj
    assert unknown_fields(None, obj) == []
