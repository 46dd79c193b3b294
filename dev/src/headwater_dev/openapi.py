"""The OpenAPI documents a Kubernetes 1.32 API server publishes, for the kinds it serves.

``kubectl`` reads them: ``kubectl explain`` renders fields from ``/openapi/v3``, and
``kubectl apply``/``create`` (``--validate=strict``, the default) first asks
``/openapi/v3/apis/<group>/<version>`` whether the kind's PATCH operation takes the
``fieldValidation`` query parameter (``k8s.io/cli-runtime`` ``QueryParamVerifierV3``) and,
when it does, leaves validation to the server. Without these documents every
``kubectl apply`` against the emulator failed with "failed to download openapi".

What is published, per served kind, as the real server builds it:

* **custom resources** — apiextensions-apiserver v0.32.9
  ``pkg/controller/openapi/builder/builder.go``: the version's structural schema, with
  ``x-kubernetes-int-or-string`` unfolded into ``anyOf: [integer, string]``, ``metadata``
  replaced by a reference to ``ObjectMeta``, ``apiVersion`` and ``kind`` taken from
  ``TypeMeta``, and ``x-kubernetes-group-version-kind``; a ``<Kind>List`` schema; the REST
  operations (list, create, deletecollection, read, replace, delete, patch, and the status
  subresource's read/replace/patch) with their query parameters and
  ``x-kubernetes-action``/``x-kubernetes-group-version-kind``. Schema names are
  REST-friendly (``headwater.dev/v1alpha1.Flow`` → ``dev.headwater.v1alpha1.Flow``).
* **built-in kinds** — their definitions from the pinned Kubernetes 1.32 OpenAPI
  (``definitions`` given to :class:`OpenAPI`), with the same operations.

``/openapi/v3`` lists one document per group-version (``serverRelativeURL`` with a
content hash); each document holds its paths and the closure of the schemas they
reference. ``/openapi/v2`` is the whole API in one Swagger 2.0 document, served as JSON
to clients that accept JSON; a client that accepts only the protobuf encoding (client-go's
``OpenAPISchema``) gets 406 Not Acceptable.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import aiohttp.web

from headwater_dev import discovery
from headwater_dev.apierrors import ApiError
from headwater_dev.resources import ResourceSpec

JsonObject = dict[str, Any]

V2_PREFIX = "#/definitions/"
V3_PREFIX = "#/components/schemas/"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
DELETE_OPTIONS = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
WATCH_EVENT = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent"

_METADATA_DESCRIPTION = ("Standard object's metadata. More info: https://git.k8s.io/community/"
                         "contributors/devel/sig-architecture/api-conventions.md#metadata")
_LIST_METADATA_DESCRIPTION = ("Standard list metadata. More info: https://git.k8s.io/community/"
                              "contributors/devel/sig-architecture/api-conventions.md#types-"
                              "kinds")
_API_VERSION = {"type": "string", "description": (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#resources")}
_KIND = {"type": "string", "description": (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds")}

PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/apply-patch+yaml")
BUILTIN_PATCH_TYPES = (*PATCH_TYPES[:2], "application/strategic-merge-patch+json",
                       PATCH_TYPES[2])

# Query parameters, by the options struct the server decodes them into
# (k8s.io/apiserver pkg/endpoints/installer.go AddObjectParams).
_PARAMETERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "write": (
        ("dryRun", "string", "When present, indicates that modifications should not be "
         "persisted. The only valid value is All."),
        ("fieldManager", "string", "A name associated with the actor or entity that is "
         "making these changes."),
        ("fieldValidation", "string", "How the server handles unknown or duplicate fields in "
         "the request: Ignore, Warn (the default) or Strict."),
    ),
    "patch": (("force", "boolean", "Force is going to force Apply requests."),),
    "delete": (
        ("dryRun", "string", "When present, indicates that modifications should not be "
         "persisted. The only valid value is All."),
        ("gracePeriodSeconds", "integer", "The duration in seconds before the object "
         "should be deleted."),
        ("propagationPolicy", "string", "Whether and how garbage collection will be "
         "performed: Orphan, Background or Foreground."),
    ),
    "list": (
        ("allowWatchBookmarks", "boolean", "Requests watch events with type BOOKMARK."),
        ("continue", "string", "The continue option, from a previous list's metadata."),
        ("fieldSelector", "string", "A selector to restrict the returned objects by their "
         "fields."),
        ("labelSelector", "string", "A selector to restrict the returned objects by their "
         "labels."),
        ("limit", "integer", "The maximum number of responses to return for a list call."),
        ("resourceVersion", "string", "Sets a constraint on what resource versions a "
         "request may be served from."),
        ("resourceVersionMatch", "string", "Determines how resourceVersion is applied to "
         "list calls."),
        ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        ("watch", "boolean", "Watch for changes to the described resources."),
    ),
}


def rest_friendly_name(group: str, version: str, kind: str) -> str:
    """``util.ToRESTFriendlyName``: the group's domain reversed (``dev.headwater.v1alpha1``)."""
    parts = [*reversed(group.split(".")), version, kind] if group else [version, kind]
    return ".".join(parts)


