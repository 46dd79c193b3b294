"""Uniqueness of ``x-kubernetes-list-type: set`` and ``map`` lists, as the API server checks it.

apiextensions-apiserver v0.32.9 ``pkg/apiserver/schema/listtype/validation.go``
(``ValidateListSetsAndMaps``), run by the custom resource strategy after the OpenAPI
schema validation and the embedded-resource checks:

* ``set``: each item must be unique; scalars compare by Go type and value (``1`` and
  ``1.0`` differ), objects and lists by their JSON; the *second* occurrence of each
  repeated item is reported once, ``Duplicate value: <item>`` at its index;
* ``map``: every item must be an object (else ``Invalid value: … must be an object for
  an array of list-type map``, and nothing else is checked for that list); the key
  fields of ``x-kubernetes-list-map-keys`` must be unique together, reported as a
  ``Duplicate value`` of the map of the item's key fields (a missing key counts as a
  value of its own);
* the walk follows ``properties``, ``additionalProperties`` (path ``[key]``) and
  ``items`` only.

On updates the strategies ratchet: errors in the new object count only when the old
object had none (``strategy.go`` ``ValidateUpdate``, ``status_strategy.go``).

Where Go iterates a map (in random order) this module goes in sorted key order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions import schemaview as st


class _Unspecified:
    """A list-map item without the key field (distinct from a null key value)."""


_UNSPECIFIED: Final = _Unspecified()


def _identity(value: Any) -> Any:
    """What Go's uniqueness check compares: a typed scalar, or the JSON of a compound."""
    if value is _UNSPECIFIED:
        return ("unspecified",)
    kind = st.go_kind(value)
    if kind in ("map", "slice"):
        return ("json", st.go_json(value))
    return (kind, st.go_number(value) if kind in ("int", "float") else value)


def non_unique_indexes(values: Sequence[Any]) -> list[int]:
    """``validateListSet``: the index of the second occurrence of each repeated value."""
    seen: dict[Any, int] = {}
    repeated = []
    for index, value in enumerate(values):
        identity = _identity(value)
        seen[identity] = seen.get(identity, 0) + 1
        if seen[identity] == 2:
            repeated.append(index)
    return repeated


def _list_map_errors(path: str, schema: st.Schema, items: Sequence[Any]) -> list[fe.FieldError]:
    for index, item in enumerate(items):
        if item is not None and not isinstance(item, Mapping):
            return [fe.invalid(f"{path}[{index}]", item,
                               "must be an object for an array of list-type map")]
    if len(items) <= 1:
        return []
    names = st.list_map_keys(schema)
    if len(names) == 1:
        name = names[0]
        keys = [_UNSPECIFIED if item is None or name not in item else item[name]
                for item in items]
        return [fe.duplicate(f"{path}[{index}]",
                             {} if keys[index] is _UNSPECIFIED else {name: keys[index]})
                for index in non_unique_indexes(keys)]
    composite = [{} if item is None else {name: item[name] for name in names if name in item}
                 for item in items]
    return [fe.duplicate(f"{path}[{index}]", composite[index])
            for index in non_unique_indexes(composite)]


def _array_errors(path: str, schema: st.Schema, items: Sequence[Any]) -> list[fe.FieldError]:
    errors: list[fe.FieldError] = []
    kind = st.list_type(schema)
    if kind == "set":
        errors.extend(fe.duplicate(f"{path}[{index}]", items[index])
                      for index in (non_unique_indexes(items) if len(items) > 1 else []))
    elif kind == "map":
        errors.extend(_list_map_errors(path, schema, items))
    item_schema = st.items(schema)
    if item_schema is not None and st.may_hold_keyed_list(item_schema):
        for index, item in enumerate(items):
            errors.extend(_value_errors(f"{path}[{index}]", item_schema, item))
    return errors


def _value_errors(path: str, schema: st.Schema, value: Any) -> list[fe.FieldError]:
    if isinstance(value, Mapping):
        return _object_errors(path, schema, value)
    if st.go_kind(value) == "slice":
        return _array_errors(path, schema, value)
    return []


def _object_errors(path: str, schema: st.Schema, obj: Mapping[str, Any]
                   ) -> list[fe.FieldError]:
    errors: list[fe.FieldError] = []
    # Only parts whose schema has a set or map list somewhere can have duplicates.
    extra = st.additional_properties(schema)
    if extra is not None and st.may_hold_keyed_list(extra):
        for key in sorted(obj):
            errors.extend(_value_errors(f"{path}[{key}]", extra, obj[key]))
    declared = st.properties(schema)
    for key in sorted(obj):
        if key in declared and st.may_hold_keyed_list(declared[key]):
            errors.extend(_value_errors(f"{path}.{key}" if path else key, declared[key],
                                        obj[key]))
    return errors


def list_type_errors(schema: st.Schema | None, obj: Mapping[str, Any] | None
                     ) -> list[fe.FieldError]:
    """Duplicates in the object's ``set`` and ``map`` lists (``ValidateListSetsAndMaps``)."""
    if schema is None or obj is None:
        return []
    return _object_errors("", schema, obj)


__all__ = ["list_type_errors", "non_unique_indexes"]
