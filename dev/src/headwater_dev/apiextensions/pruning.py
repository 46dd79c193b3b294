"""What the API server's decoder does to every custom resource: pruning, and the unknown fields.

A real API server drops every field of a custom resource its CRD's structural schema
does not declare, silently, unless the request asked for ``fieldValidation=Strict``
(refused) or ``Warn`` (the default: one warning per dropped field). Without this the
emulator would keep a misspelt ``spec.concurency`` that a cluster throws away.

apiextensions-apiserver v0.32.9 ``pkg/apiserver/customresource_handler.go``
(``unstructuredSchemaCoercer.apply``) runs, on every decode of a request body (create,
update, patch, status writes alike) and of every object read from storage:

1. ``metadata`` round-trips through ``ObjectMeta`` (``schema/objectmeta``
   ``GetObjectMetaWithOptions``, see :mod:`.objectmeta`): unknown metadata fields
   are dropped and reported as ``metadata.<field>``;
2. pruning (``schema/pruning/algorithm.go`` ``PruneWithOptions``, with
   ``isResourceRoot``): fields outside ``properties`` are dropped, unless
   ``additionalProperties`` takes them or ``x-kubernetes-preserve-unknown-fields`` keeps
   them; ``apiVersion``, ``kind`` and ``metadata`` are never pruned at the root or in an
   ``x-kubernetes-embedded-resource``; the dropped paths are reported sorted
   (``spec.ports[0].unknownNested``, ``spec.unknown1``: Go's ``sort.Strings``);
3. nulls where the schema is neither ``nullable`` nor has a ``default`` are dropped
   (``schema/defaulting/prunenulls.go`` ``PruneNonNullableNullsWithoutDefaults``;
   nulls with a default are left for defaulting to replace);
4. the ``metadata`` of each embedded resource is coerced like the root's
   (``schema/objectmeta/coerce.go`` ``CoerceWithOptions``): unknown fields dropped and
   reported (sorted) as ``<path>.metadata.<field>``, ``apiVersion``/``kind`` that are not
   strings refuse the request;
5. ``kind``, ``apiVersion`` and the round-tripped ``metadata`` are put back.

(A root ``apiVersion`` or ``kind`` that is not a string never gets this far: the
serializer's ``Interpret`` refuses the body first, which is the HTTP layer's concern.
And the server prunes only an object whose group and kind are the CRD's; an object of
another kind keeps its fields, and the strategy's TypeMeta check refuses it.)

Structural defaulting (:mod:`.defaulting`) comes right after, in the same decode.

:func:`unknown_fields` returns steps 1, 2 and 4's reports in that order, which is the
order of the ``unknown field "…"`` errors in the ``strict decoding error`` (after the
body's ``duplicate field`` errors, see :mod:`.fieldvalidation`).

A value the decoder cannot take (metadata of the wrong type, an embedded ``kind`` that
is not a string) raises :class:`MalformedObjectError`: the server answers 400
BadRequest (:func:`.fieldvalidation.decode_error_message`).

Where Go iterates a map (in random order) this module goes in sorted key order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from headwater_dev.apiextensions import schemaview as st
from headwater_dev.apiextensions.objectmeta import (
    MetadataDecodeError,
    decode_object_meta,
)
from headwater_dev.jsoncopy import deep_copy

_META_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata"})


class MalformedObjectError(ValueError):
    """A custom resource the API server's decoder refuses (400 BadRequest); str() is why."""


@dataclass
class _Pruning:
    """The state of one pruning walk: the path so far and what was dropped."""

    unknown: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)

    def child(self, key: str) -> None:
        self.path.append(f".{key}" if self.path else key)

    def index(self, position: int) -> None:
        self.path.append(f"[{position}]")

    def record(self, key: str) -> None:
        self.unknown.append("".join([*self.path, f".{key}" if self.path else key]))


def _prune(value: Any, schema: st.Schema | None, state: _Pruning) -> None:
    """``pruning.prune``: drop what ``schema`` does not declare, in place."""
    if schema is not None and st.preserves_unknown_fields(schema):
        _skip_prune(value, schema, state)
        return
    depth = len(state.path)
    if isinstance(value, dict):
        if schema is None:
            for key in sorted(value):
                state.record(key)
                del value[key]
            return
        declared = st.properties(schema)
        for key in sorted(value):
            if st.embedded_resource(schema) and key in _META_FIELDS:
                continue
            if key in declared or st.has_additional_properties(schema):
                if _is_leaf(value[key]):
                    continue  # nothing below a scalar to prune
                state.child(key)
                _prune(value[key], declared.get(key) if key in declared
                       else st.additional_properties(schema), state)
                del state.path[depth:]
            else:
                if key not in _META_FIELDS or state.path:
                    state.record(key)
                del value[key]
    elif isinstance(value, list):
        for position, item in enumerate(value):
            state.index(position)
            _prune(item, None if schema is None else st.items(schema), state)
            del state.path[depth:]


def _skip_prune(value: Any, schema: st.Schema | None, state: _Pruning) -> None:
    """``pruning.skipPrune``: keep unknown fields, still prune the declared ones inside."""
    if schema is None:
        return
    depth = len(state.path)
    if isinstance(value, dict):
        declared = st.properties(schema)
        for key in sorted(value):
            if st.embedded_resource(schema) and key in _META_FIELDS:
                continue
            if key in declared or st.has_additional_properties(schema):
                state.child(key)
                _prune(value[key], declared.get(key) if key in declared
                       else st.additional_properties(schema), state)
                del state.path[depth:]
    elif isinstance(value, list):
        for position, item in enumerate(value):
            state.index(position)
            _skip_prune(item, st.items(schema), state)
            del state.path[depth:]


