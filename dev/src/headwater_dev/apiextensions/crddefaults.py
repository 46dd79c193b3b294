"""What the API server fills into a v1 CustomResourceDefinition before validating it.

Validation must run after these, as in the real server: the request body is decoded
with the scheme's defaulting, then the registry strategy prepares the object, then it is
validated (so, e.g., a CRD without ``listKind`` is never refused for it).

* :func:`default_crd` — apiextensions-apiserver v0.32.9 pkg/apis/apiextensions/v1
  defaults.go (``SetDefaults_CustomResourceDefinition``,
  ``SetDefaults_CustomResourceDefinitionSpec``, ``SetDefaults_ServiceReference``):
  ``names.singular`` is the lower-cased kind, ``names.listKind`` is ``<kind>List``,
  ``conversion`` is ``{strategy: None}``, a webhook service's ``port`` is 443, and an
  empty ``status.storedVersions`` gets the first storage version. ``served`` and
  ``storage`` have no defaults: v1 requires them (a missing one decodes as false).
* :func:`prepare_for_create` / :func:`prepare_for_update` — pkg/registry/
  customresourcedefinition/strategy.go ``PrepareForCreate``/``PrepareForUpdate``: a
  create drops the status the client sent and records the storage version as stored; an
  update keeps the stored status and adds the (new) storage version to it. (Generation
  and the feature-gated field drops are the store's business.)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def default_crd(crd: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``crd`` with the v1 defaults set."""
    out: dict[str, Any] = copy.deepcopy(dict(crd))
    spec = out.get("spec")
    if isinstance(spec, dict):
        _default_spec(spec)
        status = out.setdefault("status", {})
        if isinstance(status, dict) and not status.get("storedVersions"):
            storage = _first_storage_version(spec)
            if storage is not None:
                status["storedVersions"] = [storage]
    return out


def _default_spec(spec: dict[str, Any]) -> None:
    names = spec.get("names")
    if isinstance(names, dict):
        kind = names.get("kind") or ""
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind") and kind:
            names["listKind"] = f"{kind}List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    service = _webhook_service(spec["conversion"])
    if service is not None and service.get("port") is None:
        service["port"] = 443


def _webhook_service(conversion: Any) -> dict[str, Any] | None:
    if not isinstance(conversion, dict):
        return None
    webhook = conversion.get("webhook")
    config = webhook.get("clientConfig") if isinstance(webhook, dict) else None
    service = config.get("service") if isinstance(config, dict) else None
    return service if isinstance(service, dict) else None


def _first_storage_version(spec: Mapping[str, Any]) -> str | None:
    for version in spec.get("versions") or []:
        if isinstance(version, Mapping) and version.get("storage") is True:
            name = version.get("name")
            return name if isinstance(name, str) else ""
    return None


def prepare_for_create(crd: Mapping[str, Any]) -> dict[str, Any]:
    """``PrepareForCreate``: status cleared, the storage version recorded as stored."""
    out: dict[str, Any] = copy.deepcopy(dict(crd))
    out["status"] = {}
    storage = _first_storage_version(out.get("spec") or {})
    if storage is not None:
        out["status"]["storedVersions"] = [storage]
    return out


def prepare_for_update(crd: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """``PrepareForUpdate``: the stored status kept, a new storage version added to it."""
    out: dict[str, Any] = copy.deepcopy(dict(crd))
    out["status"] = copy.deepcopy(dict(old.get("status") or {}))
    storage = _first_storage_version(out.get("spec") or {})
    stored = out["status"].setdefault("storedVersions", [])
    if storage is not None and storage not in stored:
        stored.append(storage)
    return out


__all__ = ["default_crd", "prepare_for_create", "prepare_for_update"]
