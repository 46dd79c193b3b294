"""The OpenAPI rules of a CRD schema, node by node, as Kubernetes 1.32 checks them.

apiextensions-apiserver v0.32.9 pkg/apis/apiextensions/validation/validation.go:
``ValidateCustomResourceDefinitionOpenAPISchema`` (the recursion and its per-node rules:
``uniqueItems``, ``additionalProperties`` beside ``properties``, the list/map topology
extensions, ``x-kubernetes-preserve-unknown-fields: false``, the non-CEL structure of
``x-kubernetes-validations``), ``specStandardValidatorV3.validate`` (unsupported types and
keywords, defaults where they are forbidden, embedded resources inside metadata) and
``validateMapListKeysMapSet``.

Order. Each node reports its own keyword errors, then its children's (additionalProperties,
properties, not, allOf, oneOf, anyOf, definitions, items, dependencies), then its topology
and rule-structure errors. Go walks ``properties`` (and ``definitions``,
``dependencies``) in Go's random map order, so a real server orders errors from sibling
properties differently from one request to the next; this walk takes them sorted by name.

CEL. The ``x-kubernetes-validations`` rules are compiled (by the ``cel`` helper's code,
through :data:`RuleCompiler`) only at nodes where neither the node nor anything below it
had a schema error, and only when the whole schema is structural with valid defaults;
every CEL error of the schema comes after every schema error (``AllErrors`` appends the
CEL list last), children's before their parent's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from headwater_dev.fielderrors import (
    FieldError,
    GoText,
    forbidden,
    invalid,
    key,
    not_supported,
    required,
)

from . import fieldpath, gosyntax
from .internal import Schema

OPENAPI_V3_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")
_META_FIELDS: Final = frozenset({"metadata", "kind", "apiVersion"})
_SUPPORTED_REASONS: Final = ("FieldValueDuplicate", "FieldValueForbidden",
                             "FieldValueInvalid", "FieldValueRequired")
_NEWLINES: Final = re.compile(r"[\n\r]+")

RuleCompiler = Callable[[Schema, str, "str | None"], list[FieldError]]
"""Compiles a node's ``x-kubernetes-validations``: (node schema, node path, the path
within which ``oldSelf`` is forbidden or None) → the CEL errors Go reports there."""


@dataclass(frozen=True)
class Standard:
    """``specStandardValidatorV3``: what the walk knows about where it is."""

    allow_defaults: bool = True
    disallow_defaults_reason: str = ""
    inside_resource_meta: bool = False
    require_valid_property_type: bool = True
    uncorrelatable_path: str | None = None

    def forbidding_defaults(self, reason: str) -> Standard:
        return replace(self, allow_defaults=False, disallow_defaults_reason=reason)

    def forbidding_old_self(self, path: str) -> Standard:
        # The highest uncorrelatable ancestor is the one reported.
        return self if self.uncorrelatable_path is not None else replace(
            self, uncorrelatable_path=path)


@dataclass(frozen=True)
class Options:
    """The parts of ``validationOptions`` the schema walk reads."""

    require_atomic_set_type: bool = True
    require_map_list_keys_map_set_validation: bool = True
    compile_rules: RuleCompiler | None = None


@dataclass
class SchemaErrors:
    """``OpenAPISchemaErrorList``: schema errors, and CEL errors kept apart."""

    schema: list[FieldError] = field(default_factory=list)
    cel: list[FieldError] = field(default_factory=list)

    def extend(self, other: SchemaErrors) -> None:
        self.schema += other.schema
        self.cel += other.cel

    def all(self) -> list[FieldError]:
        return self.schema + self.cel


def validate_openapi_schema(schema: Schema | None, path: str, std: Standard, is_root: bool,
                            opts: Options, *, cel_enabled: bool) -> SchemaErrors:
    """``ValidateCustomResourceDefinitionOpenAPISchema`` for ``schema`` at ``path``."""
    errors = SchemaErrors()
    if schema is None:
        return errors
    errors.schema += standard_errors(schema, path, std)
    if schema.get("uniqueItems"):
        errors.schema.append(forbidden(f"{path}.uniqueItems", "uniqueItems cannot be set to "
                                       "true since the runtime complexity becomes quadratic"))
    errors.extend(_additional_properties(schema, path, std, opts, cel_enabled))
    errors.extend(_properties(schema, path, std, is_root, opts, cel_enabled=cel_enabled))
    errors.extend(_junctors(schema, path, std, opts))
    errors.extend(_items(schema, path, std, opts, cel_enabled))
    for name in sorted(schema.get("dependencies") or {}):
        dependency = schema["dependencies"][name]
        if isinstance(dependency, dict):
            errors.extend(validate_openapi_schema(
                dependency, f"{path}.dependencies{key(name)}", std, False, opts, cel_enabled=False))
    errors.schema += _preserve_and_map_type(schema, path)
    errors.schema += _list_type(schema, path, opts)
    errors.schema += _list_map(schema, path)
    if opts.require_map_list_keys_map_set_validation:
        errors.schema += map_list_keys_map_set_errors(schema, path)
    errors.schema += _rule_structure(schema, path)
    if schema.get("x-kubernetes-validations") and not errors.schema and cel_enabled \
            and opts.compile_rules is not None:
        errors.cel += opts.compile_rules(schema, path, std.uncorrelatable_path)
    return errors


# --- specStandardValidatorV3.validate ---------------------------------------------------
def standard_errors(schema: Schema, path: str, std: Standard) -> list[FieldError]:
    """The keywords a CRD schema may not use, and defaults where they are forbidden."""
    errors: list[FieldError] = []
    type_ = schema.get("type", "")
    if std.require_valid_property_type and type_ and type_ not in OPENAPI_V3_TYPES:
        errors.append(not_supported(f"{path}.type", type_, OPENAPI_V3_TYPES))
    if "default" in schema and not std.allow_defaults:
        detail = "must not be set"
        if std.disallow_defaults_reason:
            detail += " " + std.disallow_defaults_reason
        errors.append(forbidden(f"{path}.default", detail))
    unsupported = (("id", bool(schema.get("id"))),
                   ("additionalItems", "additionalItems" in schema),
                   ("patternProperties", bool(schema.get("patternProperties"))),
                   ("definitions", bool(schema.get("definitions"))),
                   ("dependencies", "dependencies" in schema),
                   ("$ref", "$ref" in schema))
    errors += [forbidden(f"{path}.{name}", f"{name} is not supported")
               for name, present in unsupported if present]
    if type_ == "null":
        errors.append(forbidden(f"{path}.type",
                                "type cannot be set to null, use nullable as an alternative"))
    if isinstance(schema.get("items"), list) and schema["items"]:
        errors.append(forbidden(f"{path}.items",
                                "items must be a schema object and not an array"))
    if std.inside_resource_meta and schema.get("x-kubernetes-embedded-resource"):
        errors.append(forbidden(f"{path}.x-kubernetes-embedded-resource",
                                "must not be used inside of resource meta"))
    return errors


# --- children ---------------------------------------------------------------------------
def _additional_properties(schema: Schema, path: str, std: Standard, opts: Options,
                           cel_enabled: bool) -> SchemaErrors:
    errors = SchemaErrors()
    if "additionalProperties" not in schema:
        return errors
    additional = schema["additionalProperties"]
    if schema.get("properties") and (additional is False or isinstance(additional, dict)):
        errors.schema.append(forbidden(f"{path}.additionalProperties",
                                       "additionalProperties and properties are mutual "
                                       "exclusive"))
    if isinstance(additional, dict):
        sub = std
        if std.inside_resource_meta:
            # Pruning cannot tell which keys such a default would apply to.
            sub = std.forbidding_defaults("inside additionalProperties applying to object "
                                          "metadata")
        errors.extend(validate_openapi_schema(additional, f"{path}.additionalProperties", sub,
                                              False, opts, cel_enabled=cel_enabled))
    return errors


def _properties(schema: Schema, path: str, std: Standard, is_root: bool, opts: Options, *,
                cel_enabled: bool) -> SchemaErrors:
    errors = SchemaErrors()
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    for name in sorted(properties):
        sub = std
        if schema.get("x-kubernetes-map-type", "granular") not in ("granular", "atomic"):
            sub = sub.forbidding_old_self(path)
        if (is_root or schema.get("x-kubernetes-embedded-resource")) and name in _META_FIELDS:
            sub = replace(sub, inside_resource_meta=True)
            if is_root:
                sub = sub.forbidding_defaults(f"in top-level {name}")
        errors.extend(validate_openapi_schema(properties[name],
                                              f"{path}.properties{key(name)}", sub, False,
                                              opts, cel_enabled=cel_enabled))
    return errors


def _junctors(schema: Schema, path: str, std: Standard, opts: Options) -> SchemaErrors:
    """not, allOf, oneOf, anyOf and definitions: walked without CEL."""
    errors = SchemaErrors()
    if isinstance(schema.get("not"), dict):
        errors.extend(validate_openapi_schema(schema["not"], f"{path}.not", std, False, opts,
                                              cel_enabled=False))
    for junctor in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(junctor) or []):
            errors.extend(validate_openapi_schema(sub, f"{path}.{junctor}[{i}]", std, False,
                                                  opts, cel_enabled=False))
    for name in sorted(schema.get("definitions") or {}):
        errors.extend(validate_openapi_schema(schema["definitions"][name],
                                              f"{path}.definitions{key(name)}", std, False,
                                              opts, cel_enabled=False))
    return errors


def _items(schema: Schema, path: str, std: Standard, opts: Options,
           cel_enabled: bool) -> SchemaErrors:
    errors = SchemaErrors()
    if "items" not in schema:
        return errors
    sub = std
    if schema.get("x-kubernetes-list-type") != "map":
        sub = sub.forbidding_old_self(path)
    items = schema["items"]
    if isinstance(items, dict):
        errors.extend(validate_openapi_schema(items, f"{path}.items", sub, False, opts,
                                              cel_enabled=cel_enabled))
    elif isinstance(items, list):
        for i, item in enumerate(items):
            errors.extend(validate_openapi_schema(item, f"{path}.items[{i}]", sub, False,
                                                  opts, cel_enabled=cel_enabled))
    return errors


# --- topology ---------------------------------------------------------------------------
def _preserve_and_map_type(schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False,
                              "must be true or undefined"))
    if "x-kubernetes-map-type" not in schema:
        return errors
    type_ = schema.get("type", "")
    if type_ != "object":
        detail = "must be object if x-kubernetes-map-type is specified"
        errors.append(invalid(f"{path}.type", type_, detail) if type_
                      else required(f"{path}.type", detail))
    map_type = schema["x-kubernetes-map-type"]
    if map_type not in ("atomic", "granular"):
        errors.append(not_supported(f"{path}.x-kubernetes-map-type", map_type,
                                    ["atomic", "granular"]))
    return errors


def _list_type(schema: Schema, path: str, opts: Options) -> list[FieldError]:
    errors: list[FieldError] = []
    if "x-kubernetes-list-type" not in schema:
        return errors
    list_type = schema["x-kubernetes-list-type"]
    type_ = schema.get("type", "")
    items = schema.get("items")
    if type_ != "array":
        detail = "must be array if x-kubernetes-list-type is specified"
        errors.append(invalid(f"{path}.type", type_, detail) if type_
                      else required(f"{path}.type", detail))
    elif opts.require_atomic_set_type and list_type == "set" and isinstance(items, dict):
        errors += _set_items_atomic(items, path)
    if list_type not in ("atomic", "set", "map"):
        errors.append(not_supported(f"{path}.x-kubernetes-list-type", list_type,
                                    ["atomic", "set", "map"]))
    return errors


def _set_items_atomic(items: Schema, path: str) -> list[FieldError]:
    detail = "must be atomic as item of a list with x-kubernetes-list-type=set"
    if items.get("type") == "array" and items.get("x-kubernetes-list-type",
                                                  "atomic") != "atomic":
        return [invalid(f"{path}.items.x-kubernetes-list-type",
                        items["x-kubernetes-list-type"], detail)]
    if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
        # Go reports the items' x-kubernetes-list-type as the bad value here.
        return [invalid(f"{path}.items.x-kubernetes-map-type",
                        items.get("x-kubernetes-list-type"), detail)]
    return []


def _list_map(schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    keys: list[str] = schema.get("x-kubernetes-list-map-keys") or []
    list_type = schema.get("x-kubernetes-list-type")
    if keys and "x-kubernetes-list-type" not in schema:
        errors.append(required(f"{path}.x-kubernetes-list-type",
                               "must be map if x-kubernetes-list-map-keys is non-empty"))
    elif keys and list_type != "map":
        errors.append(invalid(f"{path}.x-kubernetes-list-type", list_type,
                              "must be map if x-kubernetes-list-map-keys is non-empty"))
    if list_type == "map":
        errors += _list_map_items(schema, path, keys)
    return errors


def _list_map_items(schema: Schema, path: str, keys: list[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if not keys:
        errors.append(required(f"{path}.x-kubernetes-list-map-keys",
                               "must not be empty if x-kubernetes-list-type is map"))
    items = schema.get("items")
    if "items" not in schema:
        errors.append(required(f"{path}.items",
                               "must have a schema if x-kubernetes-list-type is map"))
        return errors
    if not isinstance(items, dict):
        errors.append(invalid(f"{path}.items", GoText(gosyntax.props_or_array(items)),
                              "must only have a single schema if x-kubernetes-list-type is map"))
        return errors
    if items.get("type", "") != "object":
        errors.append(invalid(f"{path}.items.type", items.get("type", ""),
                              "must be object if parent array's x-kubernetes-list-type is map"))
        return errors
    seen: set[str] = set()
    for name in keys:
        prop = (items.get("properties") or {}).get(name)
        if prop is None:
            errors.append(invalid(f"{path}.x-kubernetes-list-map-keys",
                                  GoText(gosyntax.string_slice(keys)),
                                  "entries must all be names of item properties"))
        elif prop.get("type") in ("array", "object"):
            # Go reports the items' type ("object") as the bad value here.
            errors.append(invalid(f"{path}.items.properties{key(name)}.type", "object",
                                  "must be a scalar type if parent array's "
                                  "x-kubernetes-list-type is map"))
        if name in seen:
            errors.append(invalid(f"{path}.x-kubernetes-list-map-keys",
                                  GoText(gosyntax.string_slice(keys)),
                                  "must not contain duplicate entries"))
        seen.add(name)
    return errors


def map_list_keys_map_set_errors(schema: Schema, path: str) -> list[FieldError]:
    """``validateMapListKeysMapSet``: set/map items and map keys may not be null."""
    items = schema.get("items")
    list_type = schema.get("x-kubernetes-list-type")
    if not isinstance(items, dict) or list_type not in ("set", "map"):
        return []
    errors: list[FieldError] = []
    if items.get("nullable"):
        errors.append(forbidden(f"{path}.items.nullable",
                                f"cannot be nullable when x-kubernetes-list-type is {list_type}"))
    if list_type != "map":
        return errors
    required_keys = set(items.get("required") or [])
    for name in schema.get("x-kubernetes-list-map-keys") or []:
        prop = (items.get("properties") or {}).get(name)
        if prop is None:
            continue
        prop_path = f"{path}.items.properties{key(name)}"
        if name not in required_keys and "default" not in prop:
            errors.append(required(f"{prop_path}.default", "this property is in "
                                   "x-kubernetes-list-map-keys, so it must have a default or "
                                   "be a required property"))
        if prop.get("nullable"):
            errors.append(forbidden(f"{prop_path}.nullable", "this property is in "
                                    "x-kubernetes-list-map-keys, so it cannot be nullable"))
    return errors


# --- x-kubernetes-validations, outside the CEL compiler ---------------------------------
def _rule_structure(schema: Schema, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        errors += _one_rule(schema, rule, f"{path}.x-kubernetes-validations[{i}]")
    return errors


def _one_rule(schema: Schema, rule: Mapping[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    text = rule.get("rule") or ""
    message = rule.get("message") or ""
    message_expression = rule.get("messageExpression") or ""
    if not text.strip():
        errors.append(required(f"{path}.rule", "rule is not specified"))
    elif message and not message.strip():
        errors.append(invalid(f"{path}.message", message,
                              "message must be non-empty if specified"))
    elif _NEWLINES.search(message.strip()):
        errors.append(invalid(f"{path}.message", message, "message must not contain line breaks"))
    elif _NEWLINES.search(text.strip()) and not message.strip():
        errors.append(required(f"{path}.message",
                               "message must be specified if rule contains line breaks"))
    if message_expression and not message_expression.strip():
        errors.append(required(f"{path}.messageExpression",
                               "messageExpression must be non-empty if specified"))
    reason = rule.get("reason")
    if reason is not None and reason not in _SUPPORTED_REASONS:
        errors.append(not_supported(f"{path}.reason", reason, _SUPPORTED_REASONS))
    errors += _rule_field_path(schema, rule.get("fieldPath") or "", f"{path}.fieldPath")
    return errors


def _rule_field_path(schema: Schema, value: str, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if value and not value.strip():
        errors.append(invalid(path, value, "fieldPath must be non-empty if specified"))
    if _NEWLINES.search(value):
        errors.append(invalid(path, value, "fieldPath must not contain line breaks"))
    if value and not fieldpath.path_valid(schema, value):
        errors.append(invalid(path, value, "fieldPath must be a valid path"))
    return errors


__all__ = ["OPENAPI_V3_TYPES", "Options", "RuleCompiler", "SchemaErrors", "Standard",
           "map_list_keys_map_set_errors", "standard_errors", "validate_openapi_schema"]
