"""A CRD's ``openAPIV3Schema`` read as the API server reads it, and JSON values as Go holds them.

The custom-resource checks take a version's schema as it appears in the CRD (a JSON
mapping) and read it through these accessors, so each check names the same parts the
API server's Go types name:

* the *structural* view (apiextensions-apiserver v0.32.9
  ``pkg/apiserver/schema/convert.go`` ``NewStructural``): ``properties``,
  ``additionalProperties`` (a schema, or a bare ``true``/``false``), ``items`` and the
  ``x-kubernetes-*`` extensions, at the top level of a node only (a ``properties``
  inside ``anyOf``/``allOf`` is a value validation, never structure);
* a decoded JSON value as apimachinery's unstructured decoder holds it
  (``k8s.io/apimachinery/pkg/util/json`` ``Unmarshal``): an integer that fits an
  ``int64`` stays an integer, every other number is a ``float64``. Python's ``json``
  keeps big integers exact, so :func:`go_kind` and :func:`go_number` map them to floats
  where Go would.

Everything here is pure and never mutates its arguments.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeGuard

Schema = Mapping[str, Any]
GoKind = Literal["nil", "bool", "int", "float", "string", "slice", "map"]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


# --- the structural view of a schema node ----------------------------------------------
def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, testing for the ``dict`` that decoded JSON holds
    first: the ABC check costs a Python-level call per node on every write."""
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def properties(schema: Schema | None) -> Mapping[str, Schema]:
    """``properties``: the declared fields of an object node (empty when none)."""
    if schema is None:
        return {}
    declared = schema.get("properties")
    # type() first: decoded schemas hold dicts, and the ABC check is the slow path.
    return declared if is_mapping(declared) else {}


def has_additional_properties(schema: Schema | None) -> bool:
    """Whether the node sets ``additionalProperties`` at all (a schema or a boolean)."""
    return schema is not None and "additionalProperties" in schema and (
        isinstance(schema["additionalProperties"], (Mapping, bool)))


def additional_properties(schema: Schema | None) -> Schema | None:
    """The ``additionalProperties`` *schema*, or None (absent, or a bare boolean)."""
    if schema is None:
        return None
    value = schema.get("additionalProperties")
    return value if is_mapping(value) else None


def items(schema: Schema | None) -> Schema | None:
    """The ``items`` schema of an array node (CRDs forbid the tuple form)."""
    if schema is None:
        return None
    value = schema.get("items")
    return value if is_mapping(value) else None


def flag(schema: Schema | None, name: str) -> bool:
    """A boolean extension such as ``x-kubernetes-preserve-unknown-fields``."""
    return schema is not None and schema.get(name) is True


def preserves_unknown_fields(schema: Schema | None) -> bool:
    """``x-kubernetes-preserve-unknown-fields: true``."""
    return flag(schema, "x-kubernetes-preserve-unknown-fields")


def embedded_resource(schema: Schema | None) -> bool:
    """``x-kubernetes-embedded-resource: true``: apiVersion, kind and ObjectMeta inside."""
    return flag(schema, "x-kubernetes-embedded-resource")


def nullable(schema: Schema | None) -> bool:
    """``nullable: true``."""
    return flag(schema, "nullable")


def has_default(schema: Schema | None) -> bool:
    """Whether the node declares a non-null ``default`` (a null default is no default)."""
    return schema is not None and schema.get("default") is not None


def list_type(schema: Schema | None) -> str:
    """``x-kubernetes-list-type`` (``atomic``, ``set``, ``map``), or ``""`` when unset."""
    value = None if schema is None else schema.get("x-kubernetes-list-type")
    return value if isinstance(value, str) else ""


def list_map_keys(schema: Schema | None) -> list[str]:
    """``x-kubernetes-list-map-keys``."""
    value = None if schema is None else schema.get("x-kubernetes-list-map-keys")
    return [str(key) for key in value] if isinstance(value, Sequence) else []


def types(schema: Schema) -> list[str]:
    """The node's ``type`` as kube-openapi holds it after conversion.

    ``x-kubernetes-int-or-string`` becomes the type list ``[integer, string]``
    (apiextensions-apiserver v0.32.9 ``pkg/apiserver/validation/validation.go``
    ``ConvertJSONSchemaPropsWithPostProcess``).
    """
    if schema.get("x-kubernetes-int-or-string") is True:
        return ["integer", "string"]
    declared = schema.get("type")
    return [declared] if isinstance(declared, str) and declared else []


# --- what a subtree of a schema holds ---------------------------------------------------
_SUBTREE_CACHE_LIMIT: Final = 4096
_SUBTREES: dict[tuple[int, str], tuple[Schema, bool]] = {}