def _ref(name: str, *, v2: bool) -> JsonObject:
    return {"$ref": (V2_PREFIX if v2 else V3_PREFIX) + name}


def _ref_with_description(name: str, description: str, *, v2: bool) -> JsonObject:
    # OpenAPI 3.0 ignores siblings of $ref: the v3 builder wraps such refs in allOf.
    if v2:
        return {**_ref(name, v2=True), "description": description}
    return {"allOf": [_ref(name, v2=False)], "description": description}


def unfold(schema: Any) -> Any:
    """``Structural.Unfold``: int-or-string nodes spell out their ``anyOf``."""
    if not isinstance(schema, Mapping):
        return schema
    out: JsonObject = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: unfold(child) for name, child in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            out[key] = unfold(value)
        else:
            out[key] = copy.deepcopy(value)
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def custom_resource_schema(spec: ResourceSpec, *, v2: bool) -> JsonObject:
    """The published schema of a CRD version's kind (``buildKubeNative``)."""
    schema: JsonObject = unfold(spec.schema or {"type": "object"})
    properties = schema.setdefault("properties", {})
    properties["metadata"] = _ref_with_description(OBJECT_META, _METADATA_DESCRIPTION, v2=v2)
    properties["apiVersion"] = dict(_API_VERSION)
    properties["kind"] = dict(_KIND)
    schema["x-kubernetes-group-version-kind"] = [
        {"group": spec.group, "kind": spec.kind, "version": spec.version}]
    return schema


def list_schema(spec: ResourceSpec, item_name: str, *, v2: bool) -> JsonObject:
    """The ``<Kind>List`` schema (``buildListSchema``)."""
    return {
        "type": "object",
        "description": f"{spec.kind}List is a list of {spec.kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": dict(_API_VERSION),
            "items": {"type": "array", "items": _ref(item_name, v2=v2), "description": (
                f"List of {spec.plural}. More info: https://git.k8s.io/community/contributors"
                "/devel/sig-architecture/api-conventions.md")},
            "kind": dict(_KIND),
            "metadata": _ref_with_description(LIST_META, _LIST_METADATA_DESCRIPTION, v2=v2),
        },
        "x-kubernetes-group-version-kind": [
            {"group": spec.group, "kind": f"{spec.kind}List", "version": spec.version}],
    }


def _operation_prefix(spec: ResourceSpec) -> str:
    """The group-version part of operation ids (``GetOperationIDAndTags``): ``coreV1``,
    ``coordinationV1`` (``.k8s.io`` dropped), ``headwaterDevV1alpha1``."""
    group = spec.group.removesuffix(".k8s.io") if spec.group else "core"
    words = [w for w in group.replace("-", ".").split(".") if w]
    head = words[0] + "".join(w.capitalize() for w in words[1:])
    return head + spec.version.capitalize()


