"""Shared builders for the crdval tests: a minimal valid CRD, and its errors as strings."""

from __future__ import annotations

import copy
from typing import Any

from headwater_dev.apiextensions.crddefaults import (
    default_crd,
    prepare_for_create,
    prepare_for_update,
)
from headwater_dev.apiextensions.crdvalidation import validate_crd

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def widget_crd(schema: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """``widgets.example.com``: one version, a status subresource; ``spec`` keys override."""
    body: dict[str, Any] = {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": copy.deepcopy(schema or SCHEMA)},
                      "subresources": {"status": {}}}],
    }
    body.update(spec)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "spec": body}


def with_schema(schema: dict[str, Any], *, status: bool = False) -> dict[str, Any]:
    """A widget CRD with ``schema`` (and no status subresource unless asked)."""
    crd = widget_crd(schema)
    if not status:
        del crd["spec"]["versions"][0]["subresources"]
    return crd


def create_errors(crd: dict[str, Any], **kwargs: Any) -> list[str]:
    """The messages a create of ``crd`` gets, after the server's defaulting."""
    return [error.message() for error in validate_crd(prepare_for_create(default_crd(crd)),
                                                      **kwargs)]


def update_errors(crd: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """The messages an update of ``old`` (as stored) to ``crd`` gets."""
    stored = prepare_for_create(default_crd(old))
    # As stored, and as a conditional update sends it (CRDs allow no unconditional update).
    stored["metadata"]["resourceVersion"] = "1"
    crd = {**crd, "metadata": {**crd["metadata"], "resourceVersion": "1"}}
    new = prepare_for_update(default_crd(crd), stored)
    return [error.message() for error in validate_crd(new, stored)]
