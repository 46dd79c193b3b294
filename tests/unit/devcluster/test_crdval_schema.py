"""CRD schema rules: structural invariants, OpenAPI keywords, topology, defaults, rules.

Expected strings come from apiextensions-apiserver v0.32.9's source literals and, where
marked, from its integration tests (test/integration/validation_test.go
TestNonStructuralSchemaConditionForCRDV1's expectedCreateErrors, which creates v1 CRDs
whose versions share one schema: hence ``spec.validation.openAPIV3Schema``).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from crdval_helpers import create_errors, widget_crd, with_schema
from headwater_dev import fielderrors as fe

ROOT = "spec.validation.openAPIV3Schema"


def _errors(schema_yaml: str, *, status: bool = False, **kwargs: Any) -> list[str]:
    return create_errors(with_schema(yaml.safe_load(schema_yaml), status=status), **kwargs)


def test_root_metadata_may_only_restrict_name_and_generate_name() -> None:
    assert _errors("""
type: object
properties:
  metadata: {type: object, description: the object's metadata}
""") == [f"{ROOT}.properties[metadata]: Forbidden: must not specify anything other than name "
         "and generateName, but metadata is implicitly specified"]
    assert _errors("""
type: object
properties:
  metadata:
    type: object
    properties:
      name: {type: string, pattern: "^[a-z]+$"}
      generateName: {type: string, pattern: "^[a-z]+$"}
""") == []


def test_metadata_in_a_value_validation_is_forbidden() -> None:
    assert _errors("""
type: object
properties:
  metadata: {type: object}
allOf:
- properties:
    metadata: {}
""") == [f"{ROOT}.allOf[0].properties[metadata]: Forbidden: must not be specified in a "
         "nested context"]


def test_missing_types_are_reported_sorted() -> None:
    # TestNonStructuralSchemaConditionForCRDV1 "missing types with extensions".
    expected = [f"{ROOT}.{suffix}" for suffix in (
        "properties[foo].properties[a].type: Required value: must not be empty for specified "
        "object fields",
        "properties[foo].type: Required value: must not be empty for specified object fields",
        "properties[int-or-string].properties[a].type: Required value: must not be empty for "
        "specified object fields",
        "properties[json].properties[a].type: Required value: must not be empty for specified "
        "object fields",
        "properties[abc].additionalProperties.properties[a].items.additionalProperties.type: "
        "Required value: must not be empty for specified object fields",
        "properties[abc].additionalProperties.properties[a].items.type: Required value: must "
        "not be empty for specified array items",
        "properties[abc].additionalProperties.properties[a].type: Required value: must not be "
        "empty for specified object fields",
        "properties[abc].additionalProperties.type: Required value: must not be empty for "
        "specified object fields",
        "properties[abc].type: Required value: must not be empty for specified object fields",
        "properties[bar].items.additionalProperties.items.type: Required value: must not be "
        "empty for specified array items",
        "properties[bar].items.additionalProperties.properties[a].type: Required value: must "
        "not be empty for specified object fields",
        "properties[bar].items.additionalProperties.type: Required value: must not be empty "
        "for specified object fields",
        "properties[bar].items.type: Required value: must not be empty for specified array "
        "items",
        "properties[bar].type: Required value: must not be empty for specified object fields",
        "type: Required value: must not be empty at the root")]
    assert _errors("""
properties:
  foo:
    properties:
      a: {}
  bar:
    items:
      additionalProperties:
        properties:
          a: {}
        items: {}
  abc:
    additionalProperties:
      properties:
        a:
          items:
            additionalProperties:
              items:
  json:
    x-kubernetes-preserve-unknown-fields: true
    properties:
      a: {}
  int-or-string:
    x-kubernetes-int-or-string: true
    properties:
      a: {}
""") == sorted(expected)


def test_arrays_need_items_and_the_root_is_an_object() -> None:
    assert _errors("""
type: object
properties:
  slice: {type: array}
""") == [f"{ROOT}.properties[slice].items: Required value: must be specified"]
    assert _errors("type: integer") == [
        f'{ROOT}.type: Invalid value: "integer": must be object at the root']
    assert _errors("""
type: object
additionalProperties: true
""") == [f"{ROOT}.additionalProperties: Forbidden: must not be used at the root"]


def test_int_or_string_patterns() -> None:
    # TestNonStructuralSchemaConditionForCRDV1 "int-or-string variants" (d) and
    # "int-or-string and preserve-unknown-fields true".
    assert _errors("""
type: object
properties:
  c:
    x-kubernetes-int-or-string: true
    allOf:
    - anyOf:
      - type: integer
      - type: string
    - pattern: abc
  d:
    x-kubernetes-int-or-string: true
    anyOf:
    - type: integer
    - type: string
      pattern: abc
""") == [f"{ROOT}.properties[d].anyOf[0].type: Forbidden: must be empty to be structural",
         f"{ROOT}.properties[d].anyOf[1].type: Forbidden: must be empty to be structural"]
    assert _errors("""
x-kubernetes-preserve-unknown-fields: true
x-kubernetes-int-or-string: true
""") == [f"{ROOT}.x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if "
         "x-kubernetes-int-or-string is true"]


def test_embedded_resources() -> None:
    # TestNonStructuralSchemaConditionForCRDV1 "embedded-resource without
    # preserve-unknown-fields" and "embedded-resource with wrong type".
    assert _errors("""
type: object
x-kubernetes-embedded-resource: true
""") == [f"{ROOT}.properties: Required value: must not be empty if "
         "x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"]
    assert _errors("""
type: array
x-kubernetes-embedded-resource: true
x-kubernetes-preserve-unknown-fields: true
""") == [f"{ROOT}.items: Required value: must be specified",
         f'{ROOT}.type: Invalid value: "array": must be object at the root',
         f'{ROOT}.type: Invalid value: "array": must be object if '
         "x-kubernetes-embedded-resource is true"]


def test_value_validations_add_checks_only() -> None:
    assert _errors("""
type: object
properties:
  a: {type: string}
allOf:
- properties:
    a: {description: words}
    b: {}
""") == [f"{ROOT}.allOf[0].properties[a].description: Forbidden: must be empty to be "
         "structural",
         f"{ROOT}.properties[b]: Required value: because it is defined in "
         f"{ROOT}.allOf[0].properties[b]"]


def test_forbidden_keywords() -> None:
    assert _errors("""
type: object
properties:
  spec: {type: object, $ref: "#/definitions/spec"}
  tags: {type: array, items: {type: string}, uniqueItems: true}
  pair: {type: array, items: [{type: string}, {type: integer}]}
""") == [f"{ROOT}.properties[pair].items: Forbidden: items must be a schema object and not an "
         "array",
         f"{ROOT}.properties[spec].$ref: Forbidden: $ref is not supported",
         f"{ROOT}.properties[tags].uniqueItems: Forbidden: uniqueItems cannot be set to true "
         "since the runtime complexity becomes quadratic"]
    assert _errors("""
type: object
definitions:
  x: {type: string}
""") == [f"{ROOT}.definitions: Forbidden: definitions is not supported"]
    assert _errors("""
type: object
properties:
  a: {type: "null"}
""") == [f'{ROOT}.properties[a].type: Unsupported value: "null": supported values: "array", '
         '"boolean", "integer", "number", "object", "string"',
         f"{ROOT}.properties[a].type: Forbidden: type cannot be set to null, use nullable as "
         "an alternative"]


def test_schema_keyword_shows_only_the_conversion_error() -> None:
    assert _errors("""
$schema: http://json-schema.org/draft-04/schema#
type: object
""") == [f"{ROOT}: Invalid value: \"\": OpenAPIV3Schema 'schema' is not supported"]


def test_properties_and_additional_properties_are_exclusive() -> None:
    assert _errors("""
type: object
properties:
  spec:
    type: object
    properties:
      a: {type: string}
    additionalProperties: {type: string}
  open:
    type: object
    properties:
      a: {type: string}
    additionalProperties: true
""") == [f"{ROOT}.properties[spec].additionalProperties: Forbidden: additionalProperties and "
         "properties are mutual exclusive"]


def test_preserve_unknown_fields_is_true_or_absent() -> None:
    assert _errors("""
type: object
properties:
  spec: {type: object, x-kubernetes-preserve-unknown-fields: false}
""") == [f"{ROOT}.properties[spec].x-kubernetes-preserve-unknown-fields: Invalid value: false: "
         "must be true or undefined"]


def test_list_and_map_topology() -> None:
    assert _errors("""
type: object
properties:
  ports:
    type: array
    x-kubernetes-list-type: map
    items:
      type: object
      properties:
        name: {type: string}
""") == [f"{ROOT}.properties[ports].x-kubernetes-list-map-keys: Required value: must not be "
         "empty if x-kubernetes-list-type is map"]
    assert _errors("""
type: object
properties:
  ports:
    type: array
    x-kubernetes-list-type: map
    x-kubernetes-list-map-keys: [name, port]
    items:
      type: object
      properties:
        name: {type: string}
      required: [name]
""") == [f"{ROOT}.properties[ports].x-kubernetes-list-map-keys: Invalid value: "
         '[]string{"name", "port"}: entries must all be names of item properties']
    assert _errors("""
type: object
properties:
  ports:
    type: array
    x-kubernetes-list-type: map
    x-kubernetes-list-map-keys: [name]
    items:
      type: object
      properties:
        name: {type: string, nullable: true}
""") == [f"{ROOT}.properties[ports].items.properties[name].default: Required value: this "
         "property is in x-kubernetes-list-map-keys, so it must have a default or be a "
         "required property",
         f"{ROOT}.properties[ports].items.properties[name].nullable: Forbidden: this property "
         "is in x-kubernetes-list-map-keys, so it cannot be nullable"]
    assert _errors("""
type: object
properties:
  labels:
    type: string
    x-kubernetes-map-type: fine
    x-kubernetes-list-type: set
""") == [f'{ROOT}.properties[labels].type: Invalid value: "string": must be object if '
         "x-kubernetes-map-type is specified",
         f'{ROOT}.properties[labels].x-kubernetes-map-type: Unsupported value: "fine": '
         'supported values: "atomic", "granular"',
         f'{ROOT}.properties[labels].type: Invalid value: "string": must be array if '
         "x-kubernetes-list-type is specified"]


def test_set_items_must_be_atomic() -> None:
    assert _errors("""
type: object
properties:
  pairs:
    type: array
    x-kubernetes-list-type: set
    items: {type: object, properties: {a: {type: string}}}
""") == [f"{ROOT}.properties[pairs].items.x-kubernetes-map-type: Invalid value: \"null\": must be "
         "atomic as item of a list with x-kubernetes-list-type=set"]


def test_nullable_root_and_status_subresource_root() -> None:
    assert _errors("""
type: object
nullable: true
""") == [f"{ROOT}.nullable: Forbidden: nullable cannot be true at the root"]
    errors = _errors("""
type: object
properties:
  spec: {type: object}
anyOf:
- required: [spec]
""", status=True)
    assert len(errors) == 1
    assert errors[0].startswith(
        f"{ROOT}: Invalid value: apiextensions.JSONSchemaProps{{ID:\"\", Schema:\"\", "
        'Ref:(*string)(nil), Description:"", Type:"object", Nullable:false, Format:"", ')
    assert ('AnyOf:[]apiextensions.JSONSchemaProps{apiextensions.JSONSchemaProps{ID:""' in
            errors[0])
    assert errors[0].endswith(
        "XValidations:apiextensions.ValidationRules(nil)}: only [Description Type Format Title "
        "Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern "
        "MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs "
        "Example XPreserveUnknownFields XValidations] fields are allowed at the root of the "
        "schema if the status subresource is enabled")


def test_patterns_must_compile_as_go_regexps() -> None:
    # TestNonStructuralSchemaConditionForCRDV1's sibling "invalid regex pattern".
    assert _errors("""
type: object
properties:
  foo: {type: string, pattern: "+"}
  bar: {type: string, pattern: "^(?!x)"}
""") == [f'{ROOT}.properties[bar].pattern: Invalid value: "^(?!x)": must be a valid regular '
         "expression, but isn't: error parsing regexp: invalid or unsupported Perl syntax: "
         "`(?!`",
         f'{ROOT}.properties[foo].pattern: Invalid value: "+": must be a valid regular '
         "expression, but isn't: error parsing regexp: missing argument to repetition "
         "operator: `+`"]


def test_defaults_are_forbidden_in_top_level_metadata() -> None:
    assert _errors("""
type: object
properties:
  metadata:
    type: object
    properties:
      name: {type: string, default: widget}
""") == [f"{ROOT}.properties[metadata].properties[name].default: Forbidden: must not be set "
         "in top-level metadata"]


def test_defaults_must_be_pruned() -> None:
    assert _errors("""
type: object
properties:
  spec:
    type: object
    properties:
      a: {type: string}
    default: {a: x, b: y}
""") == [f'{ROOT}.properties[spec].default: Invalid value: map[string]interface {{}}{{"a":"x", '
         '"b":"y"}: must not have unknown fields']


def test_defaults_are_validated_against_their_schema_by_the_value_validator() -> None:
    seen: list[tuple[Any, str]] = []

    def validate_value(schema: dict[str, Any], value: Any, path: str) -> list[fe.FieldError]:
        seen.append((value, path))
        return [fe.invalid(path, value, "must be of type integer")]

    crd = with_schema(yaml.safe_load("""
type: object
properties:
  size: {type: integer, default: big}
"""))
    assert create_errors(crd, validate_value=validate_value) == [
        f'{ROOT}.properties[size].default: Invalid value: "big": must be of type integer']
    assert seen == [("big", f"{ROOT}.properties[size].default")]


def test_validation_rules_structure_and_the_cel_hook_order() -> None:
    schema = """
type: object
properties:
  spec:
    type: object
    properties:
      a: {type: string}
    x-kubernetes-validations:
    - rule: ""
    - {rule: "self.a != ''", reason: Bad}
    - {rule: "self.a != ''", fieldPath: .nope}
"""
    calls: list[str] = []

    class Rules:
        def __init__(self, root: dict[str, Any], path: str) -> None:
            self.path = path

        def compile(self, node: dict[str, Any], path: str,
                    uncorrelatable: str | None) -> list[fe.FieldError]:
            calls.append(path)
            return [fe.invalid(f"{path}.x-kubernetes-validations[0].rule", "x", "compile error")]

        def total_cost_errors(self) -> list[fe.FieldError]:
            # Only rules that compiled count towards the total.
            return [fe.forbidden(self.path, "too expensive")] if calls else []

    rules = f"{ROOT}.properties[spec].x-kubernetes-validations"
    assert _errors(schema, schema_rules=Rules) == [
        f"{rules}[0].rule: Required value: rule is not specified",
        f'{rules}[1].reason: Unsupported value: "Bad": supported values: "FieldValueDuplicate", '
        '"FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"',
        f'{rules}[2].fieldPath: Invalid value: ".nope": fieldPath must be a valid path']
    assert calls == []  # CEL never compiles where the schema has errors
    good = yaml.safe_load(schema)
    good["properties"]["spec"]["x-kubernetes-validations"] = [{"rule": "self.a != ''"}]
    good["properties"]["size"] = {"type": "integer", "minimum": 0}
    good["properties"]["spec"]["properties"]["b"] = {"type": "string"}
    # The whole schema's cost comes after every rule's errors.
    assert create_errors(with_schema(good), schema_rules=Rules) == [
        f'{rules}[0].rule: Invalid value: "x": compile error',
        f"{ROOT}: Forbidden: too expensive"]
    assert calls == [f"{ROOT}.properties[spec]"]


def test_differing_version_schemas_report_per_version() -> None:
    crd = widget_crd()
    second = copy.deepcopy(crd["spec"]["versions"][0])
    second.update(name="v2", storage=False)
    second["schema"]["openAPIV3Schema"]["properties"]["extra"] = {}
    crd["spec"]["versions"].append(second)
    assert create_errors(crd) == [
        "spec.versions[1].schema.openAPIV3Schema.properties[extra].type: Required value: must "
        "not be empty for specified object fields"]


def test_selectable_fields_point_at_scalars_outside_metadata() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["selectableFields"] = [
        {"jsonPath": ".spec.nope"}, {"jsonPath": ".spec"}, {"jsonPath": ".spec.size"},
        {"jsonPath": ".spec.size"}]
    assert create_errors(crd) == [
        'spec.selectableFields[0].jsonPath: Invalid value: ".spec.nope": is an invalid path: '
        "does not refer to a valid field",
        'spec.selectableFields[1].jsonPath: Invalid value: ".spec": must point to a field of '
        "type string, boolean or integer. Enum string fields and strings with formats are "
        "allowed.",
        'spec.selectableFields[3].jsonPath: Duplicate value: ".spec.size"']
