"""What the API server's JSON decoder refuses in a built-in object (a 400, before validation).

A typed object (Pod, Lease, ...) is decoded into Go structs by sigs.k8s.io/json (the
``encoding/json`` fork k8s.io/apimachinery v0.32.9 ``pkg/runtime/serializer/json`` uses):

* a value of the wrong JSON type is an ``UnmarshalTypeError``, worded
  ``json: cannot unmarshal <what> into Go struct field <Struct>.<json.path> of type <Go type>``
  (``decode.go`` ``UnmarshalTypeError.Error``, ``addErrorContext``: ``<Struct>`` is the
  innermost struct, the path the JSON field names from the root, without list indexes);
  decoding goes on and the first such error is reported;
* a value a type's own ``UnmarshalJSON`` rejects (``Quantity``, ``Time``, ``MicroTime``,
  ``IntOrString``) stops decoding with that error, unwrapped;
* ``null`` is accepted everywhere (it leaves the zero value);
* unknown and duplicate fields are *strict* errors (``kubernetes_patch.go``), reported
  only with ``fieldValidation=Strict`` (400) or as warnings with ``Warn``:
  ``unknown field "spec.containers[0].foo"`` — see :func:`unknown_builtin_fields`.

The API server wraps the reported error as ``<Kind> in version "<v>" cannot be handled as
a <Kind>: <error>`` (k8s.io/apiserver ``handlers/rest.go`` ``transformDecodeError``):
:func:`decode_error_message`. Numbers print as Python wrote them, which is the request's
text for all ordinary JSON; Go's ``time.Parse`` messages are reproduced for the failures
of an RFC 3339 string element by element.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from headwater_operator import k8sopenapi
from headwater_operator.devcluster.builtins.quantity import QuantityError
from headwater_operator.devcluster.builtins.quantity import parse as parse_quantity
from headwater_operator.devcluster.fielderrors import go_quote

QUANTITY: Final = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING: Final = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
RAW: Final = frozenset({"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
                        "io.k8s.apimachinery.pkg.runtime.RawExtension"})
RFC3339: Final = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO: Final = "2006-01-02T15:04:05.000000Z07:00"
_INT_RANGES: Final = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass
class _Decoder:
    type_errors: list[str] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    strict: list[str] = field(default_factory=list)

    def value(self, schema: Mapping[str, Any], value: Any, struct: str,
              stack: tuple[str, ...], strict_path: str) -> None:
        if value is None or self.fatal:
            return
        name = k8sopenapi.ref_name(schema)
        if name in (QUANTITY, INT_OR_STRING, TIME, MICRO_TIME) or name in RAW:
            self._special(name or "", value)
            return
        resolved = k8sopenapi.resolve(schema)
        kind = resolved.get("type")
        go_type = _go_type(schema)
        if "properties" in resolved:
            if not isinstance(value, dict):
                self._type_error(_json_kind(value), go_type, struct, stack)
                return
            self._struct(resolved, value, _go_struct_name(name or ""), stack, strict_path)
        elif kind == "object" and isinstance(resolved.get("additionalProperties"), Mapping):
            if not isinstance(value, dict):
                self._type_error(_json_kind(value), go_type, struct, stack)
                return
            for key, item in value.items():
                self.value(resolved["additionalProperties"], item, struct, stack,
                           _join(strict_path, key))
        elif kind == "array":
            self._array(resolved, value, go_type, struct=struct, stack=stack,
                        strict_path=strict_path)
        elif kind in ("string", "integer", "number", "boolean"):
            self._scalar(resolved, value, go_type, struct, stack)

    def _struct(self, schema: Mapping[str, Any], value: dict[str, Any], struct: str,
                stack: tuple[str, ...], strict_path: str) -> None:
        properties = schema["properties"]
        for key, item in value.items():
            prop = properties.get(key)
            if prop is None:
                self.strict.append(f"unknown field {go_quote(_join(strict_path, key))}")
                continue
            self.value(prop, item, struct, (*stack, key), _join(strict_path, key))

    def _array(self, schema: Mapping[str, Any], value: Any, go_type: str, *, struct: str,
               stack: tuple[str, ...], strict_path: str) -> None:
        items = schema.get("items")
        if isinstance(items, Mapping) and _is_bytes(items) and isinstance(value, str):
            return
        if not isinstance(value, list):
            self._type_error(_json_kind(value), go_type, struct, stack)
            return
        for index, item in enumerate(value):
            if isinstance(items, Mapping):
                self.value(items, item, struct, stack, f"{strict_path}[{index}]")

    def _scalar(self, schema: Mapping[str, Any], value: Any, go_type: str, struct: str,
                stack: tuple[str, ...]) -> None:
        kind = schema.get("type")
        if kind == "string":
            if not isinstance(value, str):
                self._type_error(_json_kind(value), go_type, struct, stack)
            elif schema.get("format") == "byte":
                self._base64(value)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self._type_error(_json_kind(value), go_type, struct, stack)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            self._type_error(_json_kind(value), go_type, struct, stack)
        elif kind == "integer":
            low, high = _INT_RANGES.get(go_type, _INT_RANGES["int64"])
            if not isinstance(value, int) or not low <= value <= high:
                self._type_error(f"number {_number_text(value)}", go_type, struct, stack)

    def _base64(self, text: str) -> None:
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.type_errors.append(f"illegal base64 data at input byte {_base64_offset(text)}")

    def _special(self, name: str, value: Any) -> None:
        if name == QUANTITY:
            text = value if isinstance(value, str) else _raw(value)
            try:
                parse_quantity(text.strip())
            except QuantityError as exc:
                self.fatal.append(str(exc))
        elif name == INT_OR_STRING:
            if not isinstance(value, str) and (
                    isinstance(value, bool) or not isinstance(value, int)
                    or not _INT_RANGES["int32"][0] <= value <= _INT_RANGES["int32"][1]):
                what = _json_kind(value) if not isinstance(value, (int, float)) \
                    or isinstance(value, bool) else f"number {_number_text(value)}"
                self.fatal.append(f"json: cannot unmarshal {what} into Go value of type int32")
        elif name in (TIME, MICRO_TIME):
            if not isinstance(value, str):
                self.fatal.append(f"json: cannot unmarshal {_json_kind(value)} into Go value "
                                  "of type string")
                return
            problem = parse_time_error(value, RFC3339_MICRO if name == MICRO_TIME else RFC3339)
            if problem:
                self.fatal.append(problem)

    def _type_error(self, what: str, go_type: str, struct: str,
                    stack: tuple[str, ...]) -> None:
        if stack:
            self.type_errors.append(f"json: cannot unmarshal {what} into Go struct field "
                                    f"{struct}.{'.'.join(stack)} of type {go_type}")
        else:
            self.type_errors.append(f"json: cannot unmarshal {what} into Go value of type "
                                    f"{go_type}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _raw(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _number_text(value: Any) -> str:
    return json.dumps(value)


def _json_kind(value: Any) -> str:
    """The ``Value`` Go's decoder names: what the JSON held."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _base64_offset(text: str) -> int:
    # encoding/base64: the offset of the first byte outside the alphabet (or of the
    # incomplete final quantum).
    for index, char in enumerate(text):
        if not (char.isalnum() or char in "+/="):
            return index
    return len(text) - len(text) % 4 if len(text) % 4 else len(text)


