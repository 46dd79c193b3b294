"""``metadata`` as every Kubernetes API server checks it, on create and on update.

Translates k8s.io/apimachinery v0.32.9 ``pkg/api/validation/objectmeta.go``
(``ValidateObjectMetaAccessor``, ``ValidateObjectMetaAccessorUpdate``, ``ValidateAnnotations``,
``ValidateOwnerReferences``, ``ValidateFinalizers``) and ``pkg/apis/meta/v1/validation``
(``ValidateLabels``, ``ValidateManagedFields``), plus the core group's extra finalizer rule
(kubernetes ``pkg/apis/core/validation/validation.go`` ``ValidateObjectMeta`` →
``validateKubeFinalizerName``). Messages are apimachinery's, field paths Go's.

The input is the decoded JSON ``metadata``; it is assumed to have passed the type checks
of :mod:`.decoding` (a wrong type there is a 400 before validation runs). Map keys are
checked in the object's order; Go visits maps in random order, so a real server may list
several label or annotation errors in another order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from headwater_dev.builtins import names
from headwater_dev.fielderrors import (
    FieldError,
    forbidden,
    format_path,
    go_string_slice,
    go_syntax,
    invalid,
    required,
    too_long,
)

TOTAL_ANNOTATION_SIZE_LIMIT: Final = 256 * (1 << 10)
FIELD_IMMUTABLE: Final = "field is immutable"
IS_NEGATIVE: Final = "must be greater than or equal to 0"
FINALIZER_ORPHAN: Final = "orphan"
FINALIZER_FOREGROUND: Final = "foregroundDeletion"
STANDARD_FINALIZERS: Final = frozenset({"kubernetes", FINALIZER_ORPHAN, FINALIZER_FOREGROUND})
FIELD_MANAGER_MAX_LENGTH: Final = 128
MAX_SUBRESOURCE_NAME_LENGTH: Final = 256


def _child(path: str, *parts: str | int) -> str:
    return format_path([path, *parts])


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """``ValidateLabels``: qualified-name keys, label-value values (both at ``path``)."""
    errors = []
    for key, value in _mapping(labels).items():
        errors += [invalid(path, key, msg) for msg in names.is_qualified_name(key)]
        errors += [invalid(path, value, msg) for msg in names.is_valid_label_value(str(value))]
    return errors


def validate_label_name(name: str, path: str) -> list[FieldError]:
    """``ValidateLabelName``."""
    return [invalid(path, name, msg) for msg in names.is_qualified_name(name)]


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    """``ValidateAnnotations``: qualified-name keys (any case), at most 256 KiB in all."""
    errors = []
    total = 0
    for key, value in _mapping(annotations).items():
        errors += [invalid(path, key, msg) for msg in names.is_qualified_name(key.lower())]
        total += names.byte_length(key) + names.byte_length(str(value))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def _owner_reference(ref: Mapping[str, Any], path: str) -> list[FieldError]:
    api_version = str(ref.get("apiVersion") or "")
    kind = str(ref.get("kind") or "")
    # schema.FromAPIVersionAndKind: "group/version" or "version"; a bare "a/b/c" parses
    # as no version at all.
    parts = api_version.split("/")
    version = parts[0] if len(parts) == 1 else parts[1] if len(parts) == 2 else ""
    group = parts[0] if len(parts) == 2 else ""
    errors = []
    if not version:
        errors.append(invalid(_child(path, "apiVersion"), api_version,
                              "version must not be empty"))
    if not kind:
        errors.append(invalid(_child(path, "kind"), kind, "kind must not be empty"))
    for key in ("name", "uid"):
        if not ref.get(key):
            errors.append(invalid(_child(path, key), str(ref.get(key) or ""),
                                  f"{key} must not be empty"))
    if (group, version, kind) == ("", "v1", "Event"):
        errors.append(invalid(path, GoSyntax(_owner_reference_syntax(ref)),
                              "/v1, Kind=Event is disallowed from being an owner"))
    return errors


class GoSyntax:
    """A bad value already written as Go's ``%#v`` writes the Go struct it decoded into
    (fielderrors prints unknown objects with ``repr``). Pointers print with a placeholder
    address: a real server prints the pointer's address, which no client can predict."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _owner_reference_syntax(ref: Mapping[str, Any]) -> str:
    return ("v1.OwnerReference{APIVersion:" + _q(ref.get("apiVersion")) + ", Kind:"
            + _q(ref.get("kind")) + ", Name:" + _q(ref.get("name")) + ", UID:"
            + _q(ref.get("uid")) + ", Controller:" + _bool_ptr(ref.get("controller"))
            + ", BlockOwnerDeletion:" + _bool_ptr(ref.get("blockOwnerDeletion")) + "}")


