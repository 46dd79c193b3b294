"""kube-apiserver's OwnerReferencesPermissionEnforcement admission plugin, as an emulator hook.

The plugin (kubernetes ``plugin/pkg/admission/gc/gc_admission.go``, ``gcPermissionsEnforcement``;
off in a default kube-apiserver, on by default in OpenShift) guards garbage-collection
metadata on every create and update:

* a write that changes ``metadata.ownerReferences`` (``isChangingOwnerReference``; on a
  create: any owner reference at all) needs ``delete`` on the object itself — except a
  create since Kubernetes 1.20 ("you logically had the power to never create it");
* each owner reference that becomes blocking — ``blockOwnerDeletion: true`` on a new
  reference, or on one that was not blocking before, matched by ``uid``
  (``newBlockingOwnerDeletionRefs``) — needs ``update`` on the *owner's* ``finalizers``
  subresource (``ownerRefToDeleteAttributeRecords``: verb ``update``, resource the
  owner's, subresource ``finalizers``, name the owner's). Otherwise the request is 403:
  ``<resource> "<name>" is forbidden: cannot set blockOwnerDeletion if an ownerReference
  refers to a resource you can't set finalizers on: <reason>, <error>`` (with RBAC the
  reason is empty and the error nil, hence the familiar ``: , <nil>`` ending).
* ``pods/status`` is exempt (``whiteList``); status subresources cannot change metadata.

The emulator has one requester, so :func:`owner_references_permission_enforcement` takes
what that requester may do as a predicate; :func:`chart_grants` reads the operator's
namespaced rules from the Helm chart (``charts/headwater/templates/_rbac-rules.tpl``),
which is the identity every operator request really has. With
``HEADWATER_TEST_ADMISSION=OwnerReferencesPermissionEnforcement`` the ``emulator``
fixture (``conftest.py``) installs the hook for the whole api suite — then every object
a *test* creates is judged as if the operator had sent it.

Patches are judged on the object they produce: a JSON patch (a list) as JSON patch, any
other body as a merge patch; a strategic-merge patch that lists only some owner
references would merge by ``uid`` on a real server, which this hook does not model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from headwater_dev.emulator import AdmissionHook, ApiPath, BackgroundEmulator
from headwater_dev.resources import ResourceSpec
from headwater_dev.store import ApiError, apply_patch

PLUGIN = "OwnerReferencesPermissionEnforcement"
RBAC_RULES = Path(__file__).resolve().parents[2] / "charts/headwater/templates/_rbac-rules.tpl"
WORKLOAD_RULES = "headwater.rbac.workloadRules"

Grant = tuple[str, str, str]
"""``(apiGroup, resource or resource/subresource, verb)``."""
May = Callable[[str, str, str], bool]
"""``may(api_group, resource, verb)``: whether the requester is allowed."""


def chart_grants(path: Path = RBAC_RULES, define: str = WORKLOAD_RULES) -> frozenset[Grant]:
    """The grants of one ``define`` block of the chart's RBAC rules template.

    The workload rules are plain YAML inside the block (no template expressions), so
    they are read as they ship; a rule the chart adds is seen here at once.
    """
    text = path.read_text(encoding="utf-8")
    match = re.search(r'\{\{-? define "' + re.escape(define) + r'" -?\}\}(.*?)\{\{-? end \}\}',
                      text, re.DOTALL)
    if match is None:
        raise LookupError(f"{path} has no define {define!r}")
    rules = yaml.safe_load(match.group(1)) or []
    return frozenset((group, resource, verb) for rule in rules
                     for group in rule["apiGroups"] for resource in rule["resources"]
                     for verb in rule["verbs"])


def may_from(grants: Iterable[Grant]) -> May:
    """A predicate over explicit grants (no wildcards: the chart has none)."""
    allowed = frozenset(grants)
    return lambda group, resource, verb: (group, resource, verb) in allowed


def _blocking(refs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [ref for ref in refs if ref.get("blockOwnerDeletion") is True]


def new_blocking_refs(new: Iterable[Mapping[str, Any]],
                      old: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]]:
    """References that become blocking: new ones, or ones not blocking before (by uid)."""
    if old is None:
        return _blocking(new)
    before = {ref.get("uid"): ref for ref in old}
    return [ref for ref in _blocking(new)
            if ref.get("uid") not in before or before[ref["uid"]].get("blockOwnerDeletion")
            is not True]


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _qualified(spec: ResourceSpec) -> str:
    """``schema.GroupResource.String()``: ``pods``, ``flowruns.headwater.dev``."""
    return f"{spec.plural}.{spec.group}" if spec.group else spec.plural


def _forbidden(spec: ResourceSpec, name: str, detail: str) -> ApiError:
    """``admission.NewForbidden`` → ``apierrors.NewForbidden`` (403, reason Forbidden)."""
    return ApiError(403, "Forbidden", f'{_qualified(spec)} "{name}" is forbidden: {detail}',
                    {"name": name, "group": spec.group, "kind": spec.plural})


def owner_references_permission_enforcement(
    resources: Callable[[], Iterable[ResourceSpec]], may: May,
    current: Callable[[ResourceSpec, str | None, str], Mapping[str, Any] | None],
) -> AdmissionHook:
    """The plugin as an :data:`AdmissionHook`.

    ``resources`` is the REST mapper (owner kind → resource), ``may`` the authorizer,
    ``current(spec, namespace, name)`` the stored object an update or patch changes.
    """

    def admit(verb: str, spec: ResourceSpec, path: ApiPath, body: Any) -> None:
        if verb not in ("create", "update", "patch") or path.subresource:
            return  # pods/status is whitelisted; other subresources keep the metadata
        old = None if verb == "create" else current(spec, path.namespace, path.name or "")
        new = body
        if verb == "patch":
            if old is None:
                return  # the server answers 404 itself
            new = apply_patch(dict(old), "json" if isinstance(body, list) else "merge", body)
        if not isinstance(new, Mapping):
            return
        new_refs = (new.get("metadata") or {}).get("ownerReferences") or []
        old_refs = None if old is None else (old.get("metadata") or {}).get(
            "ownerReferences") or []
        name = str((new.get("metadata") or {}).get("name") or path.name or "")
        if old_refs is not None and list(old_refs) == list(new_refs):
            return  # not changing owner references: always allowed
        if old_refs is None and not new_refs:
            return
        if verb != "create" and not may(spec.group, spec.plural, "delete"):
            raise _forbidden(spec, name, "cannot set an ownerRef on a resource you can't "
                                         "delete: , <nil>")
        for ref in new_blocking_refs(new_refs, old_refs):
            group, version = _group_version(str(ref.get("apiVersion") or ""))
            owners = [owner for owner in resources() if (owner.group, owner.version,
                                                           owner.kind) ==
                      (group, version, ref.get("kind"))]
            if not owners:
                raise _forbidden(spec, name, (
                    "cannot set blockOwnerDeletion in this case because cannot find "
                    f"RESTMapping for APIVersion {ref.get('apiVersion')} Kind "
                    f"{ref.get('kind')}: no matches for kind \"{ref.get('kind')}\" in "
                    f'version "{ref.get("apiVersion")}"'))
            for owner in owners:
                if not may(owner.group, f"{owner.plural}/finalizers", "update"):
                    raise _forbidden(spec, name, (
                        "cannot set blockOwnerDeletion if an ownerReference refers to a "
                        "resource you can't set finalizers on: , <nil>"))

    return admit


def install(emulator: BackgroundEmulator, may: May | None = None) -> AdmissionHook:
    """Add the plugin to ``emulator``, judging requests by the chart's operator grants."""
    api = emulator.emulator
    store = api.store

    def current(spec: ResourceSpec, namespace: str | None, name: str
                ) -> Mapping[str, Any] | None:
        try:
            return store.get(spec, namespace if spec.namespaced else None, name)
        except ApiError:
            return None

    hook = owner_references_permission_enforcement(
        lambda: store.resources, may or may_from(chart_grants()), current)
    api.admission_hooks.append(hook)
    return hook
