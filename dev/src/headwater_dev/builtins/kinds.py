"""What the API server's strategy for each served built-in kind reports on create and update.

:func:`validate_builtin` is the entry point: the kind's own ``Validate``/``ValidateUpdate``
(kubernetes ``pkg/apis/core/validation``: ``ValidatePodCreate``/``ValidatePodUpdate``
(see :mod:`.pods`), ``ValidateEventCreate``/``ValidateEventUpdate`` (``events.go``),
``ValidateNamespace``/``ValidateNamespaceUpdate``, ``ValidateConfigMap``/``Update``,
``ValidateSecret``/``Update``, ``ValidateServiceAccount``/``Update``, ``ValidateNode``'s
metadata; ``pkg/apis/coordination/validation`` ``ValidateLease``/``Update``), followed, as
k8s.io/apiserver v0.32.9 ``pkg/registry/rest`` ``BeforeCreate``/``BeforeUpdate`` do, by
the generic metadata check every resource gets (path-segment names). Custom resources
served here (kopf's peerings) get only that generic check: their CRD has no schema
beyond ``x-kubernetes-preserve-unknown-fields``.

On create the strategy's errors win: the generic check runs only when they are empty. On
update both run and are reported together. Status writes: :func:`validate_builtin_status`.

Not implemented: Node spec/status rules (taints, podCIDRs, addresses; only metadata is
checked), Secret type-specific keys other than the ones listed in :func:`_secret`, the
Event ``series`` rules of events.k8s.io beyond count/lastObservedTime.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from headwater_dev.builtins import names, objectmeta, pods
from headwater_dev.fielderrors import (
    FieldError,
    forbidden,
    format_path,
    invalid,
    not_supported,
    required,
    too_long,
    unique,
)

KindKey = tuple[str, str, str]
Errors = list[FieldError]
MAX_SECRET_SIZE: Final = 1 * 1024 * 1024
REPORTING_INSTANCE_LIMIT: Final = 128
ACTION_LIMIT: Final = 128
REASON_LIMIT: Final = 128
NOTE_LIMIT: Final = 1024
IMMUTABLE_WHEN_SET: Final = "field is immutable when `immutable` is set"

PODS: Final = ("", "v1", "pods")
CORE_EVENTS: Final = ("", "v1", "events")
EVENTS: Final = ("events.k8s.io", "v1", "events")
LEASES: Final = ("coordination.k8s.io", "v1", "leases")
NAMESPACES: Final = ("", "v1", "namespaces")
NODES: Final = ("", "v1", "nodes")
CONFIGMAPS: Final = ("", "v1", "configmaps")
SECRETS: Final = ("", "v1", "secrets")
SERVICEACCOUNTS: Final = ("", "v1", "serviceaccounts")
KOPF_PEERINGS: Final = ("kopf.dev", "v1", "kopfpeerings")
CLUSTER_KOPF_PEERINGS: Final = ("kopf.dev", "v1", "clusterkopfpeerings")
CLUSTER_SCOPED: Final = frozenset({NAMESPACES, NODES, CLUSTER_KOPF_PEERINGS})


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(obj.get("metadata"))


# --- per-kind strategies ----------------------------------------------------------------------
def _core_meta(obj: Mapping[str, Any], rule: names.NameRule, *, namespaced: bool) -> Errors:
    return objectmeta.validate_object_meta(_meta(obj), namespaced=namespaced, name_rule=rule,
                                           core=True)


def _core_meta_update(new: Mapping[str, Any], old: Mapping[str, Any]) -> Errors:
    return objectmeta.validate_object_meta_update(_meta(new), _meta(old), core=True)


def _namespace(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    if old is not None:
        return _core_meta_update(obj, old)
    errors = _core_meta(obj, names.name_is_dns_label, namespaced=False)
    for item in _map(obj.get("spec")).get("finalizers") or []:
        value = str(item)
        errors += [invalid("spec.finalizers", value, m) for m in names.is_qualified_name(value)]
        errors += objectmeta.validate_kube_finalizer_names([value], "spec.finalizers")
    return errors


def _data_keys(data: Any, path: str) -> Errors:
    return [invalid(format_path([path, f"[{key}]"]), key, m)
            for key in _map(data) for m in names.is_config_map_key(key)]


def _configmap(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    errors: Errors = []
    if old is not None:
        errors += _core_meta_update(obj, old)
        errors += _immutable_data(obj, old, ("data", "binaryData"))
    errors += _core_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    data, binary = _map(obj.get("data")), _map(obj.get("binaryData"))
    errors += _data_keys(data, "data")
    errors += [invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
               for key in data if key in binary]
    errors += _data_keys(binary, "binaryData")
    size = sum(len(str(v).encode()) for v in data.values()) + sum(
        len(_decoded(v)) for v in binary.values())
    if size > MAX_SECRET_SIZE:
        errors.append(too_long("", MAX_SECRET_SIZE))
    return errors


def _decoded(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _immutable_data(new: Mapping[str, Any], old: Mapping[str, Any],
                    keys: tuple[str, ...]) -> Errors:
    if old.get("immutable") is not True:
        return []
    errors = []
    if new.get("immutable") is not True:
        errors.append(forbidden("immutable", IMMUTABLE_WHEN_SET))
    for key in keys:
        if (new.get(key) or {}) != (old.get(key) or {}):
            errors.append(forbidden(key, IMMUTABLE_WHEN_SET))
    return errors


_SECRET_REQUIRED_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _secret(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    errors: Errors = []
    if old is not None:
        errors += _core_meta_update(obj, old)
        if (obj.get("type") or "Opaque") != (old.get("type") or "Opaque"):
            errors.append(invalid("type", str(obj.get("type") or ""), objectmeta.FIELD_IMMUTABLE))
        errors += _immutable_data(obj, old, ("data",))
    errors += _core_meta(obj, names.name_is_dns_subdomain, namespaced=True)
    # stringData is merged into data before validation (core/v1 conversion).
    data = {**_map(obj.get("data")),
            **{k: base64.b64encode(str(v).encode()).decode()
               for k, v in _map(obj.get("stringData")).items()}}
    errors += _data_keys(data, "data")
    if sum(len(_decoded(v)) for v in data.values()) > MAX_SECRET_SIZE:
        errors.append(too_long("data", MAX_SECRET_SIZE))
    kind = _str(obj.get("type"))
    if kind == "kubernetes.io/service-account-token":
        if not _str(_map(_meta(obj).get("annotations")).get("kubernetes.io/service-account.name")):
            errors.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif kind == "kubernetes.io/basic-auth" and "username" not in data \
            and "password" not in data:
        errors += [required("data[username]"), required("data[password]")]
    for key in _SECRET_REQUIRED_KEYS.get(kind, ()):
        if key not in data or (kind == "kubernetes.io/ssh-auth" and not _decoded(data[key])):
            errors.append(required(f"data[{key}]"))
        elif kind in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
            try:
                json.loads(_decoded(data[key]) or b"x")
            except ValueError as exc:
                errors.append(invalid(f"data[{key}]", "<secret contents redacted>", str(exc)))
    return errors


def _service_account(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    errors = _core_meta_update(obj, old) if old is not None else []
    return errors + _core_meta(obj, names.name_is_dns_subdomain, namespaced=True)


def _node(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    if old is not None:
        return _core_meta_update(obj, old)
    return _core_meta(obj, names.name_is_dns_subdomain, namespaced=False)


def _pod(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    return pods.validate_pod_update(obj, old) if old is not None else pods.validate_pod_create(obj)


def _lease_spec(spec: Mapping[str, Any]) -> Errors:
    """``ValidateLeaseSpec``."""
    errors: Errors = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        errors.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        errors.append(invalid("spec.leaseTransitions", transitions,
                              "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if isinstance(strategy, str):
        if "/" not in strategy:
            if strategy != "OldestEmulationVersion":
                errors.append(not_supported("spec.strategy.strategy", strategy,
                                            ("OldestEmulationVersion",)))
        else:
            errors += [invalid("spec.strategy.strategy", strategy, m)
                       for m in names.is_qualified_name(strategy)]
    if _str(spec.get("preferredHolder")) and not _str(strategy):
        errors.append(forbidden("spec.preferredHolder",
                                "may only be specified if `strategy` is defined"))
    return errors


def _lease(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    meta = _meta(obj)
    if old is not None:
        errors = objectmeta.validate_object_meta_update(meta, _meta(old))
    else:
        errors = objectmeta.validate_object_meta(meta, namespaced=True,
                                                 name_rule=names.name_is_dns_subdomain)
    return errors + _lease_spec(_map(obj.get("spec")))


# --- events -------------------------------------------------------------------------------------
def event_from_events_v1(event: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as the internal (core) Event its strategy validates
    (``pkg/apis/events/v1`` conversion): ``regarding``→``involvedObject``, ``note``→
    ``message``, ``deprecated*``→ the core fields."""
    result = {k: copy.deepcopy(v) for k, v in event.items()
              if k not in ("regarding", "note", "deprecatedSource", "deprecatedFirstTimestamp",
                           "deprecatedLastTimestamp", "deprecatedCount",
                           "reportingController")}
    renames = {"regarding": "involvedObject", "note": "message", "deprecatedSource": "source",
               "deprecatedFirstTimestamp": "firstTimestamp",
               "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count",
               "reportingController": "reportingComponent"}
    for old_key, new_key in renames.items():
        if old_key in event:
            result[new_key] = copy.deepcopy(event[old_key])
    return result


