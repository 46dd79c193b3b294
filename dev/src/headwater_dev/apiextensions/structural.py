"""Structural schemas: the invariants every CRD schema must meet, as Kubernetes 1.32 checks.

apiextensions-apiserver v0.32.9 pkg/apiserver/schema:

* convert.go ``NewStructural`` — the first construct a structural schema cannot hold
  (``$schema``, ``id``, ``$ref``, …): :func:`new_structural_error`;
* validation.go ``ValidateStructural`` (``validateStructuralInvariants``,
  ``validateStructuralMetadataInvariants``, ``validateValueValidation``,
  ``validateNestedValueValidation``) and complete.go ``validateStructuralCompleteness``:
  :func:`validate_structural`. Its errors come back sorted by message, as Go sorts them
  (Go walks maps in random order, so it sorts to be stable).

A schema here is the :func:`~.internal.go_schema` dict. The structural part of a schema
is what is reachable through ``properties``, ``items`` and ``additionalProperties``; the
``allOf``/``anyOf``/``oneOf``/``not`` subtrees are *value validations*, which may only
add checks (no ``type``, ``description``, ``default``, ``nullable``, Kubernetes
extensions, ``metadata``) to fields the structural part already specifies.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

from headwater_dev import goregexp
from headwater_dev.fielderrors import (
    FieldError,
    forbidden,
    invalid,
    key,
    required,
)

from .internal import Schema

_INT_OR_STRING_ANY_OF: Final = [{"type": "integer"}, {"type": "string"}]
# NewStructural drops these (never compared, never structural).
_NOT_STRUCTURAL: Final = frozenset({"externalDocs", "example"})


class Level(enum.Enum):
    """Where a structural node sits: its missing ``type`` is worded by it."""

    ROOT = "root"
    ITEM = "item"
    FIELD = "field"


# --- NewStructural ----------------------------------------------------------------------
def new_structural_error(schema: Schema) -> str | None:
    """The error ``NewStructural`` returns for ``schema``, or None when it converts."""
    error = _unsupported(schema) or _value_validation_error(schema)
    if error:
        return error
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        return "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
    return _children_error(schema)


def _unsupported(schema: Schema) -> str | None:
    checks = (("id", bool(schema.get("id"))), ("schema", bool(schema.get("$schema"))),
              ("$ref", bool(schema.get("$ref"))),
              ("patternProperties", bool(schema.get("patternProperties"))),
              ("dependencies", bool(schema.get("dependencies"))),
              ("additionalItems", "additionalItems" in schema),
              ("definitions", bool(schema.get("definitions"))))
    for name, present in checks:
        if present:
            return f"OpenAPIV3Schema '{name}' is not supported"
    return None


def _value_validation_error(schema: Schema) -> str | None:
    nested = [schema["not"]] if isinstance(schema.get("not"), dict) else []
    for junctor in ("allOf", "anyOf", "oneOf"):
        nested += [s for s in schema.get(junctor, []) if isinstance(s, dict)]
    for sub in nested:
        error = new_structural_error(sub)
        if error:
            return error
    return None


def _children_error(schema: Schema) -> str | None:
    items = schema.get("items")
    if isinstance(items, list) and items:
        return "OpenAPIV3Schema 'items' must be a schema, but is an array"
    children = [items] if isinstance(items, dict) else []
    children += [schema["properties"][k] for k in sorted(schema.get("properties", {}))]
    if isinstance(schema.get("additionalProperties"), dict):
        children.append(schema["additionalProperties"])
    for child in children:
        error = new_structural_error(child)
        if error:
            return error
    return None


# --- ValidateStructural -----------------------------------------------------------------
def validate_structural(schema: Schema, path: str) -> list[FieldError]:
    """``ValidateStructural``: invariants and completeness, sorted by message."""
    errors = _invariants(schema, Level.ROOT, path)
    errors += _completeness(schema, schema, path, path)
    return sorted(errors, key=lambda error: error.message())


def is_structural(schema: Schema) -> bool:
    """Whether ``schema`` converts and meets every invariant (``schemaIsNonStructural``)."""
    return new_structural_error(schema) is None and not validate_structural(schema, "")


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _invariants(s: Schema, level: Level, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    errors += _structure(s, level, path)
    errors += _extension_conflicts(s, path)
    errors += _value_validation(s, _skip_any_of(s), _skip_first_all_of_any_of(s), path)
    errors += _type_rules(s, level, path)
    errors += _type_meta_rules(s, level, path)
    if isinstance(s.get("properties", {}).get("metadata"), Mapping):
        errors += _metadata_invariants(
            s["properties"]["metadata"], level is Level.ROOT or _embedded(s), level,
            f"{_child(path, 'properties')}{key('metadata')}")
    if _embedded(s) and not _preserves(s) and not s.get("properties"):
        errors.append(required(_child(path, "properties"),
                               "must not be empty if x-kubernetes-embedded-resource is true "
                               "without x-kubernetes-preserve-unknown-fields"))
    return errors


def _structure(s: Schema, level: Level, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    items = s.get("items")
    if s.get("type") == "array" and not isinstance(items, dict):
        errors.append(required(_child(path, "items"), "must be specified"))
    if isinstance(items, dict):
        errors += _invariants(items, Level.ITEM, _child(path, "items"))
    for name, prop in s.get("properties", {}).items():
        errors += _invariants(prop, Level.FIELD, f"{_child(path, 'properties')}{key(name)}")
    if "additionalProperties" in s:
        if level is Level.ROOT:
            errors.append(forbidden(_child(path, "additionalProperties"),
                                    "must not be used at the root"))
        additional = s["additionalProperties"]
        if isinstance(additional, dict):
            errors += _invariants(additional, Level.FIELD, _child(path, "additionalProperties"))
    return errors


def _extension_conflicts(s: Schema, path: str) -> list[FieldError]:
    errors = []
    if s.get("x-kubernetes-int-or-string") and _preserves(s):
        errors.append(invalid(_child(path, "x-kubernetes-preserve-unknown-fields"), True,
                              "must be false if x-kubernetes-int-or-string is true"))
    if s.get("x-kubernetes-int-or-string") and _embedded(s):
        errors.append(invalid(_child(path, "x-kubernetes-embedded-resource"), True,
                              "must be false if x-kubernetes-int-or-string is true"))
    return errors


_MISSING_TYPE: Final = {Level.ROOT: "must not be empty at the root",
                        Level.ITEM: "must not be empty for specified array items",
                        Level.FIELD: "must not be empty for specified object fields"}


def _type_rules(s: Schema, level: Level, path: str) -> list[FieldError]:
    errors = []
    type_ = s.get("type", "")
    type_path = _child(path, "type")
    if _embedded(s) and type_ != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        errors.append(invalid(type_path, type_, detail) if type_
                      else required(type_path, detail))
    elif not type_ and not s.get("x-kubernetes-int-or-string") and not _preserves(s):
        errors.append(required(type_path, _MISSING_TYPE[level]))
    if _embedded(s) and "additionalProperties" in s:
        errors.append(forbidden(_child(path, "additionalProperties"),
                                "must not be used if x-kubernetes-embedded-resource is set"))
    if level is Level.ROOT and type_ and type_ != "object":
        errors.append(invalid(type_path, type_, "must be object at the root"))
    return errors


def _type_meta_rules(s: Schema, level: Level, path: str) -> list[FieldError]:
    if not (level is Level.ROOT or _embedded(s)):
        return []
    errors = []
    for name in ("kind", "apiVersion"):
        prop = s.get("properties", {}).get(name)
        if isinstance(prop, dict) and prop.get("type", "") != "string":
            errors.append(invalid(f"{_child(path, 'properties')}{key(name)}.type",
                                  prop.get("type", ""), "must be string"))
    return errors


def _metadata_invariants(s: Schema, check_metadata: bool, level: Level,
                         path: str) -> list[FieldError]:
    errors = []
    if check_metadata and s.get("type", "") != "object":
        errors.append(invalid(_child(path, "type"), s.get("type", ""), "must be object"))
    if level is Level.ROOT and _restricts_more_than_names(s):
        errors.append(forbidden(path, "must not specify anything other than name and "
                                      "generateName, but metadata is implicitly specified"))
    return errors


def _restricts_more_than_names(s: Schema) -> bool:
    """Whether root ``metadata`` says more than its type, default, name and generateName."""
    rest = {k: v for k, v in s.items() if k not in ("type", "default", *_NOT_STRUCTURAL)}
    properties = rest.get("properties")
    if isinstance(properties, dict) and properties and set(properties) <= {
            "name", "generateName"}:
        del rest["properties"]
    return bool(rest)


def _is_int_or_string_any_of(any_of: Any) -> bool:
    """``anyOf: [{type: integer}, {type: string}]`` and nothing else that is structural."""
    if not isinstance(any_of, list):
        return False
    kept = [{k: v for k, v in sub.items() if k not in _NOT_STRUCTURAL} for sub in any_of]
    return kept == _INT_OR_STRING_ANY_OF


def _skip_any_of(s: Schema) -> bool:
    return _is_int_or_string_any_of(s.get("anyOf"))


def _skip_first_all_of_any_of(s: Schema) -> bool:
    all_of = s.get("allOf") or []
    return bool(all_of) and _is_int_or_string_any_of(all_of[0].get("anyOf"))


def _embedded(s: Schema) -> bool:
    return bool(s.get("x-kubernetes-embedded-resource"))


def _preserves(s: Schema) -> bool:
    return s.get("x-kubernetes-preserve-unknown-fields") is True


# --- value validations ------------------------------------------------------------------
def _value_validation(v: Schema, skip_any_of: bool, skip_first_all_of_any_of: bool,
                      path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not skip_any_of:
        for i, sub in enumerate(v.get("anyOf", [])):
            errors += _nested(sub, False, f"{_child(path, 'anyOf')}[{i}]")
    for i, sub in enumerate(v.get("allOf", [])):
        errors += _nested(sub, skip_first_all_of_any_of and i == 0,
                          f"{_child(path, 'allOf')}[{i}]")
    for i, sub in enumerate(v.get("oneOf", [])):
        errors += _nested(sub, False, f"{_child(path, 'oneOf')}[{i}]")
    if isinstance(v.get("not"), dict):
        errors += _nested(v["not"], False, _child(path, "not"))
    pattern = v.get("pattern")
    if pattern:
        problem = goregexp.compile_error(pattern)
        if problem:
            errors.append(invalid(_child(path, "pattern"), pattern,
                                  f"must be a valid regular expression, but isn't: {problem}"))
    return errors


# (JSON key, forbidden when, detail) for a value validation's generic and extension fields.
_FORBIDDEN_NESTED: Final = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _nested(v: Schema, skip_any_of: bool, path: str) -> list[FieldError]:
    errors = _value_validation(v, skip_any_of, False, path)
    if isinstance(v.get("items"), dict):
        errors += _nested(v["items"], False, _child(path, "items"))
    for name, prop in v.get("properties", {}).items():
        errors += _nested(prop, False, f"{_child(path, 'properties')}{key(name)}")
    # A nested additionalProperties is forbidden below (AllowNestedAdditionalProperties
    # is false for CRDs), and Go does not descend into it.
    errors += [forbidden(_child(path, name), detail)
               for name, detail in _FORBIDDEN_NESTED if _set_in_nested(v, name)]
    if "metadata" in v.get("properties", {}):
        errors.append(forbidden(f"{_child(path, 'properties')}{key('metadata')}",
                                "must not be specified in a nested context"))
    return errors


def _set_in_nested(v: Schema, name: str) -> bool:
    value = v.get(name)
    if name == "additionalProperties":
        # NewStructural keeps a nested additionalProperties unless it is `false`.
        return value is not None and value is not False
    if name in ("x-kubernetes-list-type", "x-kubernetes-map-type", "default"):
        return name in v  # pointers: set, even to "" (a null default never decodes)
    return bool(value)


# --- completeness -----------------------------------------------------------------------
def _completeness(v: Schema, s: Schema | None, s_path: str, v_path: str) -> list[FieldError]:
    """Every field a root value validation names is specified structurally too.

    Go checks this from the root's own allOf/anyOf/oneOf/not only
    (``validateStructuralCompleteness`` never descends into structural properties).
    """
    if s is None:
        return [required(s_path, f"because it is defined in {v_path}")]
    errors: list[FieldError] = []
    if isinstance(v.get("not"), dict):
        errors += _nested_completeness(v["not"], s, s_path, _child(v_path, "not"))
    for junctor in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(v.get(junctor, [])):
            errors += _nested_completeness(sub, s, s_path, f"{_child(v_path, junctor)}[{i}]")
    return errors


def _nested_completeness(v: Schema, s: Schema | None, s_path: str,
                         v_path: str) -> list[FieldError]:
    if s is None:
        return [required(s_path, f"because it is defined in {v_path}")]
    errors = _completeness(v, s, s_path, v_path)
    if isinstance(v.get("items"), dict):
        s_items = s.get("items")
        errors += _nested_completeness(v["items"], s_items if isinstance(s_items, dict)
                                       else None, _child(s_path, "items"),
                                       _child(v_path, "items"))
    s_props: Mapping[str, Any] = s.get("properties", {})
    for name, prop in v.get("properties", {}).items():
        s_field = f"{_child(s_path, 'properties')}{key(name)}"
        v_field = f"{_child(v_path, 'properties')}{key(name)}"
        if name not in s_props:
            errors.append(required(s_field, f"because it is defined in {v_field}"))
        else:
            errors += _nested_completeness(prop, s_props[name], s_field, v_field)
    return errors


__all__ = ["Level", "is_structural", "new_structural_error", "validate_structural"]
