"""Go's ``%#v`` of the internal apiextensions values that CRD validation reports.

A few CRD errors show a typed Go value as their bad value: ``spec.versions`` (a
``[]apiextensions.CustomResourceDefinitionVersion``), ``status.storedVersions`` (a
``[]string``), the root schema when the status subresource forbids one of its fields (an
``apiextensions.JSONSchemaProps``). ``field.Error.ErrorBody`` prints those with ``%#v``
(apimachinery v0.32.9 pkg/util/validation/field/errors.go), which names each struct type
and field in declaration order (apiextensions-apiserver v0.32.9
pkg/apis/apiextensions/types.go and types_jsonschema.go), prints a nil pointer as
``(*T)(nil)``, a nil slice as ``[]T(nil)``, and map keys sorted.

What cannot be reproduced: ``%#v`` prints a non-nil pointer below the top level as its
memory address (``(*float64)(0xc000a1b2c8)``), which differs on every request. Those
print here as ``(*T)(0xc000000000)``; a message that contains one never matches a real
server's byte for byte (nor another request's on the same server).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from headwater_dev.fielderrors import go_quote, go_string_slice, go_syntax

from .internal import Schema, Version

_PKG: Final = "apiextensions."
_ADDRESS: Final = "0xc000000000"


def string_slice(values: Sequence[str] | None) -> str:
    """``%#v`` of a ``[]string``."""
    if values is None:
        return "[]string(nil)"
    return go_string_slice(values)


def _pointer(type_name: str, value: Any) -> str:
    return f"(*{type_name})({'nil' if value is None else _ADDRESS})"


def _struct(type_name: str, fields: Sequence[tuple[str, str]]) -> str:
    return type_name + "{" + ", ".join(f"{name}:{text}" for name, text in fields) + "}"


def _slice(type_name: str, items: Sequence[Any] | None, element: Callable[[Any], str]) -> str:
    if items is None:
        return f"{type_name}(nil)"
    return type_name + "{" + ", ".join(element(item) for item in items) + "}"


def _map(type_name: str, items: Mapping[str, Any] | None,
         element: Callable[[Any], str]) -> str:
    if items is None:
        return f"{type_name}(nil)"
    body = ", ".join(f"{go_quote(k)}:{element(items[k])}" for k in sorted(items))
    return type_name + "{" + body + "}"


# --- versions --------------------------------------------------------------------------
def versions(items: Sequence[Version]) -> str:
    """``%#v`` of ``spec.versions`` (``[]apiextensions.CustomResourceDefinitionVersion``)."""
    return _slice(f"[]{_PKG}CustomResourceDefinitionVersion", items, _version)


def _version(version: Version) -> str:
    return _struct(f"{_PKG}CustomResourceDefinitionVersion", [
        ("Name", go_quote(version.name)),
        ("Served", _bool(version.served)),
        ("Storage", _bool(version.storage)),
        ("Deprecated", _bool(version.deprecated)),
        ("DeprecationWarning", _pointer("string", version.deprecation_warning)),
        ("Schema", _pointer(f"{_PKG}CustomResourceValidation", version.schema)),
        ("Subresources", _pointer(f"{_PKG}CustomResourceSubresources", version.subresources)),
        ("AdditionalPrinterColumns",
         _slice(f"[]{_PKG}CustomResourceColumnDefinition", version.columns, _column)),
        ("SelectableFields",
         _slice(f"[]{_PKG}SelectableField", version.selectable_fields, _selectable_field)),
    ])


def _column(column: Mapping[str, Any]) -> str:
    return _struct(f"{_PKG}CustomResourceColumnDefinition", [
        ("Name", go_quote(column["name"])), ("Type", go_quote(column["type"])),
        ("Format", go_quote(column["format"])),
        ("Description", go_quote(column["description"])),
        ("Priority", str(column["priority"])), ("JSONPath", go_quote(column["JSONPath"])),
    ])


def _selectable_field(item: Mapping[str, Any]) -> str:
    path = item.get("jsonPath")
    return _struct(f"{_PKG}SelectableField",
                   [("JSONPath", go_quote(path if isinstance(path, str) else ""))])


def _bool(value: bool) -> str:
    return "true" if value else "false"


