"""Every check a write of a custom resource goes through, in the order Kubernetes 1.32 runs them.

The entry points of the custom-resource checks; the modules beside this one do the
work. The order, from apiextensions-apiserver v0.32.9 (``pkg/apiserver/
customresource_handler.go``, ``pkg/registry/customresource/strategy.go``,
``status_strategy.go``, ``validator.go``) and apiserver v0.32.9
(``pkg/endpoints/handlers/create.go``, ``update.go``, ``patch.go``,
``pkg/registry/rest/create.go``, ``update.go``):

**Create** (POST)

1. decode the body; with ``fieldValidation`` Strict or Warn (Warn is the default) the
   JSON decoder records duplicate fields (:func:`.fieldvalidation.duplicate_fields`);
2. ``metadata`` through ObjectMeta, prune, drop non-nullable nulls, coerce embedded
   metadata (:func:`.pruning.prune`; what it drops is :func:`.pruning.unknown_fields`);
   malformed metadata → 400 (:class:`.pruning.MalformedObjectError`);
3. structural defaulting (:func:`.defaulting.apply_defaults`);
4. strict errors: Strict → 400 BadRequest
   (:func:`.fieldvalidation.strict_decoding_message`), Warn → one warning each;
5. ``PrepareForCreate``: ``status`` dropped when the status subresource is on,
   ``generation`` 1; name generation;
6. :func:`strategy_errors` (``customResourceStrategy.Validate``): TypeMeta (alone when
   wrong), else ObjectMeta (``NameIsDNSSubdomain``: the name of a custom resource is a
   DNS-1123 subdomain) and the OpenAPI schema and the scale paths; then the embedded
   resources; then the list-type uniqueness;
7. CEL ``x-kubernetes-validations``, when the schema has any
   (:func:`has_validation_rules`; without rules nothing is added): unless
   :func:`has_blocking_errors`, in which case :data:`RULES_NOT_CHECKED` is appended
   instead;
8. any error → 422 Invalid (``fielderrors.invalid_error``); then the generic ObjectMeta
   check of ``BeforeCreate`` and the finalizer-name warnings.

**Update** (PUT) and **patch** (merge/JSON/strategic): the stored object is read (and
defaulted: the storage decoder runs steps 2–3 too); a patch is applied to it and the
result decoded like a body (steps 1–4; Strict errors of a patch are a 422 on the field
``patch``); ``PrepareForUpdate`` keeps the stored ``status`` when the status
subresource is on and bumps ``generation`` when anything but metadata changed; then
:func:`strategy_errors` with ``old``: the schema validation *ratchets* (unchanged
invalid values pass), embedded resources are checked as on create, list types only
when the old object had no list-type error; then CEL (with ``oldSelf``) or
:data:`RULES_NOT_CHECKED`.

**Status writes** (``…/status``): decoded as above; ``statusStrategy.PrepareForUpdate``
keeps everything but ``status`` from the stored object; then
:func:`status_strategy_errors`: TypeMeta, ObjectMeta update rules, the ``status``
schema alone (field paths under ``status``, messages without that prefix, *no*
ratcheting), the scale status paths, list types as on update, no embedded-resource
check; then CEL or :data:`RULES_NOT_CHECKED`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions import schemavalidator as openapi
from headwater_dev.apiextensions import schemaview as st
from headwater_dev.apiextensions.embedded import (
    ObjectMetaRules,
    embedded_resource_errors,
)
from headwater_dev.apiextensions.listtype import list_type_errors

RULES_NOT_CHECKED: Final = fe.invalid(
    "<nil>", None, "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation")
"""The error the strategy adds instead of running CEL rules (``hasBlockingErr``)."""

_BLOCKING: Final = frozenset({fe.ErrorType.NOT_SUPPORTED, fe.ErrorType.REQUIRED,
                              fe.ErrorType.TOO_LONG, fe.ErrorType.TOO_MANY,
                              fe.ErrorType.TYPE_INVALID})


def has_validation_rules(schema: st.Schema | None) -> bool:
    """Whether the structural schema has ``x-kubernetes-validations`` anywhere.

    Without them the strategy has no CEL validator (``cel.NewValidator`` returns nil for
    ``hasXValidations`` false) and adds neither rule errors nor :data:`RULES_NOT_CHECKED`.
    """
    if schema is None:
        return False
    rules = schema.get("x-kubernetes-validations")
    if isinstance(rules, Sequence) and rules:
        return True
    return (has_validation_rules(st.items(schema))
            or has_validation_rules(st.additional_properties(schema))
            or any(has_validation_rules(sub) for sub in st.properties(schema).values()))


def has_blocking_errors(errors: Sequence[fe.FieldError]) -> bool:
    """Whether these errors stop the CEL rules from running (``hasBlockingErr``).

    An enum, required, maxLength, maxItems/maxProperties or type error anywhere (schema,
    metadata, list types) means the object is too far off for its rules to be
    evaluated; the strategy then appends :data:`RULES_NOT_CHECKED` instead of the rules'
    errors (when it has rules at all: :func:`has_validation_rules`). Other errors
    (pattern, minimum, duplicates, ...) let the rules run.
    """
    return any(error.type in _BLOCKING for error in errors)


def type_meta_errors(obj: Mapping[str, Any], *, group: str, version: str, kind: str
                     ) -> list[fe.FieldError]:
    """``customResourceValidator.ValidateTypeMeta``: the object's kind and apiVersion."""
    # The type accessor reads a missing or non-string field as "".
    found_kind, found_version = (value if isinstance(value, str) else ""
                                 for value in (obj.get("kind"), obj.get("apiVersion")))
    errors = []
    if found_kind != kind:
        errors.append(fe.invalid("kind", found_kind, f"must be {kind}"))
    if found_version != f"{group}/{version}":
        errors.append(fe.invalid("apiVersion", found_version, f"must be {group}/{version}"))
    return errors


