"""CustomResourceDefinitions served over the API: registered, named, established, removed.

``kubectl apply -f crds/`` against the emulator does what it does against a real API
server (apiextensions-apiserver v0.32.9):

* **create/update** decodes the body as the Go type ``apiextensions.k8s.io/v1
  CustomResourceDefinition`` (:func:`..strategies.decode_typed` against the pinned
  OpenAPI: a value of the wrong type is a 400, unknown fields — ``examples`` in a schema —
  are strict decoding errors for ``fieldValidation``, and are dropped), with the v1
  defaults (``pkg/apis/apiextensions/v1/defaults.go``, :mod:`.crddefaults`), runs the CRD
  strategy (``pkg/registry/customresourcedefinition/strategy.go``: status cleared on
  create and kept on update, ``storedVersions`` gains the storage version; no
  unconditional update) and validates (``ValidateCustomResourceDefinition[Update]``,
  :mod:`.crdvalidation`, CEL rules by :mod:`..cel`); an invalid CRD gets the server's 422.
* **naming and establishing**, which real controllers do a moment later
  (``pkg/controller/status/naming_controller.go``, ``pkg/controller/establish``), happen
  in-line right after the write: ``status.acceptedNames``, ``NamesAccepted`` (``NoConflicts``
  or the ``…Conflict`` reason with ``"<name>" is already in use``) and ``Established``
  (``InitialNamesAccepted``). Only then are the kinds served, so discovery, watches and
  writes of the new kind start exactly when a real server would serve them.
* **delete** adds the ``customresourcecleanup.apiextensions.k8s.io`` finalizer and a
  ``Terminating`` condition (``pkg/registry/customresourcedefinition/etcd.go`` ``Delete``);
  the cleanup (``pkg/controller/finalizer/crd_finalizer.go``) then deletes every instance,
  stops serving the kind and drops the finalizer, so the CRD goes.

Changing a CRD's schema re-serves its kinds with the new schema at once; stored objects
are not revalidated (as on a real server, they are checked on their next write).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from headwater_dev.apiextensions.crddefaults import (
    default_crd,
    prepare_for_create,
    prepare_for_update,
)
from headwater_dev.apiextensions.crdvalidation import validate_crd
from headwater_dev.cel import SchemaRules
from headwater_dev.fielderrors import FieldError
from headwater_dev.resources import ResourceSpec, specs_from_crd
from headwater_dev.store import DeleteOptions, ObjectStore, format_time
from headwater_dev.strategies import (
    Strategy,
    Subresource,
    WriteOptions,
    decode_typed,
)

JsonObject = dict[str, Any]

GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"

CRD_RESOURCE = ResourceSpec(
    GROUP, "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False,
    singular="customresourcedefinition", short_names=("crd", "crds"),
    categories=("api-extensions",), status_subresource=True,
)
"""How the API server serves CRDs themselves (``etcd.go``: short names crd/crds, category
api-extensions)."""


def _condition(type_: str, status: str, reason: str, message: str, now: str) -> JsonObject:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": now}


def set_condition(status: JsonObject, condition: JsonObject) -> None:
    """``SetCRDCondition``: replace the condition of that type; keep the transition time
    when its status did not change."""
    conditions = status.setdefault("conditions", [])
    for index, existing in enumerate(conditions):
        if existing.get("type") == condition["type"]:
            if existing.get("status") == condition["status"]:
                condition = {**condition,
                             "lastTransitionTime": existing.get("lastTransitionTime")}
            conditions[index] = condition
            return
    conditions.append(condition)


def condition_status(crd: Mapping[str, Any], type_: str) -> str | None:
    """The status of a CRD condition, or None when it has none of that type."""
    for condition in (crd.get("status") or {}).get("conditions") or ():
        if condition.get("type") == type_:
            return str(condition.get("status"))
    return None


def crd_errors(crd: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    """What the API server refuses about a (defaulted, prepared) CRD: its spec, status and
    schemas (:func:`.crdvalidation.validate_crd`), with the schemas' CEL rules compiled
    and costed (:class:`..cel.SchemaRules`)."""
    return validate_crd(crd, old, schema_rules=SchemaRules)


class CustomResourceDefinitionStrategy(Strategy):
    """The CRD strategy, and the controllers that name, establish and clean up CRDs."""

    allow_unconditional_update = False

    def __init__(self, spec: ResourceSpec, *,
                 strategy_for: Callable[[ResourceSpec], Strategy]) -> None:
        """``strategy_for``: the strategy of a kind a CRD serves."""
        super().__init__(spec)
        self._strategy_for = strategy_for

    # --- the strategy ------------------------------------------------------------------
    def _decoded(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        """The body decoded as the v1 Go type, before defaulting, as the server decodes
        (apiserver v0.32.9 ``pkg/endpoints/handlers/create.go``/``update.go``: the
        decoder's errors come before admission and validation)."""
        return decode_typed(self.spec, obj, options).obj

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        return prepare_for_create(default_crd(self._decoded(obj, options)))

    def validate_create(self, obj: JsonObject) -> list[FieldError]:
        return crd_errors(obj, None)

    def prepare_update(self, new: JsonObject, old: JsonObject, subresource: Subresource,
                       options: WriteOptions) -> JsonObject:
        decoded = self._decoded(new, options)
        if subresource == "status":
            return decoded
        return prepare_for_update(default_crd(decoded), old)

    def validate_update(self, new: JsonObject, old: JsonObject,
                        subresource: Subresource) -> list[FieldError]:
        if subresource == "status":
            return []
        return crd_errors(new, old)

    def prepare_delete(self, obj: JsonObject, now: datetime.datetime) -> JsonObject:
        if obj["metadata"].get("deletionTimestamp"):
            return obj
        crd = copy.deepcopy(obj)
        meta = crd["metadata"]
        meta["deletionTimestamp"] = format_time(now)
        if CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), CLEANUP_FINALIZER]
        set_condition(crd.setdefault("status", {}), _condition(
            "Terminating", "True", "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will "
            "begin soon", format_time(now)))
        return crd

    # --- the controllers ---------------------------------------------------------------
    def committed(self, store: ObjectStore, event: str, obj: JsonObject) -> None:
        if event == "DELETED":
            return
        if obj["metadata"].get("deletionTimestamp"):
            self._clean_up(store, obj)
            return
        self._name_and_establish(store, obj)

    def _name_and_establish(self, store: ObjectStore, crd: JsonObject) -> None:
        now = format_time(store.now())
        status = copy.deepcopy(crd.get("status") or {})
        accepted, names_condition = accepted_names(crd, _group_crds(store, crd), now)
        status["acceptedNames"] = accepted
        set_condition(status, names_condition)
        if names_condition["status"] == "True":
            set_condition(status, _condition("Established", "True", "InitialNamesAccepted",
                                             "the initial names have been accepted", now))
        elif condition_status(crd, "Established") != "True":
            set_condition(status, _condition("Established", "False", "NotAccepted",
                                             "not all names are accepted", now))
        if status != crd.get("status"):
            store.replace(self.spec, None, crd["metadata"]["name"], {**crd, "status": status},
                          subresource="status")
        if condition_status({"status": status}, "Established") == "True":
            self._serve(store, crd)

    def _serve(self, store: ObjectStore, crd: JsonObject) -> None:
        served = specs_from_crd(crd)
        keys = {spec.key for spec in served}
        for spec in served:
            store.add_resource(spec, self._strategy_for(spec))
        for spec in store.resources:
            if spec.group == crd["spec"]["group"] and spec.plural == crd["spec"]["names"][
                    "plural"] and spec.key not in keys:
                store.remove_resource(spec.key)

    def _clean_up(self, store: ObjectStore, crd: JsonObject) -> None:
        """The finalizer controller: delete every instance, stop serving, release."""
        spec_names = crd["spec"]["names"]
        for spec in store.resources:
            if spec.group != crd["spec"]["group"] or spec.plural != spec_names["plural"]:
                continue
            items, _, _ = store.list_objects(spec, None)
            for item in items:
                meta = item["metadata"]
                store.delete(spec, meta.get("namespace"), meta["name"], DeleteOptions())
            store.remove_resource(spec.key)
        current = store.get(self.spec, None, crd["metadata"]["name"])
        finalizers = current["metadata"].get("finalizers") or []
        if CLEANUP_FINALIZER in finalizers:
            released = copy.deepcopy(current)
            released["metadata"]["finalizers"] = [
                f for f in finalizers if f != CLEANUP_FINALIZER]
            store.replace(self.spec, None, crd["metadata"]["name"], released)