def subtree_has(schema: Schema | None, extension: str, values: tuple[Any, ...]) -> bool:
    """Whether the node, or a node of its structure below it (``properties``,
    ``additionalProperties``, ``items``), sets ``extension`` to one of ``values``.

    The walks that act only at such nodes (embedded resources, ``set`` and ``map``
    lists) skip an object's parts that have none. Remembered per schema node: a served
    CRD version's schema lives as long as it is served, and each write asks again. The
    answer holds the node, so its id is not reused while remembered.
    """
    if schema is None:
        return False
    key = (id(schema), extension)
    known = _SUBTREES.get(key)
    if known is not None and known[0] is schema:
        return known[1]
    found = schema.get(extension) in values or any(
        subtree_has(child, extension, values)
        for child in (*properties(schema).values(), additional_properties(schema),
                      items(schema)))
    if len(_SUBTREES) >= _SUBTREE_CACHE_LIMIT:
        _SUBTREES.clear()
    _SUBTREES[key] = (schema, found)
    return found


def may_hold_embedded_resource(schema: Schema | None) -> bool:
    """Whether an ``x-kubernetes-embedded-resource: true`` node is at or below ``schema``."""
    return subtree_has(schema, "x-kubernetes-embedded-resource", (True,))


def may_hold_keyed_list(schema: Schema | None) -> bool:
    """Whether a ``set`` or ``map`` list (``x-kubernetes-list-type``) is at or below it."""
    return subtree_has(schema, "x-kubernetes-list-type", ("set", "map"))


# --- JSON values as Go holds them ------------------------------------------------------
_EXACT_KINDS: Final[dict[type, GoKind]] = {
    type(None): "nil", bool: "bool", float: "float", str: "string", dict: "map",
    list: "slice"}
"""The kinds of the types ``json.loads`` makes, found without the ABC checks below."""


def go_kind(value: Any) -> GoKind:
    """The Go kind of a decoded JSON value (``int`` only within ``int64``)."""
    exact = _EXACT_KINDS.get(type(value))
    if exact is not None:
        return exact
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if INT64_MIN <= value <= INT64_MAX else "float"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, Sequence):
        return "slice"
    raise TypeError(f"not a JSON value: {value!r}")


def go_number(value: int | float) -> int | float:
    """A JSON number as Go holds it: an ``int64``, or a ``float64``."""
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return float(value)
    return value


def go_equal(left: Any, right: Any) -> bool:
    """``reflect.DeepEqual`` of two decoded JSON values: ``1`` and ``1.0`` differ."""
    kind = go_kind(left)
    if kind != go_kind(right):
        return False
    if kind == "map":
        return len(left) == len(right) and all(
            key in right and go_equal(item, right[key]) for key, item in left.items())
    if kind == "slice":
        return len(left) == len(right) and all(
            go_equal(a, b) for a, b in zip(left, right, strict=True))
    if kind in ("int", "float"):
        return bool(go_number(left) == go_number(right))
    return bool(left == right)


def go_json(value: Any) -> str:
    """``encoding/json.Marshal`` of a decoded JSON value: sorted keys, Go's number text.

    Go writes a ``float64`` in the shortest form, with an exponent only below 1e-6 or
    from 1e21 (``encoding/json`` ``floatEncoder``), and escapes ``<``, ``>`` and ``&``
    for HTML safety.
    """
    kind = go_kind(value)
    if kind == "nil":
        return "null"
    if kind == "bool":
        return "true" if value else "false"
    if kind == "int":
        return str(value)
    if kind == "float":
        return _go_json_float(float(value))
    if kind == "string":
        return _go_json_string(value)
    if kind == "slice":
        return "[" + ",".join(go_json(item) for item in value) + "]"
    return "{" + ",".join(f"{_go_json_string(str(key))}:{go_json(value[key])}"
                          for key in sorted(value)) + "}"


def _go_json_float(number: float) -> str:
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    if 1e-6 <= abs(number) < 1e21:
        return format(decimal.Decimal(repr(number)).normalize(), "f")
    # Exponent form: Go writes at least two exponent digits, then shortens "e-09" to "e-9".
    mantissa, _, exponent = repr(number).partition("e")
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    if sign == "+":
        digits = digits.zfill(2)
    return f"{mantissa.removesuffix('.0')}e{sign}{digits}"


_JSON_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                        "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                        "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _go_json_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "GoKind",
    "Schema",
    "additional_properties",
    "embedded_resource",
    "flag",
    "go_equal",
    "go_json",
    "go_kind",
    "go_number",
    "has_additional_properties",
    "has_default",
    "items",
    "list_map_keys",
    "list_type",
    "may_hold_embedded_resource",
    "may_hold_keyed_list",
    "nullable",
    "preserves_unknown_fields",
    "properties",
    "subtree_has",
    "types",
]
