"""Structural-schema pruning: unknown fields are dropped on write, as the API server does.

A real API server silently removes every field of a custom resource that its CRD's
structural schema does not declare (unless ``x-kubernetes-preserve-unknown-fields``).
Without this, an operator that writes an undeclared status field passes every test and
loses that field in a real cluster. Pure functions; the store applies them on each write.

Rules (the subset of the Kubernetes pruning algorithm that our generated CRDs use):
``properties`` keep only declared keys; ``additionalProperties`` (a schema) applies to
every key; ``x-kubernetes-preserve-unknown-fields`` keeps undeclared keys; ``items``
applies to each element; ``x-kubernetes-embedded-resource`` keeps apiVersion, kind and
metadata. At the root, ``apiVersion``, ``kind`` and ``metadata`` are always kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_EMBEDDED_KEYS = ("apiVersion", "kind", "metadata")


def prune(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """``value`` without the fields ``schema`` does not declare (a new object)."""
    if schema is None:
        return value
    if isinstance(value, dict):
        return _prune_object(value, schema)
    if isinstance(value, list):
        items = schema.get("items")
        return [prune(item, items) for item in value] if isinstance(items, Mapping) else value
    return value


def _prune_object(value: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    if properties is None and isinstance(additional, Mapping):
        return {key: prune(item, additional) for key, item in value.items()}
    if properties is None and (preserve or additional is True
                               or schema.get("type") not in (None, "object")):
        return value
    declared = properties or {}
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key in declared:
            result[key] = prune(item, declared[key])
        elif preserve or (schema.get("x-kubernetes-embedded-resource")
                          and key in _EMBEDDED_KEYS):
            result[key] = item
    return result


def prune_resource(obj: dict[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Prune a whole custom resource by its ``openAPIV3Schema`` (root fields kept)."""
    if schema is None:
        return obj
    pruned: dict[str, Any] = prune(obj, schema)
    for key in _EMBEDDED_KEYS:
        if key in obj:
            pruned[key] = obj[key]
    return pruned
