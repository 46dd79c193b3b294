"""A CustomResourceDefinition body is decoded as the API server decodes it: into the Go type
apiextensions.k8s.io/v1 CustomResourceDefinition, before defaulting and validation.

Wrong types are 400s worded by sigs.k8s.io/json (decode.go ``UnmarshalTypeError``,
``addErrorContext``); unknown fields are strict decoding errors (kubernetes_patch.go
``strictFieldStack``) that ``fieldValidation`` turns into a 400 or warnings; the schema
wrappers and ``JSON`` decode as apiextensions-apiserver v0.32.9
pkg/apis/apiextensions/v1/marshal.go says.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from crdval_helpers import widget_crd
from headwater_dev.apiextensions.registry import (
    CRD_RESOURCE,
    CustomResourceDefinitionStrategy,
)
from headwater_dev.apiextensions.strategy import CustomResourceStrategy
from headwater_dev.builtins import decode, decode_error_message, schema_errors
from headwater_dev.resources import BUILTIN_RESOURCES, kopf_peering_crds
from headwater_dev.store import ApiError, ObjectStore
from headwater_dev.strategies import WriteOptions
from headwater_operator import k8sopenapi

CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
PODS = ("", "v1", "pods")
REPO = Path(__file__).resolve().parents[3]
CRD_FILES = sorted((REPO / "crds").glob("*.yaml")) + sorted(
    (REPO / "charts" / "headwater" / "files" / "crds").glob("*.yaml"))
CANNOT = 'CustomResourceDefinition in version "v1" cannot be handled as a ' \
         "CustomResourceDefinition: "
SPEC_SCHEMA = "spec.versions[0].schema.openAPIV3Schema.properties.spec"


def crd_with_spec(**spec_schema: Any) -> dict[str, Any]:
    """The widget CRD, its ``spec`` property schema extended by ``spec_schema``."""
    crd = widget_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].update(
        spec_schema)
    return crd


def spec_schema(obj: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]
    return schema


def crd_store() -> ObjectStore:
    store = ObjectStore([*BUILTIN_RESOURCES])
    store.add_resource(CRD_RESOURCE, CustomResourceDefinitionStrategy(
        CRD_RESOURCE, strategy_for=CustomResourceStrategy))
    return store


def test_the_crd_kind_has_its_pinned_definition() -> None:
    assert k8sopenapi.definition_name(CRDS) == (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition")
    assert k8sopenapi.kind_of(CRDS) == "CustomResourceDefinition"


# --- unknown fields ----------------------------------------------------------------------------
def test_examples_in_a_property_schema_is_an_unknown_field_named_by_its_path() -> None:
    decoded = decode(CRDS, crd_with_spec(examples=[{"size": 1}]))
    assert decoded.error is None
    assert decoded.unknown == (f"{SPEC_SCHEMA}.examples",)
    assert "examples" not in spec_schema(decoded.obj)


def test_defs_at_the_root_and_a_typo_in_the_spec_are_unknown_fields() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["$defs"] = {"a": {}}
    crd["spec"]["versions"][0]["servd"] = True
    crd["spec"]["scop"] = "Cluster"
    assert decode(CRDS, crd).unknown == (
        "spec.versions[0].schema.openAPIV3Schema.$defs", "spec.versions[0].servd",
        "spec.scop")


def test_the_empty_status_subresource_struct_has_no_fields() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["subresources"]["status"] = {"enabled": True}
    assert decode(CRDS, crd).unknown == ("spec.versions[0].subresources.status.enabled",)


def test_inside_a_schema_wrapper_unknown_fields_are_dropped_unreported() -> None:
    # JSONSchemaPropsOrArray/OrBool decode their schema with the plain json.Unmarshal.
    crd = crd_with_spec(
        type="array", properties=None,
        items={"type": "object", "examples": [1], "additionalProperties": {
            "type": "string", "examples": ["a"]}})
    decoded = decode(CRDS, crd)
    assert (decoded.error, decoded.unknown) == (None, ())
    assert spec_schema(decoded.obj)["items"] == {
        "type": "object", "additionalProperties": {"type": "string"}}


def test_only_the_duplicates_the_strict_decoder_sees_are_reported() -> None:
    crd = crd_with_spec(default={"a": 1}, items={"type": "string"}, bogus={"x": 1})
    duplicates = [f"{SPEC_SCHEMA}.type", f"{SPEC_SCHEMA}.default.a", f"{SPEC_SCHEMA}.items.type",
                  f"{SPEC_SCHEMA}.bogus", f"{SPEC_SCHEMA}.bogus.x", f"{SPEC_SCHEMA}.default"]
    assert decode(CRDS, crd).seen_duplicates(duplicates) == [
        f"{SPEC_SCHEMA}.type", f"{SPEC_SCHEMA}.default"]


# --- values that decode ------------------------------------------------------------------------
def test_free_form_values_decode() -> None:
    crd = crd_with_spec(
        default={"size": 3, "nested": [1, "two", None, {"x": True}]},
        example=[1, 2], enum=[{"size": 1}, "x", 2, None, True],
        additionalProperties=True)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"] = {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        "additionalProperties": False}
    decoded = decode(CRDS, crd)
    assert (decoded.error, decoded.unknown) == (None, ())
    assert decoded.obj == crd


def test_schema_wrappers_take_what_their_go_decoders_take() -> None:
    for items in ({"type": "string"}, [{"type": "string"}, {"type": "integer"}]):
        assert decode(CRDS, crd_with_spec(type="array", items=items)).obj == crd_with_spec(
            type="array", items=items)
    # Anything else is an empty JSONSchemaPropsOrArray, which encodes as null.
    decoded = decode(CRDS, crd_with_spec(type="array", items="string"))
    assert decoded.error is None
    assert spec_schema(decoded.obj)["items"] is None
    dependencies = {"a": ["b", "c"], "d": {"required": ["e"]}, "f": 7}
    decoded = decode(CRDS, crd_with_spec(dependencies=dependencies))
    assert spec_schema(decoded.obj)["dependencies"] == {
        "a": ["b", "c"], "d": {"required": ["e"]}, "f": None}


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_headwater_crds_decode_unchanged(path: Path) -> None:
    crd = yaml.safe_load(path.read_text())
    decoded = decode(CRDS, crd)
    assert (decoded.error, decoded.unknown) == (None, ())
    assert decoded.obj == crd


def test_kopf_peering_crds_decode_unchanged() -> None:
    for crd in kopf_peering_crds():
        decoded = decode(CRDS, crd)
        assert (decoded.error, decoded.unknown, decoded.obj) == (None, (), crd)


# --- type errors -------------------------------------------------------------------------------
def test_a_string_for_served_is_a_bad_request() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["served"] = "true"
    assert decode_error_message(CRDS, crd) == CANNOT + (
        "json: cannot unmarshal string into Go struct field "
        "CustomResourceDefinitionVersion.spec.versions.served of type bool")


def test_named_go_types_are_named() -> None:
    crd = widget_crd(scope=1)
    assert schema_errors(CRDS, crd) == [
        "json: cannot unmarshal number into Go struct field "
        "CustomResourceDefinitionSpec.spec.scope of type v1.ResourceScope"]
    crd = crd_with_spec(**{"x-kubernetes-validations": {"rule": "true"}})
    assert schema_errors(CRDS, crd) == [
        "json: cannot unmarshal object into Go struct field JSONSchemaProps.spec.versions."
        "schema.openAPIV3Schema.properties.x-kubernetes-validations of type "
        "v1.ValidationRules"]


def test_a_property_that_is_not_a_schema_names_the_map_not_the_key() -> None:
    # The message a real 1.32 server gives for `properties: {spec: string}`.
    crd = widget_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = "string"
    assert schema_errors(CRDS, crd) == [
        "json: cannot unmarshal string into Go struct field JSONSchemaProps.spec.versions."
        "schema.openAPIV3Schema.properties of type v1.JSONSchemaProps"]


def test_an_error_inside_a_schema_wrapper_takes_the_wrappers_place() -> None:
    # The nested json.Unmarshal's UnmarshalTypeError gets the outer decoder's context.
    crd = crd_with_spec(type="array", items={"type": "object", "properties": {
        "x": {"maxLength": "5"}}})
    assert decode(CRDS, crd).error == (
        "json: cannot unmarshal string into Go struct field JSONSchemaProps.spec.versions."
        "schema.openAPIV3Schema.properties.items of type int64")
    crd = crd_with_spec(type="array", items=[{"type": "string"}, "integer"])
    assert decode(CRDS, crd).error == (
        "json: cannot unmarshal string into Go struct field JSONSchemaProps.spec.versions."
        "schema.openAPIV3Schema.properties.items of type v1.JSONSchemaProps")
    crd = crd_with_spec(dependencies={"a": ["b", 1]})
    assert decode(CRDS, crd).error == (
        "json: cannot unmarshal number into Go struct field JSONSchemaProps.spec.versions."
        "schema.openAPIV3Schema.properties.dependencies of type string")


def test_additional_properties_takes_a_boolean_or_a_schema_only() -> None:
    for value in ("true", 1, ["string"]):
        assert decode(CRDS, crd_with_spec(additionalProperties=value)).error == (
            "boolean or JSON schema expected")


def test_a_stopping_error_wins_over_an_earlier_type_error() -> None:
    crd = crd_with_spec(additionalProperties="no")
    crd["spec"]["group"] = 5
    assert schema_errors(CRDS, crd)[0] == "boolean or JSON schema expected"


def test_int_or_string_and_time_errors_get_the_field_context() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "i", "livenessProbe": {"httpGet": {"port": True}}}]}}
    assert schema_errors(PODS, pod) == [
        "json: cannot unmarshal bool into Go struct field HTTPGetAction.spec.containers."
        "livenessProbe.httpGet.port of type int32"]
    pod = {"metadata": {"name": "p", "creationTimestamp": 5}}
    assert schema_errors(PODS, pod) == [
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata."
        "creationTimestamp of type string"]


# --- the CRD strategy --------------------------------------------------------------------------
def test_strict_refuses_and_warn_warns_and_drops_an_unknown_field() -> None:
    store = crd_store()
    crd = crd_with_spec(examples=[{"size": 1}])
    with pytest.raises(ApiError) as refused:
        store.create(CRD_RESOURCE, None, copy.deepcopy(crd),
                     WriteOptions(field_validation="Strict"))
    assert (refused.value.code, refused.value.reason) == (400, "BadRequest")
    assert refused.value.message == CANNOT + (
        f'strict decoding error: unknown field "{SPEC_SCHEMA}.examples"')
    options = WriteOptions(field_validation="Warn")
    created = store.create(CRD_RESOURCE, None, copy.deepcopy(crd), options)
    assert options.warnings == [f'unknown field "{SPEC_SCHEMA}.examples"']
    assert "examples" not in spec_schema(created)


def test_a_type_error_comes_before_defaulting_and_validation() -> None:
    crd = widget_crd(group="no-dot")
    crd["spec"]["versions"][0]["served"] = "yes"
    with pytest.raises(ApiError) as refused:
        crd_store().create(CRD_RESOURCE, None, crd, WriteOptions(field_validation="Ignore"))
    assert (refused.value.code, refused.value.message) == (400, CANNOT + (
        "json: cannot unmarshal string into Go struct field "
        "CustomResourceDefinitionVersion.spec.versions.served of type bool"))


def test_updates_are_decoded_too() -> None:
    store = crd_store()
    store.create(CRD_RESOURCE, None, widget_crd())
    changed = copy.deepcopy(store.get(CRD_RESOURCE, None, "widgets.example.com"))
    spec_schema(changed)["examples"] = []
    options = WriteOptions(field_validation="Warn")
    updated = store.replace(CRD_RESOURCE, None, "widgets.example.com", changed,
                            options=options)
    assert options.warnings == [f'unknown field "{SPEC_SCHEMA}.examples"']
    assert "examples" not in spec_schema(updated)