class OpenAPI:
    """Builds and serves the OpenAPI documents of the kinds being served.

    ``definitions`` are the built-in definitions (Swagger 2.0 form, ``#/definitions/``
    references) of the pinned Kubernetes version; ``definition_of(spec)`` names the
    definition of a built-in kind (None when it has none: then only its paths are
    published, with an untyped schema).
    """

    def __init__(self, definitions: Mapping[str, Any],
                 definition_of: Callable[[ResourceSpec], str | None]) -> None:
        self._definitions = definitions
        self._definition_of = definition_of
        self._cache: dict[tuple[Any, ...], JsonObject] = {}

    # --- schemas -----------------------------------------------------------------------
    def _kind_schemas(self, spec: ResourceSpec, *, v2: bool) -> tuple[str, str, JsonObject]:
        """(item schema name, list schema name, the schemas they add)."""
        if spec.schema is not None:
            name = rest_friendly_name(spec.group, spec.version, spec.kind)
            list_name = f"{name}List"
            return name, list_name, {
                name: custom_resource_schema(spec, v2=v2),
                list_name: list_schema(spec, name, v2=v2)}
        name = self._definition_of(spec) or rest_friendly_name(
            spec.group or "core", spec.version, spec.kind)
        list_name = f"{name}List"
        added: JsonObject = {}
        if name not in self._definitions:
            added[name] = {"type": "object", "x-kubernetes-group-version-kind": [
                {"group": spec.group, "kind": spec.kind, "version": spec.version}]}
        if list_name not in self._definitions:
            added[list_name] = list_schema(spec, name, v2=v2)
        return name, list_name, added

    def _definition(self, name: str, extra: Mapping[str, Any], *, v2: bool) -> Any:
        if name in extra:
            return extra[name]
        value = self._definitions.get(name)
        if value is None or v2:
            return value
        return json.loads(json.dumps(value).replace(f'"{V2_PREFIX}', f'"{V3_PREFIX}'))

    def _closure(self, roots: Iterable[str], extra: Mapping[str, Any], *, v2: bool
                 ) -> JsonObject:
        """Every schema ``roots`` reference, directly or not."""
        prefix = V2_PREFIX if v2 else V3_PREFIX
        found: JsonObject = {}
        pending = list(roots)
        while pending:
            name = pending.pop()
            if name in found:
                continue
            schema = self._definition(name, extra, v2=v2)
            if schema is None:
                continue
            found[name] = schema
            pending.extend(_references(schema, prefix))
        return dict(sorted(found.items()))

    # --- paths -------------------------------------------------------------------------
    def _paths(self, spec: ResourceSpec, name: str, list_name: str, *, v2: bool
               ) -> JsonObject:
        base = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
        collection = (f"{base}/namespaces/{{namespace}}/{spec.plural}" if spec.namespaced
                      else f"{base}/{spec.plural}")
        scope = "Namespaced" if spec.namespaced else ""
        prefix = _operation_prefix(spec)
        gvk = {"group": spec.group, "kind": spec.kind, "version": spec.version}
        patch_types = PATCH_TYPES if spec.schema is not None else BUILTIN_PATCH_TYPES

        def operation(verb: str, action: str, description: str, returns: str,
                      params: tuple[str, ...] = (), *, body: str | None = None,
                      consumes: tuple[str, ...] = ("application/json", "application/yaml"),
                      sub: str = "") -> JsonObject:
            op_id = f"{verb}{prefix}{scope}{spec.kind}{sub.capitalize()}"
            op: JsonObject = {
                "description": description, "operationId": op_id,
                "tags": [prefix],
                "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
            }
            parameters = [_query(p, t, d, v2=v2) for group in params
                          for p, t, d in _PARAMETERS[group]]
            if parameters:
                op["parameters"] = parameters
            if v2:
                op["produces"] = ["application/json", "application/yaml"]
                op["responses"] = {"200": {"description": "OK",
                                           "schema": _ref(returns, v2=True)},
                                   "401": {"description": "Unauthorized"}}
                if body is not None:
                    op["consumes"] = list(consumes)
                    op.setdefault("parameters", []).append(
                        {"name": "body", "in": "body", "required": True,
                         "schema": _ref(body, v2=True)})
            else:
                op["responses"] = {
                    "200": {"description": "OK", "content": {
                        t: {"schema": _ref(returns, v2=False)}
                        for t in ("application/json", "application/yaml")}},
                    "401": {"description": "Unauthorized"}}
                if body is not None:
                    op["requestBody"] = {"required": True, "content": {
                        t: {"schema": _ref(body, v2=False)} for t in consumes}}
            return op

        def shared(*names: str) -> list[JsonObject]:
            out = [_path_param(n, v2=v2) for n in names]
            out.append(_query("pretty", "string", "If 'true', then the output is pretty "
                              "printed.", v2=v2))
            return out

        namespaced_params = ("namespace",) if spec.namespaced else ()
        kind = spec.kind
        paths: JsonObject = {
            collection: {
                "get": operation("list", "list", f"list or watch objects of kind {kind}",
                                 list_name, ("list",)),
                "post": operation("create", "post", f"create {_article(kind)}{kind}", name,
                                  ("write",), body=name),
                "delete": operation("deletecollection", "deletecollection",
                                    f"delete collection of {kind}", STATUS,
                                    ("delete", "list")),
                "parameters": shared(*namespaced_params),
            },
            f"{collection}/{{name}}": {
                "get": operation("read", "get", f"read the specified {kind}", name),
                "put": operation("replace", "put", f"replace the specified {kind}", name,
                                 ("write",), body=name),
                "patch": operation("patch", "patch", f"partially update the specified {kind}",
                                   name, ("write", "patch"), body=PATCH,
                                   consumes=patch_types),
                "delete": operation("delete", "delete", f"delete {_article(kind)}{kind}",
                                    STATUS, ("delete",)),
                "parameters": shared("name", *namespaced_params),
            },
        }
        if spec.status_subresource:
            paths[f"{collection}/{{name}}/status"] = {
                "get": operation("read", "get", f"read status of the specified {kind}", name,
                                 sub="status"),
                "put": operation("replace", "put", f"replace status of the specified {kind}",
                                 name, ("write",), body=name, sub="status"),
                "patch": operation("patch", "patch",
                                   f"partially update status of the specified {kind}", name,
                                   ("write", "patch"), body=PATCH, consumes=patch_types,
                                   sub="status"),
                "parameters": shared("name", *namespaced_params),
            }
        if spec.namespaced:
            paths[f"{base}/{spec.plural}"] = {
                "get": operation("list", "list", f"list or watch objects of kind {kind}",
                                 list_name, ("list",)) | {
                    "operationId": f"list{prefix}{kind}ForAllNamespaces"},
                "parameters": shared(),
            }
        return paths

    # --- documents ---------------------------------------------------------------------
    def v3_document(self, specs: Iterable[ResourceSpec], group: str, version: str
                    ) -> JsonObject | None:
        """``/openapi/v3/apis/<group>/<version>`` (or ``api/v1``); None when not served."""
        served = [s for s in specs if s.group == group and s.version == version]
        if not served:
            return None
        return self._document(served, v2=False)

    def v2_document(self, specs: Iterable[ResourceSpec]) -> JsonObject:
        """``/openapi/v2``: every served kind in one Swagger 2.0 document."""
        return self._document(list(specs), v2=True)

    def _document(self, specs: list[ResourceSpec], *, v2: bool) -> JsonObject:
        key = (v2, tuple((s.key, json.dumps(s.schema, sort_keys=True) if s.schema else "")
                         for s in specs))
        if key in self._cache:
            return self._cache[key]
        paths: JsonObject = {}
        extra: JsonObject = {}
        roots = {STATUS, PATCH, DELETE_OPTIONS}
        for spec in specs:
            name, list_name, added = self._kind_schemas(spec, v2=v2)
            extra.update(added)
            roots.update((name, list_name))
            paths.update(self._paths(spec, name, list_name, v2=v2))
        schemas = self._closure(roots, extra, v2=v2)
        title = {"title": "Kubernetes", "version": discovery.SERVER_VERSION["gitVersion"]}
        if v2:
            document: JsonObject = {"swagger": "2.0", "info": title,
                                    "paths": dict(sorted(paths.items())),
                                    "definitions": schemas}
        else:
            document = {"openapi": "3.0.0", "info": title,
                        "paths": dict(sorted(paths.items())),
                        "components": {"schemas": schemas}}
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = document
        return document

    def v3_index(self, specs: Iterable[ResourceSpec]) -> JsonObject:
        """``/openapi/v3``: one entry per group-version, its URL carrying a content hash."""
        specs = list(specs)
        paths: JsonObject = {}
        for group, version in dict.fromkeys((s.group, s.version) for s in specs):
            document = self.v3_document(specs, group, version)
            digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()
            path = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest[:128]}"}
        return {"paths": dict(sorted(paths.items()))}

    def serve(self, request: aiohttp.web.BaseRequest, specs: Iterable[ResourceSpec]
              ) -> aiohttp.web.StreamResponse:
        """Answer ``/openapi/v2``, ``/openapi/v3`` and ``/openapi/v3/<group-version>``."""
        parts = [part for part in request.path.split("/") if part]
        specs = list(specs)
        document: JsonObject | None = None
        if parts == ["openapi", "v2"]:
            if not _accepts_json(request.headers.get("Accept")):
                error = ApiError(406, "NotAcceptable", "only the following media types are "
                                                       "accepted: application/json")
                return _json(error.status(), 406)
            document = self.v2_document(specs)
        elif parts == ["openapi", "v3"]:
            document = self.v3_index(specs)
        elif parts[:2] == ["openapi", "v3"] and parts[2:3] == ["api"] and len(parts) == 4:
            document = self.v3_document(specs, "", parts[3])
        elif parts[:2] == ["openapi", "v3"] and parts[2:3] == ["apis"] and len(parts) == 5:
            document = self.v3_document(specs, parts[3], parts[4])
        if document is None:
            return _json(ApiError(404, "NotFound", "the server could not find the requested "
                                                   "resource").status(), 404)
        return _json(document)