# --- schemas ---------------------------------------------------------------------------
# JSONSchemaProps's fields in declaration order: (Go name, JSON key, how to print).
_STRING, _BOOL, _POINTER, _JSON_LIST, _STRINGS = "s", "b", "p", "j", "ss"
_SCHEMA_FIELDS: Final[tuple[tuple[str, str, str], ...]] = (
    ("ID", "id", _STRING), ("Schema", "$schema", _STRING), ("Ref", "$ref", "string"),
    ("Description", "description", _STRING), ("Type", "type", _STRING),
    ("Nullable", "nullable", _BOOL), ("Format", "format", _STRING),
    ("Title", "title", _STRING), ("Default", "default", f"{_PKG}JSON"),
    ("Maximum", "maximum", "float64"), ("ExclusiveMaximum", "exclusiveMaximum", _BOOL),
    ("Minimum", "minimum", "float64"), ("ExclusiveMinimum", "exclusiveMinimum", _BOOL),
    ("MaxLength", "maxLength", "int64"), ("MinLength", "minLength", "int64"),
    ("Pattern", "pattern", _STRING), ("MaxItems", "maxItems", "int64"),
    ("MinItems", "minItems", "int64"), ("UniqueItems", "uniqueItems", _BOOL),
    ("MultipleOf", "multipleOf", "float64"), ("Enum", "enum", _JSON_LIST),
    ("MaxProperties", "maxProperties", "int64"), ("MinProperties", "minProperties", "int64"),
    ("Required", "required", _STRINGS), ("Items", "items", f"{_PKG}JSONSchemaPropsOrArray"),
    ("AllOf", "allOf", "[]"), ("OneOf", "oneOf", "[]"), ("AnyOf", "anyOf", "[]"),
    ("Not", "not", f"{_PKG}JSONSchemaProps"), ("Properties", "properties", "map"),
    ("AdditionalProperties", "additionalProperties", f"{_PKG}JSONSchemaPropsOrBool"),
    ("PatternProperties", "patternProperties", "map"),
    ("Dependencies", "dependencies", "deps"),
    ("AdditionalItems", "additionalItems", f"{_PKG}JSONSchemaPropsOrBool"),
    ("Definitions", "definitions", "defs"),
    ("ExternalDocs", "externalDocs", f"{_PKG}ExternalDocumentation"),
    ("Example", "example", f"{_PKG}JSON"),
    ("XPreserveUnknownFields", "x-kubernetes-preserve-unknown-fields", "bool"),
    ("XEmbeddedResource", "x-kubernetes-embedded-resource", _BOOL),
    ("XIntOrString", "x-kubernetes-int-or-string", _BOOL),
    ("XListMapKeys", "x-kubernetes-list-map-keys", _STRINGS),
    ("XListType", "x-kubernetes-list-type", "string"),
    ("XMapType", "x-kubernetes-map-type", "string"),
    ("XValidations", "x-kubernetes-validations", "rules"),
)
SCHEMA_GO_FIELDS: Final = tuple((go_name, json_key) for go_name, json_key, _ in _SCHEMA_FIELDS)


def schema_props(schema: Schema) -> str:
    """``%#v`` of an ``apiextensions.JSONSchemaProps`` (a :func:`go_schema` dict)."""
    return _struct(f"{_PKG}JSONSchemaProps", [
        (go_name, _schema_field(how, schema.get(json_key)))
        for go_name, json_key, how in _SCHEMA_FIELDS])


def props_or_array(items: Any) -> str:
    """``%#v`` of an ``apiextensions.JSONSchemaPropsOrArray`` (``items``)."""
    single = items if isinstance(items, Mapping) else None
    many = items if isinstance(items, list) else None
    return _struct(f"{_PKG}JSONSchemaPropsOrArray", [
        ("Schema", _pointer(f"{_PKG}JSONSchemaProps", single)),
        ("JSONSchemas", _slice(f"[]{_PKG}JSONSchemaProps", many, schema_props))])


def _schema_field(how: str, value: Any) -> str:
    simple = {_STRING: lambda: go_quote(value or ""), _BOOL: lambda: _bool(bool(value)),
              _JSON_LIST: lambda: _slice(f"[]{_PKG}JSON", value, go_syntax),
              _STRINGS: lambda: string_slice(value),
              "[]": lambda: _slice(f"[]{_PKG}JSONSchemaProps", value, schema_props),
              "map": lambda: _map(f"map[string]{_PKG}JSONSchemaProps", value, schema_props),
              "deps": lambda: _map(f"{_PKG}JSONSchemaDependencies", value, _dependency),
              "defs": lambda: _map(f"{_PKG}JSONSchemaDefinitions", value, schema_props),
              "rules": lambda: _slice(f"{_PKG}ValidationRules", value, _rule)}
    if how in simple:
        return simple[how]()
    return _pointer(how, value)


def _dependency(value: Any) -> str:
    schema = value if isinstance(value, Mapping) else None
    strings = value if isinstance(value, list) else None
    return _struct(f"{_PKG}JSONSchemaPropsOrStringArray", [
        ("Schema", _pointer(f"{_PKG}JSONSchemaProps", schema)),
        ("Property", string_slice(strings))])


def _rule(rule: Mapping[str, Any]) -> str:
    return _struct(f"{_PKG}ValidationRule", [
        ("Rule", go_quote(rule.get("rule") or "")),
        ("Message", go_quote(rule.get("message") or "")),
        ("MessageExpression", go_quote(rule.get("messageExpression") or "")),
        ("Reason", _pointer(f"{_PKG}FieldValueErrorReason", rule.get("reason"))),
        ("FieldPath", go_quote(rule.get("fieldPath") or "")),
        ("OptionalOldSelf", _pointer("bool", rule.get("optionalOldSelf"))),
    ])


__all__ = ["SCHEMA_GO_FIELDS", "props_or_array", "schema_props", "string_slice", "versions"]