def _q(value: Any) -> str:
    return go_syntax(str(value or ""))


def _bool_ptr(value: Any) -> str:
    return "(*bool)(nil)" if value is None else "(*bool)(0xc000000000)"


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    """``ValidateOwnerReferences``: each complete, at most one ``controller: true``."""
    errors: list[FieldError] = []
    first_controller = ""
    for item in _sequence(refs):
        ref = _mapping(item)
        errors += _owner_reference(ref, path)
        if ref.get("controller") is True:
            current = f"{ref.get('kind') or ''}/{ref.get('name') or ''}"
            if first_controller:
                errors.append(invalid(
                    path, GoSyntax("[]v1.OwnerReference{" + ", ".join(
                        _owner_reference_syntax(_mapping(r)) for r in _sequence(refs)) + "}"),
                    'Only one reference can have Controller set to true. Found "true" in '
                    f"references for {first_controller} and {current}"))
            else:
                first_controller = current
    return errors


def validate_finalizers(finalizers: Any, path: str) -> list[FieldError]:
    """``ValidateFinalizers``: qualified names; ``orphan`` and ``foregroundDeletion`` not both."""
    values = [str(f) for f in _sequence(finalizers)]
    errors = [invalid(path, value, msg) for value in values
              for msg in names.is_qualified_name(value)]
    if FINALIZER_ORPHAN in values and FINALIZER_FOREGROUND in values:
        errors.append(invalid(path, GoSyntax(go_string_slice(values)),
                              f"finalizer {FINALIZER_ORPHAN} and {FINALIZER_FOREGROUND} "
                              "cannot be both set"))
    return errors


def validate_kube_finalizer_names(finalizers: Any, path: str) -> list[FieldError]:
    """``validateKubeFinalizerName`` (core group only): an unqualified finalizer must be
    one of Kubernetes' own (``kubernetes``, ``orphan``, ``foregroundDeletion``)."""
    errors = []
    for index, item in enumerate(_sequence(finalizers)):
        value = str(item)
        if "/" not in value and value not in STANDARD_FINALIZERS:
            errors.append(invalid(_child(path, index), value,
                                  "name is neither a standard finalizer name nor is it fully "
                                  "qualified"))
    return errors


def validate_managed_fields(entries: Any, path: str) -> list[FieldError]:
    """``ValidateManagedFields``."""
    errors = []
    for index, item in enumerate(_sequence(entries)):
        entry = _mapping(item)
        at = _child(path, index)
        operation = str(entry.get("operation") or "")
        if operation not in ("Apply", "Update"):
            errors.append(invalid(_child(at, "operation"), operation,
                                  "must be `Apply` or `Update`"))
        fields_type = str(entry.get("fieldsType") or "")
        if fields_type and fields_type != "FieldsV1":
            errors.append(invalid(_child(at, "fieldsType"), fields_type, "must be `FieldsV1`"))
        manager = str(entry.get("manager") or "")
        if len(manager) > FIELD_MANAGER_MAX_LENGTH:
            errors.append(too_long(_child(at, "manager"), FIELD_MANAGER_MAX_LENGTH))
        for position, char in enumerate(manager):
            if not char.isprintable():
                errors.append(invalid(_child(at, "manager"), manager,
                                      f"invalid character U+{ord(char):04X} (at position "
                                      f"{position})"))
        if len(str(entry.get("subresource") or "")) > MAX_SUBRESOURCE_NAME_LENGTH:
            errors.append(too_long(_child(at, "subresource"), MAX_SUBRESOURCE_NAME_LENGTH))
    return errors