def _field_schema(schema: st.Schema | None, key: str) -> st.Schema | None:
    """``getSchemaForField``: the declared property, else ``additionalProperties``."""
    declared = st.properties(schema)
    return declared[key] if key in declared else st.additional_properties(schema)


def _is_leaf(value: Any) -> bool:
    """A decoded scalar: the walks here have nothing to do below one (``type`` first, as
    the walks test ``isinstance(…, dict | list)``)."""
    kind = type(value)
    return kind is not dict and kind is not list and not isinstance(value, (dict, list))


def prune_nulls(value: Any, schema: st.Schema | None) -> None:
    """``PruneNonNullableNullsWithoutDefaults``: drop nulls the schema cannot hold, in place."""
    if isinstance(value, dict):
        for key in sorted(value):
            item = value[key]
            if item is not None and _is_leaf(item):
                continue  # neither a null to drop nor a container to walk
            sub = _field_schema(schema, key)
            if item is None and sub is not None and not st.nullable(sub) and (
                    not st.has_default(sub)):
                del value[key]
            else:
                prune_nulls(item, sub)
    elif isinstance(value, list):
        for item in value:
            prune_nulls(item, st.items(schema))


def _invalid(path: str, value: Any, detail: str) -> str:
    """The text of ``field.Invalid(path, value, detail)``, as Coerce returns it."""
    # Imported here: fielderrors imports the store, and the store imports this module.
    from headwater_dev.fielderrors import invalid
    return invalid(path, value, detail).message()


def _coerce_embedded(value: Any, schema: st.Schema | None, path: str,
                     unknown: list[str]) -> None:
    """``objectmeta.CoerceWithOptions`` below the root: embedded TypeMeta and ObjectMeta."""
    if schema is None:
        return
    if isinstance(value, dict):
        for key in sorted(value):
            item = value[key]
            here = f"{path}.{key}" if path else key
            if st.embedded_resource(schema) and key in ("apiVersion", "kind") and (
                    not isinstance(item, str)):
                raise MalformedObjectError(_invalid(here, item, "must be a string"))
            if st.embedded_resource(schema) and key == "metadata":
                _coerce_embedded_meta(value, path, unknown)
            # Only parts whose schema has an embedded resource somewhere have work here.
            declared = st.properties(schema)
            if key in declared:
                if st.may_hold_embedded_resource(declared[key]):
                    _coerce_embedded(value[key], declared[key], here, unknown)
            elif st.has_additional_properties(schema) and st.may_hold_embedded_resource(
                    st.additional_properties(schema)):
                _coerce_embedded(value[key], st.additional_properties(schema),
                                 f"{path}[{key}]", unknown)
    elif isinstance(value, list) and st.may_hold_embedded_resource(st.items(schema)):
        for position, item in enumerate(value):
            _coerce_embedded(item, st.items(schema), f"{path}[{position}]", unknown)


def _coerce_embedded_meta(resource: dict[str, Any], path: str, unknown: list[str]) -> None:
    metadata = resource["metadata"]
    try:
        decoded = decode_object_meta(metadata, path)
    except MetadataDecodeError as error:
        raise MalformedObjectError(_invalid(f"{path}.metadata" if path else "metadata",
                                            metadata, str(error))) from None
    unknown.extend(decoded.unknown)
    resource["metadata"] = decoded.meta


def _coerce(schema: st.Schema | None, obj: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                       list[str]]:
    """``unstructuredSchemaCoercer.apply`` on a copy: the result and the unknown fields."""
    out: dict[str, Any] = deep_copy(dict(obj))
    reported: list[str] = []
    if "metadata" in out:
        try:
            decoded = decode_object_meta(out["metadata"])
        except MetadataDecodeError as error:
            raise MalformedObjectError(str(error)) from None
        reported.extend(decoded.unknown)
        out["metadata"] = decoded.meta
    root = {**(schema or {}), "x-kubernetes-embedded-resource": True}
    state = _Pruning()
    _prune(out, root, state)
    reported.extend(sorted(state.unknown))
    prune_nulls(out, schema)
    embedded: list[str] = []
    _coerce_embedded(out, {**(schema or {}), "x-kubernetes-embedded-resource": False}, "",
                     embedded)
    reported.extend(sorted(embedded))
    return out, reported


def decode(schema: st.Schema | None, obj: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                      list[str]]:
    """:func:`prune` and :func:`unknown_fields` in one walk: what a write of a custom
    resource needs, the object and the fields dropped from it."""
    if schema is None:
        return deep_copy(dict(obj)), []
    return _coerce(schema, obj)


def prune(schema: st.Schema | None, obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as the API server's decoder leaves it: pruned, nulls dropped, metadata coerced.

    With no schema (a resource that is not a custom resource) ``obj`` comes back as a
    copy, untouched. Raises :class:`MalformedObjectError` where the server answers 400.
    """
    if schema is None:
        return deep_copy(dict(obj))
    return _coerce(schema, obj)[0]


def unknown_fields(schema: st.Schema | None, obj: Mapping[str, Any]) -> list[str]:
    """The fields :func:`prune` drops, named and ordered as strict decoding reports them.

    Each becomes ``unknown field "<path>"`` (Strict: one error, Warn: one warning each).
    """
    if schema is None:
        return []
    return _coerce(schema, obj)[1]


__all__ = ["MalformedObjectError", "decode", "prune", "prune_nulls", "unknown_fields"]
