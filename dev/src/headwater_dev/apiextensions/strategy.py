"""What every write of a custom resource goes through, in the API server's order.

The custom resource strategy of apiextensions-apiserver v0.32.9 with the request
handling around it (the full sequence, with citations, is in :mod:`.validation`), for
one served version of a CRD:

1. decoding: ``metadata`` through ObjectMeta, pruning of undeclared fields and of nulls
   the schema does not allow (:mod:`.pruning`; malformed metadata is a 400), then the
   schema's defaults (:mod:`.defaulting`);
2. the strict decoding errors — duplicate fields (found by the HTTP layer in the raw
   body) and the unknown fields pruning dropped — under ``fieldValidation``
   (:meth:`~..strategies.WriteOptions.strict_errors`);
3. ``PrepareForCreate``/``PrepareForUpdate``: the main resource never writes ``status``
   and the status subresource writes nothing else (the store merges that);
4. validation: type meta, ObjectMeta (the name is a DNS-1123 subdomain), the OpenAPI
   schema (ratcheting on update), embedded resources and list types
   (:func:`.validation.strategy_errors`, or the status strategy's), then the CEL rules
   (:func:`..cel.rule_violations`) unless a blocking error came first.

Custom resources allow no unconditional update: a PUT must carry a resourceVersion.
"""

from __future__ import annotations

from typing import Any

from headwater_dev.apierrors import ApiError
from headwater_dev.apiextensions import fieldvalidation
from headwater_dev.apiextensions.defaulting import apply_defaults_in_place
from headwater_dev.apiextensions.pruning import MalformedObjectError, decode
from headwater_dev.apiextensions.validation import (
    RULES_NOT_CHECKED,
    has_blocking_errors,
    has_validation_rules,
    status_strategy_errors,
    strategy_errors,
)
from headwater_dev.builtins.names import name_is_dns_subdomain, name_is_path_segment
from headwater_dev.builtins.objectmeta import (
    validate_object_meta,
    validate_object_meta_update,
)
from headwater_dev.cel import rule_violations
from headwater_dev.fielderrors import FieldError
from headwater_dev.resources import ResourceSpec
from headwater_dev.strategies import Strategy, Subresource, WriteOptions

JsonObject = dict[str, Any]


def _embedded_meta(meta: Any, namespaced: bool, path: str) -> list[FieldError]:
    """ObjectMeta rules of an embedded resource (``ValidatePathSegmentName`` names)."""
    return validate_object_meta(meta, namespaced=namespaced, name_rule=name_is_path_segment,
                                path=path)


class CustomResourceStrategy(Strategy):
    """Writes of one served version of a CRD, checked against that version's schema."""

    allow_unconditional_update = False

    def __init__(self, spec: ResourceSpec) -> None:
        super().__init__(spec)
        self.schema = spec.schema

    # --- decoding ----------------------------------------------------------------------
    def _decoded(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        try:
            decoded, unknown = decode(self.schema, obj)  # a new object: defaulted in place
            apply_defaults_in_place(self.schema, decoded)
        except MalformedObjectError as exc:
            raise ApiError(400, "BadRequest", fieldvalidation.decode_error_message(
                self.spec.kind, self.spec.version, str(exc))) from exc
        errors = fieldvalidation.strict_errors(options.duplicate_fields, unknown)
        options.strict_errors(errors, lambda: fieldvalidation.decode_error_message(
            self.spec.kind, self.spec.version, fieldvalidation.strict_decoding_message(errors)),
            patched=obj)
        return decoded

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        return self._without_status(self._decoded(obj, options))  # decoding copied it

    def prepare_update(self, new: JsonObject, old: JsonObject, subresource: Subresource,
                       options: WriteOptions) -> JsonObject:
        return self._decoded(new, options)

    # --- validation --------------------------------------------------------------------
    def _with_rules(self, errors: list[FieldError], new: JsonObject,
                    old: JsonObject | None) -> list[FieldError]:
        """The CEL rules after the schema's errors (``hasBlockingErr`` stops them)."""
        if self.schema is None or not has_validation_rules(self.schema):
            return errors
        if has_blocking_errors(errors):
            return [*errors, RULES_NOT_CHECKED]
        return [*errors, *rule_violations(self.schema, new, old)]

    def validate_create(self, obj: JsonObject) -> list[FieldError]:
        meta_errors = validate_object_meta(obj.get("metadata") or {},
                                           namespaced=self.spec.namespaced,
                                           name_rule=name_is_dns_subdomain)
        errors = strategy_errors(self.schema, obj, group=self.spec.group,
                                 version=self.spec.version, kind=self.spec.kind,
                                 object_meta_errors=meta_errors,
                                 object_meta_rules=_embedded_meta)
        return self._with_rules(errors, obj, None)

    def validate_update(self, new: JsonObject, old: JsonObject,
                        subresource: Subresource) -> list[FieldError]:
        meta_errors = validate_object_meta_update(new.get("metadata") or {},
                                                  old.get("metadata") or {})
        if subresource == "status":
            errors = status_strategy_errors(self.schema, new, old, group=self.spec.group,
                                            version=self.spec.version, kind=self.spec.kind,
                                            object_meta_errors=meta_errors)
        else:
            errors = strategy_errors(self.schema, new, old, group=self.spec.group,
                                     version=self.spec.version, kind=self.spec.kind,
                                     object_meta_errors=meta_errors,
                                     object_meta_rules=_embedded_meta)
        return self._with_rules(errors, new, old)


__all__ = ["CustomResourceStrategy"]
