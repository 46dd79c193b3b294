"""Structural defaulting of custom resources: ``default:`` in the schema, applied as on a server.

apiextensions-apiserver v0.32.9 ``pkg/apiserver/schema/defaulting/algorithm.go``
(``Default``), called by the ``unstructuredDefaulter`` of
``pkg/apiserver/customresource_handler.go`` right after pruning (:mod:`.pruning`) in
the same decode. That decode runs on every request body (create, update, patch,
status writes) *and* on every object read from storage, so an object stored before a
default was added to its CRD gains the default the next time it is read.

The rules:

* an object's declared property that is missing, or null where the property is not
  ``nullable``, gets the property's default (a deep copy);
* a null value of a map under ``additionalProperties`` or a null list item gets the
  ``additionalProperties``/``items`` default, when that schema is not nullable;
* defaulting then descends into every declared property, ``additionalProperties``
  value and list item, so a default that is an object is defaulted inside too;
* only the structural part of the schema counts: a ``default`` or ``properties`` inside
  ``anyOf``/``allOf``/``oneOf``/``not`` is never applied (CRD validation forbids them).

Defaults are not validated here (CRD registration checks them) and not pruned (the
server prunes defaults when it loads the CRD; CRD validation refuses unpruned ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headwater_dev.apiextensions import schemaview as st
from headwater_dev.jsoncopy import deep_copy


def _non_nullable_null(value: Any, schema: st.Schema | None) -> bool:
    """``isNonNullableNull``: a null the schema does not allow."""
    return value is None and schema is not None and not st.nullable(schema)


def _default(value: Any, schema: st.Schema | None) -> None:
    """``defaulting.Default``, in place."""
    if schema is None:
        return
    if isinstance(value, dict):
        declared = st.properties(schema)
        for key in sorted(declared):
            sub = declared[key]
            if st.has_default(sub) and (key not in value or _non_nullable_null(value[key], sub)):
                value[key] = deep_copy(sub["default"])
        extra = st.additional_properties(schema)
        for key in sorted(value):
            item = value[key]
            if item is not None and not isinstance(item, (dict, list)):
                continue  # a scalar: no default to apply below it, and not a null to replace
            if key in declared:
                _default(value[key], declared[key])
            elif st.has_additional_properties(schema):
                if _non_nullable_null(value[key], extra) and extra is not None:
                    value[key] = deep_copy(extra.get("default"))
                _default(value[key], extra)
    elif isinstance(value, list):
        item_schema = st.items(schema)
        for index, item in enumerate(value):
            if _non_nullable_null(item, item_schema) and item_schema is not None:
                value[index] = deep_copy(item_schema.get("default"))
            _default(value[index], item_schema)


def apply_defaults(schema: st.Schema | None, obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` with the schema's defaults applied (a new object; ``obj`` is not changed)."""
    out: dict[str, Any] = deep_copy(dict(obj))
    _default(out, schema)
    return out


def apply_defaults_in_place(schema: st.Schema | None, obj: dict[str, Any]) -> None:
    """Apply the schema's defaults to ``obj`` itself (a copy its caller owns, such as
    :func:`.pruning.decode`'s result), saving :func:`apply_defaults`'s copy."""
    _default(obj, schema)


__all__ = ["apply_defaults", "apply_defaults_in_place"]