def _is_bytes(items: Mapping[str, Any]) -> bool:
    return items.get("type") == "string" and items.get("format") == "byte"


def _go_struct_name(definition: str) -> str:
    return definition.rsplit(".", 1)[-1]


def _go_type(schema: Mapping[str, Any]) -> str:
    """The Go type (``reflect.Type.String``) a schema decodes into."""
    name = k8sopenapi.ref_name(schema)
    if name == QUANTITY:
        return "resource.Quantity"
    if name is not None:
        package = name.rsplit(".", 2)[-2]
        return f"{package}.{_go_struct_name(name)}"
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return "[]" + (_go_type(items) if isinstance(items, Mapping) else "interface {}")
    if kind == "object":
        values = schema.get("additionalProperties")
        return "map[string]" + (_go_type(values) if isinstance(values, Mapping)
                                else "interface {}")
    if kind == "string":
        return "[]uint8" if schema.get("format") == "byte" else "string"
    if kind == "integer":
        return "int32" if schema.get("format") == "int32" else "int64"
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    return "interface {}"


# --- time.Parse --------------------------------------------------------------------------------
_TIME_ELEMENTS: Final = (("2006", 4, None), ("-", 0, None), ("01", 2, (1, 12, "month")),
                         ("-", 0, None), ("02", 2, (1, 31, "day")), ("T", 0, None),
                         ("15", 2, (0, 23, "hour")), (":", 0, None), ("04", 2, (0, 59, "minute")),
                         (":", 0, None), ("05", 2, (0, 59, "second")))


