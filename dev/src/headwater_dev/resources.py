"""The resource kinds the emulated API server knows, and their discovery information.

Kubernetes clients (kopf, ``kubectl``, the ``kubernetes`` package) discover resources
before they use them, so the emulator must declare every kind it serves: the built-in
ones here (core ``v1`` pods, events, namespaces, nodes, configmaps, secrets and service
accounts, ``events.k8s.io/v1`` events, coordination leases), and the custom ones, served
from their CustomResourceDefinitions once registered (:func:`specs_from_crd`): Headwater's
own, rendered from the API models, and kopf's peering CRDs. A CRD version's
``additionalPrinterColumns`` are kept, for the ``Table`` answers of ``kubectl get`` (see
``tables.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from headwater_operator.api.resource import PrinterColumn


def printer_columns_of(version: Mapping[str, Any]) -> tuple[PrinterColumn, ...]:
    """The ``additionalPrinterColumns`` of one entry of a CRD's ``spec.versions``."""
    return tuple(
        PrinterColumn(
            name=str(column["name"]), type=column["type"],
            json_path=str(column["jsonPath"]),
            description=str(column.get("description") or ""),
            priority=int(column.get("priority") or 0),
            format=str(column.get("format") or ""),
        )
        for column in version.get("additionalPrinterColumns") or ()
    )


@dataclass(frozen=True)
class ResourceSpec:
    """What the emulator needs to know about one served resource kind."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    extra_subresources: tuple[str, ...] = field(default=())
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False,
                                             repr=False)
    """The CRD's ``openAPIV3Schema``: unknown fields are pruned on write, as on a server."""
    printer_columns: tuple[PrinterColumn, ...] = field(default=(), compare=False, hash=False,
                                                       repr=False)
    """The CRD version's ``additionalPrinterColumns`` (none for the built-in kinds)."""

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str, str]:
        """(group, version, plural): how requests identify the resource."""
        return (self.group, self.version, self.plural)

    @property
    def subresources(self) -> tuple[str, ...]:
        """Every subresource name the resource serves, for discovery."""
        return (("status",) if self.status_subresource else ()) + self.extra_subresources


BUILTIN_RESOURCES: tuple[ResourceSpec, ...] = (
    ResourceSpec("", "v1", "namespaces", "Namespace", namespaced=False, singular="namespace",
                 short_names=("ns",), status_subresource=True),
    ResourceSpec("", "v1", "nodes", "Node", namespaced=False, singular="node",
                 short_names=("no",), status_subresource=True),
    ResourceSpec("", "v1", "pods", "Pod", singular="pod", short_names=("po",),
                 categories=("all",), status_subresource=True,
                 extra_subresources=("binding", "log")),
    ResourceSpec("", "v1", "events", "Event", singular="event", short_names=("ev",)),
    ResourceSpec("", "v1", "configmaps", "ConfigMap", singular="configmap", short_names=("cm",)),
    ResourceSpec("", "v1", "secrets", "Secret", singular="secret"),
    ResourceSpec("", "v1", "serviceaccounts", "ServiceAccount", singular="serviceaccount",
                 short_names=("sa",)),
    ResourceSpec("events.k8s.io", "v1", "events", "Event", singular="event", short_names=("ev",)),
    ResourceSpec("coordination.k8s.io", "v1", "leases", "Lease", singular="lease"),
)
"""The built-in kinds the emulator serves (custom resources come from CRDs)."""


def kopf_peering_crds() -> list[dict[str, Any]]:
    """kopf's two peering CRDs, as the chart installs them with HA replicas
    (``charts/headwater/templates/kopf-peering-crds.yaml``; kopf owns the status format,
    so the schema keeps any status)."""
    return [{
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.lower()}s.kopf.dev"},
        "spec": {
            "group": "kopf.dev", "scope": scope,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": f"{kind.lower()}s",
                      "singular": kind.lower()},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "kopf operator peering; status maps each running "
                                   "operator to its heartbeat.",
                    "properties": {"status": {"type": "object",
                                              "x-kubernetes-preserve-unknown-fields": True}},
                }},
                "additionalPrinterColumns": [{"name": "Age", "type": "date",
                                              "jsonPath": ".metadata.creationTimestamp"}],
            }],
        },
    } for scope, kind in (("Cluster", "ClusterKopfPeering"), ("Namespaced", "KopfPeering"))]

def specs_from_crd(crd: Mapping[str, Any]) -> list[ResourceSpec]:
    """One ResourceSpec per served version of a CustomResourceDefinition document."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    result = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        result.append(ResourceSpec(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            singular=names.get("singular", names["kind"].lower()),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            status_subresource="status" in (version.get("subresources") or {}),
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=printer_columns_of(version),
        ))
    return result


def headwater_crds() -> list[dict[str, Any]]:
    """Headwater's four CRDs, rendered from the API models (identical to ``crds/*.yaml``:
    CI fails on drift), so the emulator needs no checkout to find them."""
    from headwater_operator import crdgen
    from headwater_operator.api import RESOURCE_TYPES

    return [copy.deepcopy(crdgen.build_crd(cls)) for cls in RESOURCE_TYPES]


def default_crds() -> list[dict[str, Any]]:
    """The CRDs the emulator installs at start: Headwater's and kopf's peering CRDs."""
    return [*headwater_crds(), *kopf_peering_crds()]


def default_resources() -> list[ResourceSpec]:
    """The built-in kinds plus those the default CRDs serve (for tests of the bare store;
    the emulator itself serves CRD kinds only once their CRDs are registered)."""
    return [*BUILTIN_RESOURCES, *(spec for crd in default_crds() for spec in specs_from_crd(crd))]
