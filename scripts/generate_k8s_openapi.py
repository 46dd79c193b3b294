#!/usr/bin/env python3
"""Generate ``headwater_operator/data/k8s-1.32-openapi.json``: the pinned Kubernetes 1.32
OpenAPI v2 definitions of the built-in kinds Headwater's API emulator serves.

Run by a developer (never at test time) after changing the kinds below:

    .venv/bin/python scripts/generate_k8s_openapi.py

The source is the ``kubernetes-validate`` package (a test dependency, Apache-2.0), whose
``v1.32.0-local/_definitions.json`` is Kubernetes 1.32.0's ``api/openapi-spec/swagger.json``
``definitions`` rewritten as JSON Schema (``$defs``, ``type: [X, "null"]`` for optional
fields, ``oneOf`` for ``Quantity``/``IntOrString``, an ``enum`` on every kind's
``apiVersion`` and ``kind``). This script turns that back into the v2 form the API server
publishes at ``/openapi/v2`` (``#/definitions/`` references, single type strings,
``IntOrString`` as ``{type: string, format: int-or-string}``, ``Quantity`` as
``{type: string}``, no added enums), keeping only the definitions the served kinds reach.
``tests/unit/devcluster/test_builtins_openapi_data.py`` checks the checked-in file is what
this script produces.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "operator" / "src" / "headwater_operator" / "data" / "k8s-1.32-openapi.json"
SOURCE_VERSION = "v1.32.0-local"

# The served kinds (headwater_dev/resources.py BUILTIN_RESOURCES, and the
# CustomResourceDefinition kind apiextensions-apiserver serves), their lists, and the meta
# types every API answer or request body uses.
ROOTS = (
    "io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.PodList",
    "io.k8s.api.core.v1.Event", "io.k8s.api.core.v1.EventList",
    "io.k8s.api.events.v1.Event", "io.k8s.api.events.v1.EventList",
    "io.k8s.api.coordination.v1.Lease", "io.k8s.api.coordination.v1.LeaseList",
    "io.k8s.api.core.v1.Namespace", "io.k8s.api.core.v1.NamespaceList",
    "io.k8s.api.core.v1.Node", "io.k8s.api.core.v1.NodeList",
    "io.k8s.api.core.v1.ConfigMap", "io.k8s.api.core.v1.ConfigMapList",
    "io.k8s.api.core.v1.Secret", "io.k8s.api.core.v1.SecretList",
    "io.k8s.api.core.v1.ServiceAccount", "io.k8s.api.core.v1.ServiceAccountList",
    "io.k8s.api.core.v1.Binding", "io.k8s.api.policy.v1.Eviction",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
)
_V2_FORMS: Mapping[str, dict[str, Any]] = {
    # kube-openapi: Quantity's OpenAPISchemaType is "string" with no format; IntOrString's
    # is "string" with format "int-or-string" (apimachinery pkg/api/resource/quantity.go,
    # pkg/util/intstr/intstr.go). The JSON Schema source keeps no description for them.
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string",
                                                         "format": "int-or-string"},
}
_KEPT = frozenset({"description", "type", "format", "required", "items", "properties",
                   "additionalProperties", "$ref", "enum"})
_REF_PREFIX = "#/$defs/"


def source_path() -> Path:
    """The kubernetes-validate copy of the 1.32 definitions."""
    import kubernetes_validate

    return (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
            / SOURCE_VERSION / "_definitions.json")


def to_v2(schema: Any, *, gvk: bool = False) -> Any:
    """One JSON Schema node back in swagger v2 form (see the module docstring)."""
    if isinstance(schema, list):
        return [to_v2(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _KEPT:
            continue
        elif key == "$ref":
            out[key] = "#/definitions/" + value.removeprefix(_REF_PREFIX)
        elif key == "type":
            types = [t for t in (value if isinstance(value, list) else [value]) if t != "null"]
            out[key] = types[0]
        elif key == "properties":
            out[key] = {name: _property(name, prop, gvk) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = to_v2(value)
        else:
            out[key] = value
    return out


def _property(name: str, prop: Any, gvk: bool) -> Any:
    converted = to_v2(prop)
    if gvk and name in ("apiVersion", "kind"):
        # openapi2jsonschema pins each kind's apiVersion/kind with an enum; the API
        # server's v2 document has none.
        converted.pop("enum", None)
    return converted


def _refs(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            found.add(ref.removeprefix(_REF_PREFIX))
        for value in schema.values():
            found |= _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _refs(value)
    return found


def build(source: Mapping[str, Any]) -> dict[str, Any]:
    """The trimmed v2 document for the definitions in ``source`` (its ``$defs``)."""
    defs = source["$defs"]
    wanted: set[str] = set()
    pending = list(ROOTS)
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted.add(name)
        pending.extend(_refs(defs[name]) - wanted)
    definitions = {}
    for name in sorted(wanted):
        if name in _V2_FORMS:
            definitions[name] = dict(_V2_FORMS[name])
        else:
            definition = defs[name]
            definitions[name] = to_v2(
                definition, gvk="x-kubernetes-group-version-kind" in definition)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": {},
        "definitions": definitions,
    }


def render(document: Mapping[str, Any]) -> str:
    """The file's exact text (sorted keys, one-space indent, trailing newline)."""
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    with source_path().open(encoding="utf-8") as stream:
        source = json.load(stream)
    OUTPUT.write_text(render(build(source)), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
