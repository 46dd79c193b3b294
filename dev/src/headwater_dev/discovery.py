"""API discovery documents, as a Kubernetes 1.32 API server renders them.

Clients discover what a server serves before they use it: ``kubectl`` maps kinds and
short names to resources through these documents, kopf finds its resources here, and an
operator that waits for its CRDs (``runner.wait_for_resources``) polls them. So they are
rendered from exactly the kinds the emulator serves at that moment, CRDs registered over
the API included, in the shapes of ``k8s.io/apimachinery/pkg/apis/meta/v1/types.go``
(``APIVersions``, ``APIGroupList``, ``APIGroup``, ``APIResourceList``) as served by
``k8s.io/apiserver/pkg/endpoints/discovery`` (legacy, unaggregated discovery):

* ``/api`` lists ``v1``; ``/apis`` lists every other group with its versions, the
  preferred version first by Kubernetes' version priority (GA before beta before alpha,
  higher numbers first: ``k8s.io/apimachinery/pkg/version/helpers.go``
  ``CompareKubeAwareVersionStrings``);
* ``/api/v1`` and ``/apis/<group>/<version>`` list the resources, each subresource as its
  own entry (``flowruns/status`` with verbs get/patch/update, ``pods/log`` with get) that
  carries the parent's kind and no short names or categories, as the real server does;
* an unknown group or version answers 404 NotFound.

Aggregated discovery (``apidiscovery.k8s.io/v2``) is not served: clients that ask for it
get the legacy documents with ``Content-Type: application/json``, which client-go
accepts as a server without aggregated discovery.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from headwater_dev.resources import ResourceSpec

JsonObject = dict[str, Any]

SERVER_VERSION: JsonObject = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.9+headwater-emulator",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2025-09-09T00:00:00Z",
    "goVersion": "go1.23.12",
    "compiler": "gc",
    "platform": "linux/amd64",
}
"""``/version``: the Kubernetes release whose behaviour the emulator follows."""

RESOURCE_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update",
                  "watch")
_SUBRESOURCE_VERBS = {"status": ("get", "patch", "update"), "log": ("get",),
                      "binding": ("create",)}
_SUBRESOURCE_KINDS = {"binding": "Binding"}
_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key: GA first, then beta, then alpha, higher numbers first; others last by name.

    As ``CompareKubeAwareVersionStrings`` orders ``v1 > v1beta2 > v1beta1 > v1alpha1`` and
    puts versions that do not look like Kubernetes versions after them, alphabetically.
    """
    match = _VERSION_RE.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = int(match[1]), match[2], int(match[3] or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, "")


def _group_versions(specs: Iterable[ResourceSpec], group: str) -> list[str]:
    return sorted({spec.version for spec in specs if spec.group == group},
                  key=version_priority)


def _version_entry(group: str, version: str) -> JsonObject:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_versions() -> JsonObject:
    """``/api``."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": "127.0.0.1"}]}


def api_group(specs: Iterable[ResourceSpec], group: str) -> JsonObject | None:
    """``/apis/<group>``, or None when nothing of the group is served."""
    specs = list(specs)
    versions = _group_versions(specs, group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group,
            "versions": [_version_entry(group, v) for v in versions],
            "preferredVersion": _version_entry(group, versions[0])}


def api_group_list(specs: Iterable[ResourceSpec]) -> JsonObject:
    """``/apis``: every served group but the core one, in order of first registration."""
    specs = list(specs)
    groups = list(dict.fromkeys(spec.group for spec in specs if spec.group))
    entries = [api_group(specs, group) for group in groups]
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{k: v for k, v in entry.items() if k not in ("kind", "apiVersion")}
                       for entry in entries if entry is not None]}


def _resource_entries(spec: ResourceSpec) -> list[JsonObject]:
    main: JsonObject = {
        "name": spec.plural, "singularName": spec.singular or spec.kind.lower(),
        "namespaced": spec.namespaced, "kind": spec.kind, "verbs": list(RESOURCE_VERBS),
    }
    if spec.short_names:
        main["shortNames"] = list(spec.short_names)
    if spec.categories:
        main["categories"] = list(spec.categories)
    entries = [main]
    for sub in spec.subresources:
        entries.append({"name": f"{spec.plural}/{sub}", "singularName": "",
                        "namespaced": spec.namespaced,
                        "kind": _SUBRESOURCE_KINDS.get(sub, spec.kind),
                        "verbs": list(_SUBRESOURCE_VERBS.get(sub, ("get",)))})
    return entries


def api_resource_list(specs: Iterable[ResourceSpec], group: str, version: str
                      ) -> JsonObject | None:
    """``/api/v1`` or ``/apis/<group>/<version>``, or None when that is not served."""
    served = [spec for spec in specs if spec.group == group and spec.version == version]
    if not served:
        return None
    document: JsonObject = {"kind": "APIResourceList"}
    if group:
        document["apiVersion"] = "v1"
    document["groupVersion"] = f"{group}/{version}" if group else version
    document["resources"] = [entry for spec in served for entry in _resource_entries(spec)]
    return document


def root_paths(specs: Iterable[ResourceSpec]) -> JsonObject:
    """``/``: the paths the server serves (``kubectl get --raw /``)."""
    paths = {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2", "/openapi/v3",
             "/readyz", "/version"}
    for spec in specs:
        if spec.group:
            paths.update({f"/apis/{spec.group}", f"/apis/{spec.group}/{spec.version}"})
    return {"paths": sorted(paths)}


__all__ = [
    "RESOURCE_VERBS",
    "SERVER_VERSION",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "root_paths",
    "version_priority",
]