def _json(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(text=json.dumps(payload), status=status,
                                content_type="application/json")


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    types = [part.split(";")[0].strip() for part in accept.split(",")]
    return any(t in ("application/json", "*/*", "application/*") for t in types)


def _query(name: str, type_: str, description: str, *, v2: bool) -> JsonObject:
    if v2:
        return {"name": name, "in": "query", "type": type_, "uniqueItems": True,
                "description": description}
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": type_, "uniqueItems": True}}


def _path_param(name: str, *, v2: bool) -> JsonObject:
    description = ("object name and auth scope, such as for teams and projects"
                   if name == "namespace" else "name of the object")
    if v2:
        return {"name": name, "in": "path", "required": True, "type": "string",
                "uniqueItems": True, "description": description}
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "uniqueItems": True}}


def _article(noun: str) -> str:
    """``endpoints.GetArticleForNoun(noun, " ")``: "a " or "an "."""
    return "an " if noun[:1].lower() in "aeiou" else "a "


def _references(value: Any, prefix: str) -> Iterable[str]:
    if isinstance(value, Mapping):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix):
            yield ref[len(prefix):]
        for child in value.values():
            yield from _references(child, prefix)
    elif isinstance(value, list):
        for child in value:
            yield from _references(child, prefix)


__all__ = [
    "OpenAPI",
    "custom_resource_schema",
    "list_schema",
    "rest_friendly_name",
    "unfold",
]
