"""The resource kinds the emulated API server knows, and their discovery information.

Kubernetes clients (kopf, ``kubectl``, the ``kubernetes`` package) discover resources
before they use them, so the emulator must declare every kind it serves: ours (loaded
from the generated ``crds/*.yaml`` when present, with the names of
``docs/api-outline.md`` as the fallback until the generator has run), core ``v1`` pods,
events, namespaces and nodes, ``events.k8s.io/v1`` events, coordination leases and
kopf's peering resources. A CRD version's ``additionalPrinterColumns`` are kept, for
the ``Table`` answers of ``kubectl get`` (see ``tables.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from headwater.contract import GROUP, VERSION

from headwater_operator.api.resource import PrinterColumn

ALL_VERBS = frozenset(
    {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
)


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
                 categories=("all",), status_subresource=True, extra_subresources=("log",)),
    ResourceSpec("", "v1", "events", "Event", singular="event", short_names=("ev",)),
    ResourceSpec("", "v1", "configmaps", "ConfigMap", singular="configmap", short_names=("cm",)),
    ResourceSpec("", "v1", "secrets", "Secret", singular="secret"),
    ResourceSpec("", "v1", "serviceaccounts", "ServiceAccount", singular="serviceaccount",
                 short_names=("sa",)),
    ResourceSpec("events.k8s.io", "v1", "events", "Event", singular="event", short_names=("ev",)),
    ResourceSpec("coordination.k8s.io", "v1", "leases", "Lease", singular="lease"),
    ResourceSpec("kopf.dev", "v1", "kopfpeerings", "KopfPeering", singular="kopfpeering"),
    ResourceSpec("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering",
                 namespaced=False, singular="clusterkopfpeering"),
)

# Used only until `python -m headwater_operator.crdgen` has written crds/*.yaml.
FALLBACK_HEADWATER_RESOURCES: tuple[ResourceSpec, ...] = tuple(
    ResourceSpec(GROUP, VERSION, plural, kind, singular=kind.lower(), short_names=shorts,
                 categories=("headwater",), status_subresource=True)
    for plural, kind, shorts in (
        ("flows", "Flow", ("hwflow", "hwf")),
        ("deployments", "Deployment", ("hwdeploy", "hwd")),
        ("schedules", "Schedule", ("hwsched", "hws")),
        ("flowruns", "FlowRun", ("hwrun", "hwr")),
    )
)


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


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=64)
def _crd_specs_of_file(path: str, mtime_ns: int) -> tuple[ResourceSpec, ...]:
    # Cached by modification time: every api test starts an emulator, and parsing the
    # generated CRDs (large schemas) would otherwise dominate its start-up.
    with open(path, encoding="utf-8") as stream:
        docs = list(yaml.load_all(stream, Loader=_YAML_LOADER))
    return tuple(spec for doc in docs
                 if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"
                 for spec in specs_from_crd(doc))


def load_crd_specs(paths: Iterable[Path]) -> list[ResourceSpec]:
    """Read every CustomResourceDefinition in the given YAML files (multi-document ok)."""
    result: list[ResourceSpec] = []
    for path in paths:
        result.extend(_crd_specs_of_file(str(path), path.stat().st_mtime_ns))
    return result


def find_crds_dir(start: Path | None = None) -> Path | None:
    """The repository's ``crds/`` directory, searched upwards from ``start`` (or this file)."""
    here = (start or Path(__file__)).resolve()
    for parent in [here, *here.parents]:
        candidate = parent / "crds"
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate
    return None


def default_resources(crds_dir: Path | None = None) -> list[ResourceSpec]:
    """Built-in kinds plus Headwater's, from ``crds_dir`` (or found) or the fallback table."""
    directory = crds_dir or find_crds_dir()
    ours = load_crd_specs(sorted(directory.glob("*.yaml"))) if directory else []
    known = {spec.key for spec in ours}
    fallback = [spec for spec in FALLBACK_HEADWATER_RESOURCES if spec.key not in known]
    # The fallback fills only kinds the generated YAML does not have yet.
    return [*BUILTIN_RESOURCES, *ours, *(fallback if not ours else [])]