def _group_crds(store: ObjectStore, crd: Mapping[str, Any]) -> list[JsonObject]:
    items, _, _ = store.list_objects(CRD_RESOURCE, None)
    return [item for item in items if item["spec"].get("group") == crd["spec"].get("group")
            and item["metadata"]["name"] != crd["metadata"]["name"]]


def accepted_names(crd: Mapping[str, Any], others: Sequence[Mapping[str, Any]], now: str
                   ) -> tuple[JsonObject, JsonObject]:
    """``calculateNamesAndConditions``: the names a CRD may have, and ``NamesAccepted``.

    A requested name is accepted when it is already this CRD's accepted name or no other
    CRD of the group has accepted it (resources — plural, singular, short names — and
    kinds — kind, list kind — are two separate name spaces).
    """
    used_resources: set[str] = set()
    used_kinds: set[str] = set()
    for other in others:
        names = (other.get("status") or {}).get("acceptedNames") or {}
        used_resources.update(n for n in (names.get("plural"), names.get("singular"),
                                          *(names.get("shortNames") or ())) if n)
        used_kinds.update(n for n in (names.get("kind"), names.get("listKind")) if n)
    requested = crd["spec"]["names"]
    current = dict((crd.get("status") or {}).get("acceptedNames") or {})
    new = dict(current)
    conflict: tuple[str, str] | None = None

    def fresh(name: str | None, accepted: str | None, used: set[str]) -> bool:
        return not name or name == accepted or name not in used

    for key, reason, used in (("plural", "PluralConflict", used_resources),
                              ("singular", "SingularConflict", used_resources)):
        if fresh(requested.get(key), current.get(key), used):
            if requested.get(key):
                new[key] = requested[key]
        else:
            conflict = (reason, f'"{requested[key]}" is already in use')
    short_names = list(requested.get("shortNames") or [])
    if short_names != list(current.get("shortNames") or []):
        mine = set(current.get("shortNames") or [])
        taken = [f'"{n}" is already in use' for n in short_names
                 if n not in mine and n in used_resources]
        if taken:
            conflict = ("ShortNamesConflict",
                        taken[0] if len(taken) == 1 else "[" + ", ".join(taken) + "]")
        else:
            new["shortNames"] = short_names
    for key, reason in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
        if fresh(requested.get(key), current.get(key), used_kinds):
            if requested.get(key):
                new[key] = requested[key]
        else:
            conflict = (reason, f'"{requested[key]}" is already in use')
    if requested.get("categories"):
        new["categories"] = list(requested["categories"])
    if conflict is None:
        return new, _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found",
                               now)
    return new, _condition("NamesAccepted", "False", conflict[0], conflict[1], now)


__all__ = [
    "CLEANUP_FINALIZER",
    "CRD_RESOURCE",
    "CustomResourceDefinitionStrategy",
    "accepted_names",
    "condition_status",
    "crd_errors",
    "set_condition",
]
