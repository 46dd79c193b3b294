"""What the API server does to an object of one kind on every write: its registry strategy.

In the real API server each kind has a *strategy* (``k8s.io/apiserver/pkg/registry/rest``
``RESTCreateStrategy``/``RESTUpdateStrategy``): ``PrepareForCreate``/``PrepareForUpdate``
reset what clients may not set (``status`` on the main resource of a kind with a status
subresource, everything but ``status`` on the status subresource), then ``Validate``/
``ValidateUpdate`` return field errors, which become one 422. The store
(:mod:`.store`) calls a :class:`Strategy` in that order on each create, update and patch,
under its lock, before anything is stored — and on a dry run, without storing.

:class:`WriteOptions` carries what a request says about the write: ``dryRun=All``, the
``fieldValidation`` directive (``Ignore``, ``Warn`` — the server's default — or
``Strict``), and collects the warnings the server returns in ``Warning`` headers.

The strategies of the built-in kinds live in :mod:`.builtins`, those of custom resources
and of CustomResourceDefinitions in :mod:`.apiextensions`; this module holds the shared
base and the plain strategy used where a kind has nothing of its own.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from headwater_dev.fielderrors import FieldError, invalid_error
from headwater_dev.jsoncopy import deep_copy
from headwater_dev.resources import ResourceSpec

if TYPE_CHECKING:
    from headwater_dev.store import ObjectStore
from headwater_dev import builtins
from headwater_dev.apierrors import ApiError
from headwater_dev.apiextensions import fieldvalidation

JsonObject = dict[str, Any]
FieldValidation = Literal["Ignore", "Warn", "Strict"]
FIELD_VALIDATION_DIRECTIVES: tuple[FieldValidation, ...] = ("Ignore", "Warn", "Strict")
Subresource = Literal["status"] | None


@dataclass
class WriteOptions:
    """What a request asks of one write, and the warnings the write produced."""

    dry_run: bool = False
    """``dryRun=All``: run every step, store nothing, answer as if stored."""
    field_validation: FieldValidation = "Warn"
    """``fieldValidation``: what happens to unknown or duplicate fields."""
    warnings: list[str] = field(default_factory=list)
    """Texts for ``Warning: 299 - "<text>"`` response headers, in order."""
    duplicate_fields: list[str] = field(default_factory=list)
    """Paths of the keys the request body repeats (found by the HTTP layer, which alone
    sees the raw JSON), e.g. ``spec.retries``."""
    patch: bool = False
    """The write is a patch: strict errors are then a 422 on the field ``patch``."""

    def strict_errors(self, errors: list[str], strict_message: Callable[[], str], *,
                      patched: Mapping[str, Any]) -> None:
        """Apply the directive to the strict decoding errors of a write (``duplicate field
        "spec.a"``, ``unknown field "spec.concurency"``).

        ``Strict`` refuses the request: a create or update with a 400 BadRequest saying
        ``strict_message()`` (the kind's wording, ``transformDecodeError``), a patch with
        a 422 on the field ``patch`` showing the patched object
        (``pkg/endpoints/handlers/patch.go``); ``Warn`` returns each error as a warning;
        ``Ignore`` says nothing (``create.go``, ``update.go``).
        """
        if not errors or self.field_validation == "Ignore":
            return
        if self.field_validation == "Warn":
            self.warnings.extend(errors)
            return
        if self.patch:
            raise invalid_error("", "", "", [fieldvalidation.patch_strict_error(patched,
                                                                                errors)])
        raise ApiError(400, "BadRequest", strict_message())


class Strategy:
    """The plain strategy: status handling by subresource, no validation of its own.

    Subclasses override the four hooks; each returns a new object (never mutates its
    arguments) or a list of field errors.
    """

    allow_unconditional_update = True
    """``AllowUnconditionalUpdate``: may a PUT leave ``metadata.resourceVersion`` out?"""

    def __init__(self, spec: ResourceSpec) -> None:
        self.spec = spec

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        """``PrepareForCreate``: a kind with a status subresource starts without status."""
        return self._without_status(deep_copy(obj))

    def _without_status(self, prepared: JsonObject) -> JsonObject:
        """``prepared`` (a copy the caller owns) without ``status`` when the kind has a
        status subresource."""
        if self.spec.status_subresource:
            prepared.pop("status", None)
        return prepared

    def validate_create(self, obj: JsonObject) -> list[FieldError]:
        """``Validate``: problems with a new object."""
        return []

    def prepare_update(self, new: JsonObject, old: JsonObject, subresource: Subresource,
                       options: WriteOptions) -> JsonObject:
        """``PrepareForUpdate``: the main resource keeps the stored status and the status
        subresource keeps everything else (the store has merged them already)."""
        return new

    def validate_update(self, new: JsonObject, old: JsonObject,
                        subresource: Subresource) -> list[FieldError]:
        """``ValidateUpdate``: problems with a change."""
        return []

    def prepare_delete(self, obj: JsonObject, now: datetime.datetime) -> JsonObject:
        """What a kind's own ``Delete`` does before the generic deletion (e.g. a CRD adds
        its cleanup finalizer); the plain strategy changes nothing."""
        return obj

    def committed(self, store: ObjectStore, event: str, obj: JsonObject) -> None:
        """Called, under the store's lock, after a change of this kind is stored (not on a
        dry run): where the controllers the emulator plays in-line react (e.g. a new CRD
        gets its status and its resources served). May write to the store."""


def decode_typed(spec: ResourceSpec, obj: JsonObject, options: WriteOptions
                 ) -> builtins.Decoded:
    """Decode a write's object as the API server decodes a typed body
    (:func:`.builtins.decode`): a value of the wrong type is the decoder's 400 BadRequest;
    the duplicate and unknown fields the strict decoder sees go to
    :meth:`WriteOptions.strict_errors` (``create.go``/``update.go``/``patch.go``)."""
    decoded = builtins.decode(spec.key, obj)
    if decoded.error is not None:
        raise ApiError(400, "BadRequest", fieldvalidation.decode_error_message(
            spec.kind, spec.version, decoded.error))
    errors = fieldvalidation.strict_errors(decoded.seen_duplicates(options.duplicate_fields),
                                           decoded.unknown)
    options.strict_errors(errors, lambda: fieldvalidation.decode_error_message(
        spec.kind, spec.version, fieldvalidation.strict_decoding_message(errors)),
        patched=obj)
    return decoded


class BuiltinStrategy(Strategy):
    """A built-in kind: decoded as its Go type, defaulted, validated as its strategy does.

    Decoding (``builtins.decoding``): a field of the wrong type is the decoder's 400;
    unknown fields are strict decoding errors, which ``fieldValidation`` turns into a 400
    or warnings. Pods are defaulted (``builtins.default_pod``) on every write, as the API
    server defaults what it decodes. Validation is the kind's
    (``builtins.validate_builtin``/``validate_builtin_status``).
    """

    def _decoded(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        decode_typed(self.spec, obj, options)
        return builtins.default_pod(obj) if self.spec.key == POD else obj

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        return super().prepare_create(self._decoded(obj, options), options)

    def validate_create(self, obj: JsonObject) -> list[FieldError]:
        return builtins.validate_builtin(self.spec.key, obj)

    def prepare_update(self, new: JsonObject, old: JsonObject, subresource: Subresource,
                       options: WriteOptions) -> JsonObject:
        return self._decoded(new, options)

    def validate_update(self, new: JsonObject, old: JsonObject,
                        subresource: Subresource) -> list[FieldError]:
        if subresource == "status":
            return builtins.validate_builtin_status(self.spec.key, new, old)
        return builtins.validate_builtin(self.spec.key, new, old)


POD = ("", "v1", "pods")


class PodStrategy(BuiltinStrategy):
    """Pods start ``Pending`` with their QoS class (``pkg/registry/core/pod/strategy.go``
    ``PrepareForCreate``: ``Status{Phase: Pending, QOSClass: GetPodQOS(pod)}``)."""

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        prepared = super().prepare_create(obj, options)
        prepared["status"] = {"phase": "Pending", "qosClass": pod_qos_class(prepared)}
        return prepared


def pod_qos_class(pod: JsonObject) -> str:
    """The pod's QoS class (``pkg/apis/core/helper/qos`` ``GetPodQOS``, v1.32).

    ``BestEffort`` when no container (init containers included) requests or limits CPU
    or memory; ``Guaranteed`` when every container limits both and requests what it
    limits (a missing request defaults to the limit); otherwise ``Burstable``.
    """
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    compute = ("cpu", "memory")
    any_set, guaranteed = False, True
    for container in containers:
        resources = container.get("resources") or {}
        limits = {k: v for k, v in (resources.get("limits") or {}).items() if k in compute}
        requests = {k: v for k, v in (resources.get("requests") or {}).items()
                    if k in compute}
        any_set = any_set or bool(limits) or bool(requests)
        if set(limits) != set(compute) or any(
                str(requests.get(name, limits[name])) != str(limits[name])
                for name in compute):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class NamespaceStrategy(BuiltinStrategy):
    """Namespaces start ``Active``, with the ``kubernetes`` finalizer and the
    ``kubernetes.io/metadata.name`` label (``pkg/registry/core/namespace/strategy.go``
    ``PrepareForCreate``/``PrepareForUpdate``: the label always equals the name)."""

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        prepared = super().prepare_create(obj, options)
        prepared["status"] = {"phase": "Active"}
        spec = prepared.setdefault("spec", {})
        if "kubernetes" not in (spec.get("finalizers") or []):
            spec["finalizers"] = [*(spec.get("finalizers") or []), "kubernetes"]
        return _with_name_label(prepared)

    def prepare_update(self, new: JsonObject, old: JsonObject, subresource: Subresource,
                       options: WriteOptions) -> JsonObject:
        return _with_name_label(super().prepare_update(new, old, subresource, options))


class SecretStrategy(BuiltinStrategy):
    """A Secret's ``stringData`` is write-only: on every write it is merged into ``data``
    (base64-encoded, overwriting the same keys) and never stored, so reads show ``data``
    only (kubernetes pkg/apis/core/v1/conversion.go ``Convert_v1_Secret_To_core_Secret``:
    "StringData overwrites Data"; the internal type has no ``StringData``)."""

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        return _string_data_merged(super().prepare_create(obj, options))

    def prepare_update(self, new: JsonObject, old: JsonObject, subresource: Subresource,
                       options: WriteOptions) -> JsonObject:
        return _string_data_merged(super().prepare_update(new, old, subresource, options))


def _string_data_merged(secret: JsonObject) -> JsonObject:
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.get("data")
        data = dict(data) if isinstance(data, dict) else {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data
    return secret


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _with_name_label(namespace: JsonObject) -> JsonObject:
    meta = namespace.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), NAMESPACE_NAME_LABEL: meta.get("name")}
    return namespace


def strategy_for(spec: ResourceSpec) -> Strategy:
    """The strategy of a built-in kind (the plain one for a kind the builtins do not know)."""
    if spec.key == POD:
        return PodStrategy(spec)
    if spec.key == ("", "v1", "namespaces"):
        return NamespaceStrategy(spec)
    if spec.key == ("", "v1", "secrets"):
        return SecretStrategy(spec)
    if builtins.is_builtin(spec.key):
        return BuiltinStrategy(spec)
    return Strategy(spec)


__all__ = [
    "FIELD_VALIDATION_DIRECTIVES",
    "NAMESPACE_NAME_LABEL",
    "BuiltinStrategy",
    "FieldValidation",
    "NamespaceStrategy",
    "PodStrategy",
    "SecretStrategy",
    "Strategy",
    "Subresource",
    "WriteOptions",
    "decode_typed",
    "pod_qos_class",
    "strategy_for",
]