# --- the scale subresource --------------------------------------------------------------
def _go_v(value: Any) -> str:
    kind = st.go_kind(value)
    if kind == "nil":
        return "<nil>"
    if kind == "map":
        return "map[" + " ".join(f"{k}:{_go_v(value[k])}" for k in sorted(value)) + "]"
    if kind == "slice":
        return "[" + " ".join(_go_v(item) for item in value) + "]"
    if kind == "float":
        return fe.go_float(float(value))
    return fe.go_value(value)


def _go_type(value: Any) -> str:
    return {"nil": "<nil>", "bool": "bool", "int": "int64", "float": "float64",
            "string": "string", "slice": "[]interface {}",
            "map": "map[string]interface {}"}[st.go_kind(value)]


def _nested(obj: Mapping[str, Any], json_path: str, expected: str) -> tuple[Any, str]:
    """``unstructured.NestedFieldNoCopy`` then a type check: (value, error text)."""
    fields = json_path.removeprefix(".").split(".")
    current: Any = obj
    for depth, name in enumerate(fields):
        if not isinstance(current, Mapping):
            where = "." + ".".join(fields[:depth])
            return None, (f"{where} accessor error: {_go_v(current)} is of the type "
                          f"{_go_type(current)}, expected map[string]interface{{}}")
        if name not in current:
            return None, ""
        current = current[name]
    wanted = "int" if expected == "int64" else "string"
    if st.go_kind(current) != wanted:
        return None, (f".{'.'.join(fields)} accessor error: {_go_v(current)} is of the type "
                      f"{_go_type(current)}, expected {expected}")
    return current, ""


def _replicas_errors(obj: Mapping[str, Any], json_path: str) -> list[fe.FieldError]:
    value, problem = _nested(obj, json_path, "int64")
    if problem:
        return [fe.invalid(json_path, 0, problem)]
    if value is not None and value < 0:
        return [fe.invalid(json_path, value, "should be a non-negative integer")]
    if value is not None and value > 2**31 - 1:
        return [fe.invalid(json_path, value, "should be less than or equal to 2147483647")]
    return []


def scale_errors(obj: Mapping[str, Any], scale: Mapping[str, Any] | None, *,
                 spec: bool = True) -> list[fe.FieldError]:
    """``ValidateScaleSpec`` (when ``spec``) and ``ValidateScaleStatus`` for a CRD's
    ``subresources.scale`` (``specReplicasPath``, ``statusReplicasPath``,
    ``labelSelectorPath``)."""
    if not scale:
        return []
    errors = []
    if spec:
        errors.extend(_replicas_errors(obj, str(scale.get("specReplicasPath", ""))))
    errors.extend(_replicas_errors(obj, str(scale.get("statusReplicasPath", ""))))
    selector = scale.get("labelSelectorPath")
    if isinstance(selector, str):
        _, problem = _nested(obj, selector, "string")
        if problem:
            errors.append(fe.invalid(selector, "", problem))
    return errors