def validate_object_meta(meta: Mapping[str, Any], *, namespaced: bool,
                         name_rule: names.NameRule, path: str = "metadata",
                         core: bool = False) -> list[FieldError]:
    """``ValidateObjectMetaAccessor`` (create): name or generateName, the kind's name rule,
    namespace present iff namespaced, labels, annotations, owner references, finalizers,
    managed fields. ``core``: the core group's wrapper, which adds the finalizer-name rule."""
    errors: list[FieldError] = []
    generate_name = str(meta.get("generateName") or "")
    if generate_name:
        errors += [invalid(_child(path, "generateName"), generate_name, msg)
                   for msg in name_rule(generate_name, True)]
    name = str(meta.get("name") or "")
    if not name:
        errors.append(required(_child(path, "name"), "name or generateName is required"))
    else:
        errors += [invalid(_child(path, "name"), name, msg) for msg in name_rule(name, False)]
    namespace = str(meta.get("namespace") or "")
    if namespaced:
        if not namespace:
            errors.append(required(_child(path, "namespace")))
        else:
            errors += [invalid(_child(path, "namespace"), namespace, msg)
                       for msg in names.name_is_dns_label(namespace, False)]
    elif namespace:
        errors.append(forbidden(_child(path, "namespace"), "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        errors.append(invalid(_child(path, "generation"), generation, IS_NEGATIVE))
    errors += _common(meta, path)
    errors += validate_finalizers(meta.get("finalizers"), _child(path, "finalizers"))
    errors += validate_managed_fields(meta.get("managedFields"), _child(path, "managedFields"))
    if core:
        errors += validate_kube_finalizer_names(meta.get("finalizers"),
                                                _child(path, "finalizers"))
    return errors


def _common(meta: Mapping[str, Any], path: str) -> list[FieldError]:
    return (validate_labels(meta.get("labels"), _child(path, "labels"))
            + validate_annotations(meta.get("annotations"), _child(path, "annotations"))
            + validate_owner_references(meta.get("ownerReferences"),
                                        _child(path, "ownerReferences")))


def validate_object_meta_update(new: Mapping[str, Any], old: Mapping[str, Any], *,
                                path: str = "metadata", core: bool = False) -> list[FieldError]:
    """``ValidateObjectMetaAccessorUpdate``: no new finalizers once deleting, a
    resourceVersion, no smaller generation, immutable name/namespace/uid/timestamps, and the
    labels, annotations, owner references and managed fields of ``new``."""
    errors: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(map(str, _sequence(new.get("finalizers"))))
                       - set(map(str, _sequence(old.get("finalizers")))))
        if added:
            errors.append(forbidden(
                _child(path, "finalizers"),
                "no new finalizers can be added if the object is being deleted, found new "
                f"finalizers {go_string_slice(added)}"))
    if not new.get("resourceVersion"):
        errors.append(invalid(_child(path, "resourceVersion"),
                              str(new.get("resourceVersion") or ""),
                              "must be specified for an update"))
    new_generation, old_generation = new.get("generation") or 0, old.get("generation") or 0
    if isinstance(new_generation, int) and isinstance(old_generation, int) \
            and new_generation < old_generation:
        errors.append(invalid(_child(path, "generation"), new_generation,
                              "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds"):
        if (new.get(key) or None) != (old.get(key) or None):
            errors.append(invalid(_child(path, key), _immutable_value(key, new.get(key)),
                                  FIELD_IMMUTABLE))
    errors += _common(new, path)
    errors += validate_managed_fields(new.get("managedFields"), _child(path, "managedFields"))
    if core:
        errors += validate_kube_finalizer_names(new.get("finalizers"),
                                                _child(path, "finalizers"))
    return errors


def _immutable_value(key: str, value: Any) -> Any:
    # The Go values: strings print quoted; a *int64 prints its number or null; Times print
    # through their String() method, which kubectl users never see for these fields.
    if key == "deletionGracePeriodSeconds":
        return value
    return "" if value is None else str(value)


__all__ = [
    "FIELD_IMMUTABLE",
    "IS_NEGATIVE",
    "GoSyntax",
    "validate_annotations",
    "validate_finalizers",
    "validate_kube_finalizer_names",
    "validate_label_name",
    "validate_labels",
    "validate_managed_fields",
    "validate_object_meta",
    "validate_object_meta_update",
    "validate_owner_references",
]