def _legacy_event(event: Mapping[str, Any]) -> Errors:
    """``legacyValidateEvent``: every Event, whatever its API version."""
    errors: Errors = []
    namespace = _str(_meta(event).get("namespace"))
    involved_namespace = _str(_map(event.get("involvedObject")).get("namespace"))
    mismatch = invalid("involvedObject.namespace", involved_namespace,
                       "does not match event.namespace")
    if not event.get("eventTime"):
        if not involved_namespace:
            if namespace not in ("", "default"):
                errors.append(mismatch)
        elif namespace != involved_namespace:
            errors.append(mismatch)
    else:
        if not involved_namespace and namespace not in ("default", "kube-system"):
            errors.append(mismatch)
        controller = _str(event.get("reportingComponent"))
        if not controller:
            errors.append(required("reportingController"))
        errors += [invalid("reportingController", controller, m)
                   for m in names.is_qualified_name(controller)]
        for key, limit in (("reportingInstance", REPORTING_INSTANCE_LIMIT),
                           ("action", ACTION_LIMIT), ("reason", REASON_LIMIT)):
            value = _str(event.get(key))
            if not value:
                errors.append(required(key))
            if names.byte_length(value) > limit:  # Go's len: bytes
                errors.append(invalid(key, "", f"can have at most {limit} characters"))
        if names.byte_length(_str(event.get("message"))) > NOTE_LIMIT:
            errors.append(invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    errors += [invalid("namespace", namespace, m) for m in names.is_dns1123_subdomain(namespace)]
    return errors


def _strict_event(event: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    """The events.k8s.io/v1 rules on top of the legacy ones (``ValidateEventCreate``)."""
    if old is not None:
        errors = objectmeta.validate_object_meta_update(_meta(event), _meta(old), core=True)
        if event.get("series") != old.get("series"):
            errors += _series(event)
        for key in ("involvedObject", "reason", "message", "source", "firstTimestamp",
                    "lastTimestamp", "count", "reason", "type", "eventTime", "action",
                    "related", "reportingController", "reportingInstance"):
            # The internal field names; core/v1 spells reportingController reportingComponent.
            stored = "reportingComponent" if key == "reportingController" else key
            if event.get(stored) != old.get(stored):
                errors.append(invalid(key, _shown(event.get(stored)),
                                      objectmeta.FIELD_IMMUTABLE))
        return errors
    errors = objectmeta.validate_object_meta(_meta(event), namespaced=True,
                                             name_rule=names.name_is_dns_subdomain, core=True)
    errors += _series(event)
    if not event.get("eventTime"):
        errors.append(required("eventTime"))
    kind = _str(event.get("type"))
    if kind not in ("Normal", "Warning"):
        errors.append(invalid("type", "", f"has invalid value: {kind}"))
    for key in ("firstTimestamp", "lastTimestamp", "count"):
        if event.get(key):
            errors.append(invalid(key, "", "needs to be unset"))
    source = _map(event.get("source"))
    if source.get("component") or source.get("host"):
        errors.append(invalid("source", "", "needs to be unset"))
    return errors


def _shown(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return objectmeta.GoSyntax(json.dumps(value, separators=(",", ":"), sort_keys=True))


def _series(event: Mapping[str, Any]) -> Errors:
    series = event.get("series")
    if series is None:
        return []
    series = _map(series)
    errors: Errors = []
    count = series.get("count")
    if not isinstance(count, int) or count < 2:
        errors.append(invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errors.append(required("series.lastObservedTime"))
    return errors


def _core_event(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    # core/v1 Events get only the legacy rules (ValidateEventCreate/Update skip the rest
    # for requests in v1), then the generic metadata check.
    return _legacy_event(obj)


def _events_v1(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    event = event_from_events_v1(obj)
    previous = event_from_events_v1(old) if old is not None else None
    return _legacy_event(event) + _strict_event(event, previous)


def _custom_resource(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> Errors:
    return []


_STRATEGIES: Final[Mapping[KindKey, Callable[[Mapping[str, Any], Mapping[str, Any] | None],
                                             Errors]]] = {
    PODS: _pod,
    CORE_EVENTS: _core_event,
    EVENTS: _events_v1,
    LEASES: _lease,
    NAMESPACES: _namespace,
    NODES: _node,
    CONFIGMAPS: _configmap,
    SECRETS: _secret,
    SERVICEACCOUNTS: _service_account,
    KOPF_PEERINGS: _custom_resource,
    CLUSTER_KOPF_PEERINGS: _custom_resource,
}


def is_builtin(kind_key: KindKey) -> bool:
    """Whether :func:`validate_builtin` knows the resource."""
    return kind_key in _STRATEGIES


def _prepare_update(obj: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """``BeforeUpdate``'s fixes before validation: the old uid, creation and deletion
    timestamps and generation are kept whatever the request says."""
    result = copy.deepcopy(dict(obj))
    meta = result.setdefault("metadata", {})
    old_meta = _meta(old)
    if isinstance(meta, dict):
        if not meta.get("uid") and old_meta.get("uid"):
            meta["uid"] = old_meta["uid"]
        for key in ("creationTimestamp", "deletionTimestamp", "generation"):
            if old_meta.get(key) is not None:
                meta[key] = old_meta[key]
        if old_meta.get("deletionGracePeriodSeconds") is not None \
                and meta.get("deletionGracePeriodSeconds") is None:
            meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]
    return result


def validate_builtin(kind_key: KindKey, obj: Mapping[str, Any],
                     old: Mapping[str, Any] | None = None) -> list[FieldError]:
    """The field errors the API server reports for a create (``old`` is ``None``) or an
    update of ``obj`` of the served resource ``kind_key`` (group, version, plural).

    Raises ``KeyError`` for a resource it does not know."""
    strategy = _STRATEGIES[kind_key]
    namespaced = kind_key not in CLUSTER_SCOPED
    if old is None:
        errors = strategy(obj, None)
        if errors:
            return errors
        return objectmeta.validate_object_meta(_meta(obj), namespaced=namespaced,
                                               name_rule=names.name_is_path_segment)
    prepared = _prepare_update(obj, old)
    common = objectmeta.validate_object_meta(_meta(prepared), namespaced=namespaced,
                                             name_rule=names.name_is_path_segment)
    common += objectmeta.validate_object_meta_update(_meta(prepared), _meta(old))
    return unique(common + strategy(prepared, old))


def validate_builtin_status(kind_key: KindKey, obj: Mapping[str, Any],
                            old: Mapping[str, Any]) -> list[FieldError]:
    """What a write to the ``status`` subresource of ``kind_key`` is refused for."""
    prepared = _prepare_update(obj, old)
    common = objectmeta.validate_object_meta(_meta(prepared),
                                             namespaced=kind_key not in CLUSTER_SCOPED,
                                             name_rule=names.name_is_path_segment)
    common += objectmeta.validate_object_meta_update(_meta(prepared), _meta(old))
    if kind_key == PODS:
        return unique(common + pods.validate_pod_status_update(prepared, old))
    if kind_key == NAMESPACES:
        phase = _str(_map(prepared.get("status")).get("phase"))
        if not _meta(prepared).get("deletionTimestamp"):
            if phase != "Active":
                common.append(invalid("status.Phase", phase,
                                      "may only be 'Active' if `deletionTimestamp` is empty"))
        elif phase != "Terminating":
            common.append(invalid("status.Phase", phase, "may only be 'Terminating' if "
                                                         "`deletionTimestamp` is not empty"))
    return unique(common + _core_meta_update(prepared, old))


__all__ = [
    "event_from_events_v1",
    "is_builtin",
    "validate_builtin",
    "validate_builtin_status",
]