# --- the schema checks ------------------------------------------------------------------
def validation_errors(schema: st.Schema | None, obj: Mapping[str, Any],
                      old: Mapping[str, Any] | None = None, *,
                      object_meta_rules: ObjectMetaRules | None = None
                      ) -> list[fe.FieldError]:
    """The schema's verdict on the whole object, as the main resource's strategy gives it.

    The OpenAPI validation (:mod:`.openapi`; on update, with ``old``, ratcheting: an
    unchanged invalid value is let through), then the embedded resources
    (:mod:`.embedded`), then list-type uniqueness (:mod:`.listtype`; on update only when
    ``old`` had no such error). ``object_meta_rules`` checks embedded ObjectMeta.
    """
    if schema is None:
        return []
    errors = openapi.schema_errors(schema, obj, old=old, ratchet=old is not None)
    errors += embedded_resource_errors(schema, obj, object_meta_rules=object_meta_rules)
    if old is None or not list_type_errors(schema, old):
        errors += list_type_errors(schema, obj)
    return errors


def status_validation_errors(schema: st.Schema | None, obj: Mapping[str, Any],
                             old: Mapping[str, Any]) -> list[fe.FieldError]:
    """The schema's verdict on a status write (``statusStrategy.ValidateUpdate``).

    Only ``status`` is validated, against the schema's ``status`` property, without
    ratcheting (``ValidateStatusUpdate`` passes no ratcheting option), with field paths
    under ``status``; then list types over the whole object, when ``old`` had none.
    """
    if schema is None:
        return []
    errors: list[fe.FieldError] = []
    status_schema = st.properties(schema).get("status")
    if status_schema is not None and "status" in obj:
        errors += openapi.schema_errors(status_schema, obj["status"], root="status")
    new_list_errors = list_type_errors(schema, obj)
    if new_list_errors and not list_type_errors(schema, old):
        errors += new_list_errors
    return errors


def strategy_errors(schema: st.Schema | None, obj: Mapping[str, Any],
                    old: Mapping[str, Any] | None = None, *, group: str, version: str,
                    kind: str, object_meta_errors: Sequence[fe.FieldError] = (),
                    object_meta_rules: ObjectMetaRules | None = None,
                    scale: Mapping[str, Any] | None = None) -> list[fe.FieldError]:
    """Everything the main resource's strategy reports before its CEL rules, in order.

    ``object_meta_errors`` are the ObjectMeta errors of the object (create: the
    ``NameIsDNSSubdomain`` rules; update: the update rules), computed by the caller.
    """
    errors = type_meta_errors(obj, group=group, version=version, kind=kind)
    if not errors:
        errors = list(object_meta_errors)
        if schema is not None:
            errors += openapi.schema_errors(schema, obj, old=old, ratchet=old is not None)
        errors += scale_errors(obj, scale)
    if schema is not None:
        errors += embedded_resource_errors(schema, obj, object_meta_rules=object_meta_rules)
        if old is None or not list_type_errors(schema, old):
            errors += list_type_errors(schema, obj)
    return errors


def status_strategy_errors(schema: st.Schema | None, obj: Mapping[str, Any],
                           old: Mapping[str, Any], *, group: str, version: str, kind: str,
                           object_meta_errors: Sequence[fe.FieldError] = (),
                           scale: Mapping[str, Any] | None = None) -> list[fe.FieldError]:
    """Everything the status strategy reports before its CEL rules, in order."""
    errors = type_meta_errors(obj, group=group, version=version, kind=kind)
    if not errors:
        errors = list(object_meta_errors)
        status_schema = st.properties(schema).get("status")
        if status_schema is not None and "status" in obj:
            errors += openapi.schema_errors(status_schema, obj["status"], root="status")
        errors += scale_errors(obj, scale, spec=False)
    new_list_errors = list_type_errors(schema, obj)
    if new_list_errors and not list_type_errors(schema, old):
        errors += new_list_errors
    return errors


__all__ = [
    "RULES_NOT_CHECKED",
    "has_blocking_errors",
    "has_validation_rules",
    "scale_errors",
    "status_strategy_errors",
    "status_validation_errors",
    "strategy_errors",
    "type_meta_errors",
    "validation_errors",
]