def parse_time_error(value: str, layout: str) -> str | None:
    """Go's ``time.Parse(layout, value)`` error for RFC 3339 layouts (``None``: it parses)."""
    rest = value
    prefix = f"parsing time {go_quote(value)} as {go_quote(layout)}: cannot parse "
    for element, width, bounds in _TIME_ELEMENTS:
        if width == 0:
            if not rest.startswith(element):
                return f"{prefix}{go_quote(rest)} as {go_quote(element)}"
            rest = rest[len(element):]
            continue
        digits = rest[:width]
        if len(digits) < width or not digits.isdigit():
            return f"{prefix}{go_quote(rest)} as {go_quote(element)}"
        if bounds and not bounds[0] <= int(digits) <= bounds[1]:
            return f"parsing time {go_quote(value)}: {bounds[2]} out of range"
        rest = rest[width:]
    if layout == RFC3339_MICRO:
        match = re.match(r"\.[0-9]{6}", rest)
        if not match:
            return f"{prefix}{go_quote(rest)} as {go_quote('.000000')}"
        rest = rest[7:]
    else:
        match = re.match(r"[.,][0-9]+", rest)
        if match:
            rest = rest[match.end():]
    if rest == "Z":
        return None
    if re.fullmatch(r"[+-][0-9]{2}:[0-9]{2}", rest):
        return None
    return f"{prefix}{go_quote(rest)} as {go_quote('Z07:00')}"


# --- entry points -----------------------------------------------------------------------------
def _decode(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> _Decoder:
    definition = k8sopenapi.definition_name(kind_key)
    decoder = _Decoder()
    if definition is None:
        return decoder
    schema = {"$ref": k8sopenapi.REF_PREFIX + definition}
    decoder.value(schema, dict(obj), _go_struct_name(definition), (), "")
    return decoder


def schema_errors(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> list[str]:
    """The decoder's type errors for ``obj``, the reported one first (see the module
    docstring); empty when it decodes. Unknown fields are not errors here."""
    decoder = _decode(kind_key, obj)
    return decoder.fatal[:1] + decoder.type_errors if decoder.fatal else decoder.type_errors


def unknown_builtin_fields(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> list[str]:
    """The strict decoding errors (``unknown field "spec.foo"``), for
    ``fieldValidation=Strict`` (a 400) and ``Warn`` (a ``Warning`` header each)."""
    return _decode(kind_key, obj).strict


def decode_error_message(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> str | None:
    """The 400's message for a body that does not decode (``None`` when it does)."""
    errors = schema_errors(kind_key, obj)
    kind = k8sopenapi.kind_of(kind_key)
    if not errors or kind is None:
        return None
    return f"{kind} in version {go_quote(kind_key[1])} cannot be handled as a {kind}: {errors[0]}"


def strict_error_message(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> str | None:
    """The 400's message with ``fieldValidation=Strict`` when fields are unknown
    (``runtime.NewStrictDecodingError`` wrapped by ``transformDecodeError``)."""
    unknown = unknown_builtin_fields(kind_key, obj)
    kind = k8sopenapi.kind_of(kind_key)
    if not unknown or kind is None:
        return None
    return (f"{kind} in version {go_quote(kind_key[1])} cannot be handled as a {kind}: "
            f"strict decoding error: {', '.join(unknown)}")


__all__ = [
    "decode_error_message",
    "parse_time_error",
    "schema_errors",
    "strict_error_message",
    "unknown_builtin_fields",
]
