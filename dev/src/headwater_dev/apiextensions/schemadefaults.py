"""Defaults in a CRD schema: pruned, valid, and sound where they touch object metadata.

apiextensions-apiserver v0.32.9 pkg/apiserver/schema/defaulting/validation.go
``ValidateDefaults``: every ``default`` in the structural part of a schema (not below
``additionalProperties``, where defaults are forbidden anyway) must

* survive pruning by its own schema unchanged ("must not have unknown fields";
  pkg/apiserver/schema/pruning/algorithm.go ``Prune``), when it is not inside
  ``apiVersion``/``kind``/``metadata`` of a resource;
* keep the ``apiVersion``, ``kind`` and ``metadata`` of any embedded resource it contains
  well-typed and valid (pkg/apiserver/schema/objectmeta ``Coerce`` and ``Validate``);
  inside such metadata, the whole surrounding object is checked and the default is
  reported as a whole ("must result in valid metadata: …");
* validate against its own schema (``apiservervalidation.ValidateCustomResource``): that
  is custom-resource validation, which this module calls through :data:`ValueValidator`
  (the ``crval`` helper's code), and skips when none is given;
* pass the schema's CEL rules (the ``cel`` helper's work, not done here).

The root of a CRD schema counts as an embedded resource here (``isResourceRoot``).

Not reproduced: Go's JSON decoding errors for an embedded ``metadata`` of the wrong shape
(``json: cannot unmarshal …``), and the label, annotation, owner-reference and finalizer
checks of ``ValidateObjectMeta`` on an embedded default's metadata (name, generateName
and namespace are checked).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from headwater_dev.builtins.names import is_dns1035_label
from headwater_dev.fielderrors import (
    FieldError,
    aggregate,
    invalid,
    required,
)

from .internal import Schema

ValueValidator = Callable[[Schema, Any, str], list[FieldError]]
"""Validates a value against a schema node, as custom-resource validation does:
(schema, value, the value's field path) → the errors."""

_META_FIELDS: Final = ("apiVersion", "kind", "metadata")
_TYPE_META: Final = {"apiVersion": "validation/v1", "kind": "Validation"}


@dataclass(frozen=True)
class _Walk:
    root: Schema  # the resource (or embedded resource) the node belongs to
    surrounding: tuple[str | None, ...]  # steps from root to node: key, or None for [0]
    inside_meta: bool
    require_pruned: bool
    validate_value: ValueValidator | None


def validate_defaults(schema: Schema, path: str, require_pruned: bool,
                      validate_value: ValueValidator | None) -> list[FieldError]:
    """``ValidateDefaults(ctx, path, schema, isResourceRoot=true, requirePrunedDefaults)``."""
    root = _as_embedded(schema)
    walk = _Walk(root, (), False, require_pruned, validate_value)
    return _validate(root, path, walk)


def _as_embedded(schema: Schema) -> Schema:
    return schema if schema.get("x-kubernetes-embedded-resource") else {
        **schema, "x-kubernetes-embedded-resource": True}


def _validate(s: Schema, path: str, walk: _Walk) -> list[FieldError]:
    if s.get("x-kubernetes-embedded-resource"):
        walk = _Walk(s, (), False, walk.require_pruned, walk.validate_value)
    errors: list[FieldError] = []
    if "default" in s:
        errors += (_meta_default(s, path, walk) if walk.inside_meta
                   else _plain_default(s, path, walk))
    if isinstance(s.get("items"), dict):
        errors += _validate(s["items"], f"{path}.items", _Walk(
            walk.root, (*walk.surrounding, None), walk.inside_meta, walk.require_pruned,
            walk.validate_value))
    for name in sorted(s.get("properties") or {}):
        inside = walk.inside_meta or bool(
            s.get("x-kubernetes-embedded-resource") and name in _META_FIELDS)
        errors += _validate(s["properties"][name], f"{path}.properties[{name}]", _Walk(
            walk.root, (*walk.surrounding, name), inside, walk.require_pruned,
            walk.validate_value))
    return errors


def _plain_default(s: Schema, path: str, walk: _Walk) -> list[FieldError]:
    value = s["default"]
    default_path = f"{path}.default"
    errors: list[FieldError] = []
    if walk.require_pruned and prune(value, s, bool(s.get("x-kubernetes-embedded-resource"))) \
            != value:
        errors.append(invalid(default_path, value, "must not have unknown fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    problems = _coerce(default_path, value, s, embedded) or _validate_meta(
        default_path, value, s, embedded)
    if problems:
        return errors + problems
    if walk.validate_value is not None:
        errors += walk.validate_value(s, value, default_path)
    return errors


def _meta_default(s: Schema, path: str, walk: _Walk) -> list[FieldError]:
    value = s["default"]
    whole = _surround(copy.deepcopy(value), walk.surrounding)
    if not isinstance(whole, dict):
        return []  # Go: "object root default value must be of object type" (unreachable)
    problems = _coerce("", whole, walk.root, True) or _validate_meta("", whole, walk.root, True)
    if problems:
        return [invalid(f"{path}.default", value,
                        f"must result in valid metadata: {aggregate(problems)}")]
    if walk.validate_value is not None:
        return walk.validate_value(s, value, f"{path}.default")
    return []


def _surround(value: Any, steps: tuple[str | None, ...]) -> Any:
    """The resource around a default (``SurroundingObjectFunc`` with its TypeMeta)."""
    for step in reversed(steps):
        value = [value] if step is None else {step: value}
    if isinstance(value, dict):
        for name, meta in _TYPE_META.items():
            value.setdefault(name, meta)
    return value


# --- pruning (pkg/apiserver/schema/pruning/algorithm.go) ------------------------------
def prune(value: Any, schema: Schema | None, is_resource_root: bool) -> Any:
    """``Prune``: a copy of ``value`` without the fields ``schema`` does not specify."""
    if is_resource_root:
        schema = _as_embedded(schema or {})
    return _prune(copy.deepcopy(value), schema)


def _prune(x: Any, s: Schema | None) -> Any:
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields") is True:
        return _skip_prune(x, s)
    if isinstance(x, dict):
        if s is None:
            return {}
        out = {}
        for name, item in x.items():
            if s.get("x-kubernetes-embedded-resource") and name in _META_FIELDS:
                out[name] = item
            elif name in (s.get("properties") or {}):
                out[name] = _prune(item, s["properties"][name])
            elif "additionalProperties" in s:
                out[name] = _prune(item, _additional(s))
        return out
    if isinstance(x, list):
        items = None if s is None else s.get("items")
        return [_prune(item, items if isinstance(items, dict) else None) for item in x]
    return x


def _skip_prune(x: Any, s: Schema) -> Any:
    if isinstance(x, dict):
        out = {}
        for name, item in x.items():
            if s.get("x-kubernetes-embedded-resource") and name in _META_FIELDS:
                out[name] = item
            elif name in (s.get("properties") or {}):
                out[name] = _prune(item, s["properties"][name])
            elif "additionalProperties" in s:
                out[name] = _prune(item, _additional(s))
            else:
                out[name] = item
        return out
    if isinstance(x, list):
        items = s.get("items")
        return [_skip_prune(item, items) if isinstance(items, dict) else item for item in x]
    return x


def _additional(s: Schema) -> Schema | None:
    additional = s.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


# --- embedded TypeMeta and ObjectMeta (pkg/apiserver/schema/objectmeta) ---------------
def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _coerce(path: str, x: Any, s: Schema | None, is_root: bool) -> list[FieldError]:
    """``Coerce``'s type checks: the first embedded apiVersion or kind that is no string."""
    if s is None:
        return []
    if is_root:
        s = _as_embedded(s)
    if isinstance(x, dict):
        for name, item in x.items():
            if s.get("x-kubernetes-embedded-resource") and name in ("apiVersion", "kind") \
                    and not isinstance(item, str):
                return [invalid(_child(path, name), item, "must be a string")]
            sub = _sub_schema(s, name)
            if sub is not None:
                found = _coerce(_sub_path(s, path, name), item, sub, False)
                if found:
                    return found
    elif isinstance(x, list) and isinstance(s.get("items"), dict):
        for i, item in enumerate(x):
            found = _coerce(f"{path}[{i}]", item, s["items"], False)
            if found:
                return found
    return []


def _validate_meta(path: str, x: Any, s: Schema | None, is_root: bool) -> list[FieldError]:
    """``objectmeta.Validate``: every embedded resource's TypeMeta and ObjectMeta."""
    if s is None:
        return []
    if is_root:
        s = _as_embedded(s)
    errors: list[FieldError] = []
    if isinstance(x, dict):
        if s.get("x-kubernetes-embedded-resource"):
            errors += _embedded_resource(path, x)
        for name, item in x.items():
            sub = _sub_schema(s, name)
            if sub is not None:
                errors += _validate_meta(_sub_path(s, path, name), item, sub, False)
    elif isinstance(x, list) and isinstance(s.get("items"), dict):
        for i, item in enumerate(x):
            errors += _validate_meta(f"{path}[{i}]", item, s["items"], False)
    return errors


def _sub_schema(s: Schema, name: str) -> Schema | None:
    properties = s.get("properties") or {}
    if name in properties:
        return properties[name]  # type: ignore[no-any-return]
    return _additional(s)


def _sub_path(s: Schema, path: str, name: str) -> str:
    return _child(path, name) if name in (s.get("properties") or {}) else f"{path}[{name}]"


def _embedded_resource(path: str, x: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for name in ("apiVersion", "kind"):
        if name not in x:
            errors.append(required(_child(path, name), "must not be empty"))
    for name, value in x.items():
        if name == "apiVersion":
            errors += _api_version(_child(path, name), value)
        elif name == "kind":
            errors += _kind(_child(path, name), value)
        elif name == "metadata" and isinstance(value, dict):
            errors += _embedded_metadata(_child(path, name), value)
    return errors


def _api_version(path: str, value: Any) -> list[FieldError]:
    if not isinstance(value, str):
        return [invalid(path, value, "must be a string")]
    if not value:
        return [invalid(path, value, "must not be empty")]
    if value != "/" and value.count("/") > 1:
        return [invalid(path, value, f"unexpected GroupVersion string: {value}")]
    return []


def _kind(path: str, value: Any) -> list[FieldError]:
    if not isinstance(value, str):
        return [invalid(path, value, "must be a string")]
    if not value:
        return [invalid(path, value, "must not be empty")]
    problems = is_dns1035_label(value.lower())
    if problems:
        return [invalid(path, value, "may have mixed case, but should otherwise match: "
                        + ",".join(problems))]
    return []


def _embedded_metadata(path: str, meta: Mapping[str, Any]) -> list[FieldError]:
    """``ValidateObjectMeta`` with path-segment names: name, generateName, namespace."""
    errors: list[FieldError] = []
    generate_name = meta.get("generateName")
    if isinstance(generate_name, str) and generate_name:
        errors += [invalid(f"{path}.generateName", generate_name, problem)
                   for problem in _path_segment(generate_name, prefix=True)]
    name = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") \
        else "fakename"
    errors += [invalid(f"{path}.name", name, problem)
               for problem in _path_segment(str(name), prefix=False)]
    return errors


def _path_segment(name: str, prefix: bool) -> list[str]:
    """``ValidatePathSegmentName`` (apimachinery pkg/api/validation/path/name.go)."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


__all__ = ["ValueValidator", "prune", "validate_defaults"]
