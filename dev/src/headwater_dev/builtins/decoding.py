"""What the API server's JSON decoder refuses in a typed object (a 400, before validation).

A typed object (Pod, Lease, CustomResourceDefinition, ...) is decoded into Go structs by
sigs.k8s.io/json 9aa6b5e7a4b3 (the ``encoding/json`` fork k8s.io/apimachinery v0.32.9
``pkg/runtime/serializer/json`` uses, ``UnmarshalStrict`` with ``fieldValidation`` Warn or
Strict):

* a value of the wrong JSON type is an ``UnmarshalTypeError``, worded
  ``json: cannot unmarshal <what> into Go struct field <Struct>.<json.path> of type <Go type>``
  (``decode.go`` ``UnmarshalTypeError.Error``, ``addErrorContext``: ``<Struct>`` is the
  innermost struct, the path the JSON field names from the root, without map keys or list
  indexes); decoding goes on and the first such error is reported;
* a value a type's own ``UnmarshalJSON`` rejects (``Quantity``, ``Time``, ``MicroTime``,
  ``IntOrString``, apiextensions' ``JSONSchemaPropsOrBool``) stops decoding with that
  error. When it is an ``UnmarshalTypeError`` from a nested ``json.Unmarshal`` the outer
  decoder gives it its own context (``unmarshal`` returns ``addErrorContext(err)``): the
  struct and path of the field holding the custom type, whatever lay deeper;
* inside a value a type's own ``UnmarshalJSON`` decodes (apiextensions' ``JSON``,
  ``JSONSchemaPropsOr{Bool,Array,StringArray}``, ``FieldsV1``, ``RawExtension``) the strict
  decoder sees nothing: ``JSON`` keeps any value, and the schema wrappers decode their
  schema with the plain ``json.Unmarshal``, which drops unknown fields silently;
* ``null`` is accepted everywhere (it leaves the zero value);
* unknown and duplicate fields are *strict* errors (``kubernetes_patch.go``), reported
  only with ``fieldValidation=Strict`` (400) or as warnings with ``Warn``:
  ``unknown field "spec.containers[0].foo"``, ``unknown field
  "spec.versions[0].schema.openAPIV3Schema.properties.spec.examples"`` (the path is
  ``strictFieldStack``: field names and map keys joined by dots, list indexes in
  brackets) — see :func:`decode` and :func:`unknown_builtin_fields`.

The API server wraps the reported error as ``<Kind> in version "<v>" cannot be handled as
a <Kind>: <error>`` (k8s.io/apiserver ``handlers/rest.go`` ``transformDecodeError``):
:func:`decode_error_message`. Numbers print as Python wrote them, which is the request's
text for all ordinary JSON; Go's ``time.Parse`` messages are reproduced for the failures
of an RFC 3339 string element by element. Go types are named from the OpenAPI
definitions, which do not record named string, slice and map types: those of the
apiextensions types are listed here (``_NAMED_TYPES``); the built-in kinds' (such as
``v1.RestartPolicy``) print as their underlying type.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from headwater_operator import k8sopenapi

from headwater_dev.builtins.quantity import QuantityError
from headwater_dev.builtins.quantity import parse as parse_quantity
from headwater_dev.fielderrors import go_quote

QUANTITY: Final = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING: Final = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
MICRO_TIME: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
RAW: Final = frozenset({"io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
                        "io.k8s.apimachinery.pkg.runtime.RawExtension"})
_APIEXTENSIONS: Final = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
JSON_SCHEMA_PROPS: Final = _APIEXTENSIONS + "JSONSchemaProps"
JSON_SCHEMA_PROPS_OR_BOOL: Final = _APIEXTENSIONS + "JSONSchemaPropsOrBool"
JSON_SCHEMA_PROPS_OR_ARRAY: Final = _APIEXTENSIONS + "JSONSchemaPropsOrArray"
JSON_SCHEMA_PROPS_OR_STRING_ARRAY: Final = _APIEXTENSIONS + "JSONSchemaPropsOrStringArray"
_SCHEMA_WRAPPERS: Final = frozenset({JSON_SCHEMA_PROPS_OR_BOOL, JSON_SCHEMA_PROPS_OR_ARRAY,
                                     JSON_SCHEMA_PROPS_OR_STRING_ARRAY})
ANY_JSON: Final = _APIEXTENSIONS + "JSON"
_CUSTOM: Final = frozenset({QUANTITY, INT_OR_STRING, TIME, MICRO_TIME, ANY_JSON, *RAW,
                            *_SCHEMA_WRAPPERS})
"""Types with their own ``UnmarshalJSON``."""
_NAMED_TYPES: Final[Mapping[tuple[str, str], str]] = {
    # apiextensions-apiserver v0.32.9 pkg/apis/apiextensions/v1/types.go and
    # types_jsonschema.go: fields of named types, which reflect prints by name.
    (_APIEXTENSIONS + "CustomResourceDefinitionSpec", "scope"): "v1.ResourceScope",
    (_APIEXTENSIONS + "CustomResourceConversion", "strategy"): "v1.ConversionStrategyType",
    (_APIEXTENSIONS + "CustomResourceDefinitionCondition", "type"):
        "v1.CustomResourceDefinitionConditionType",
    (_APIEXTENSIONS + "CustomResourceDefinitionCondition", "status"): "v1.ConditionStatus",
    (JSON_SCHEMA_PROPS, "$schema"): "v1.JSONSchemaURL",
    (JSON_SCHEMA_PROPS, "dependencies"): "v1.JSONSchemaDependencies",
    (JSON_SCHEMA_PROPS, "definitions"): "v1.JSONSchemaDefinitions",
    (JSON_SCHEMA_PROPS, "x-kubernetes-validations"): "v1.ValidationRules",
    (_APIEXTENSIONS + "ValidationRule", "reason"): "v1.FieldValueErrorReason",
}
RFC3339: Final = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO: Final = "2006-01-02T15:04:05.000000Z07:00"
INT32_RANGE: Final = (-(2**31), 2**31 - 1)
_INT_RANGES: Final = {"int32": INT32_RANGE, "int64": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class UnmarshalTypeError:
    """encoding/json's ``UnmarshalTypeError``: a JSON value of the wrong type for its Go type.

    ``struct`` and ``field`` are the decoder's context (``addErrorContext``): the innermost
    struct and the path of struct field names from the root (no map keys, no indexes);
    without them the error names a bare "Go value".
    """

    value: str
    go_type: str
    struct: str = ""
    field: str = ""

    def __str__(self) -> str:
        if self.struct or self.field:
            return (f"json: cannot unmarshal {self.value} into Go struct field "
                    f"{self.struct}.{self.field} of type {self.go_type}")
        return f"json: cannot unmarshal {self.value} into Go value of type {self.go_type}"

    def in_context(self, at: _At) -> UnmarshalTypeError:
        """The error as the decoder at ``at`` returns it: ``addErrorContext`` replaces the
        struct and field of every ``UnmarshalTypeError`` it passes on, including one a
        type's own ``UnmarshalJSON`` returned from a nested ``json.Unmarshal``."""
        if not at.stack:
            return self
        return UnmarshalTypeError(self.value, self.go_type, at.struct, ".".join(at.stack))


DecodeError = str | UnmarshalTypeError


@dataclass(frozen=True)
class _At:
    """Where the decoder is: the innermost struct, the struct field names from the root
    (``errorContext``) and the strict decoder's path (``strictFieldStack``:
    ``spec.versions[0].schema.openAPIV3Schema.properties.spec``, map keys included)."""

    struct: str = ""
    stack: tuple[str, ...] = ()
    path: str = ""

    def field(self, struct: str, name: str) -> _At:
        return _At(struct, (*self.stack, name), _join(self.path, name))

    def key(self, name: str) -> _At:
        return _At(self.struct, self.stack, _join(self.path, name))

    def index(self, position: int) -> _At:
        return _At(self.struct, self.stack, f"{self.path}[{position}]")


@dataclass
class _Decoder:
    strict_fields: bool = True
    """Whether unknown fields are noted (the strict decoder); a type's own
    ``UnmarshalJSON`` decodes with the plain one, which drops them silently."""
    type_errors: list[DecodeError] = field(default_factory=list)
    fatal: list[DecodeError] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    """Paths of the values a type's own ``UnmarshalJSON`` decoded: the strict decoder
    does not look inside them."""

    def first_error(self) -> DecodeError | None:
        """The error ``Unmarshal`` returns: the one that stopped it, else the first saved."""
        if self.fatal:
            return self.fatal[0]
        return self.type_errors[0] if self.type_errors else None

    def value(self, schema: Mapping[str, Any], value: Any, at: _At,
              go_type: str | None = None) -> Any:
        """``value`` decoded as ``schema`` says (unknown fields dropped)."""
        if value is None or self.fatal:
            return None
        name = k8sopenapi.ref_name(schema)
        if name in _CUSTOM:
            return self._custom(name or "", value, at)
        resolved = k8sopenapi.resolve(schema)
        kind = resolved.get("type")
        go_type = go_type or _go_type(schema)
        values = resolved.get("additionalProperties")
        if "properties" in resolved or (name is not None and kind == "object"
                                        and not isinstance(values, Mapping)):
            if not isinstance(value, dict):
                return self._type_error(_json_kind(value), go_type, at)
            return self._struct(resolved, value, name or "", at)
        if kind == "object" and isinstance(values, Mapping):
            if not isinstance(value, dict):
                return self._type_error(_json_kind(value), go_type, at)
            return {key: self.value(values, item, at.key(key)) for key, item in value.items()}
        if kind == "array":
            return self._array(resolved, value, go_type, at)
        if kind in ("string", "integer", "number", "boolean"):
            self._scalar(resolved, value, go_type, at)
        return value

    def _struct(self, schema: Mapping[str, Any], value: dict[str, Any], definition: str,
                at: _At) -> dict[str, Any]:
        # An empty Go struct (CustomResourceSubresourceStatus) has no "properties".
        properties = schema.get("properties") or {}
        struct = _go_struct_name(definition)
        decoded = {}
        for key, item in value.items():
            prop = properties.get(key)
            if prop is None:
                if self.strict_fields:
                    self.unknown.append(_join(at.path, key))
                continue
            decoded[key] = self.value(prop, item, at.field(struct, key),
                                      _NAMED_TYPES.get((definition, key)))
        return decoded

    def _array(self, schema: Mapping[str, Any], value: Any, go_type: str, at: _At) -> Any:
        items = schema.get("items")
        if isinstance(items, Mapping) and _is_bytes(items) and isinstance(value, str):
            return value
        if not isinstance(value, list):
            return self._type_error(_json_kind(value), go_type, at)
        if not isinstance(items, Mapping):
            return value
        return [self.value(items, item, at.index(index)) for index, item in enumerate(value)]

    def _scalar(self, schema: Mapping[str, Any], value: Any, go_type: str, at: _At) -> None:
        kind = schema.get("type")
        if kind == "string":
            if not isinstance(value, str):
                self._type_error(_json_kind(value), go_type, at)
            elif schema.get("format") == "byte":
                self._base64(value)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self._type_error(_json_kind(value), go_type, at)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            self._type_error(_json_kind(value), go_type, at)
        elif kind == "integer":
            low, high = _INT_RANGES.get(go_type, _INT_RANGES["int64"])
            if not isinstance(value, int) or not low <= value <= high:
                self._type_error(f"number {_number_text(value)}", go_type, at)

    def _base64(self, text: str) -> None:
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.type_errors.append(f"illegal base64 data at input byte {_base64_offset(text)}")

    def _custom(self, name: str, value: Any, at: _At) -> Any:
        """A type with its own ``UnmarshalJSON``: its errors stop decoding, and the strict
        decoder does not see inside it."""
        self.opaque.append(at.path)
        if name == QUANTITY:
            text = value if isinstance(value, str) else _raw(value)
            try:
                parse_quantity(text.strip())
            except QuantityError as exc:
                self.fatal.append(str(exc))
        elif name == INT_OR_STRING:
            self._int_or_string(value, at)
        elif name in (TIME, MICRO_TIME):
            self._time(value, RFC3339_MICRO if name == MICRO_TIME else RFC3339, at)
        elif name in _SCHEMA_WRAPPERS:
            return self._schema_wrapper(name, value, at)
        return value

    def _int_or_string(self, value: Any, at: _At) -> None:
        # intstr.go UnmarshalJSON: json.Unmarshal into the string or the int32 value.
        if isinstance(value, str):
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            what = _json_kind(value)
        elif isinstance(value, int) and INT32_RANGE[0] <= value <= INT32_RANGE[1]:
            return
        else:
            what = f"number {_number_text(value)}"
        self.fatal.append(UnmarshalTypeError(what, "int32").in_context(at))

    def _time(self, value: Any, layout: str, at: _At) -> None:
        # time.go/micro_time.go UnmarshalJSON: json.Unmarshal into a string, then time.Parse.
        if not isinstance(value, str):
            self.fatal.append(UnmarshalTypeError(_json_kind(value), "string").in_context(at))
            return
        problem = parse_time_error(value, layout)
        if problem:
            self.fatal.append(problem)

    def _schema_wrapper(self, name: str, value: Any, at: _At) -> Any:
        """``JSONSchemaPropsOrBool``/``OrArray``/``OrStringArray`` (apiextensions-apiserver
        v0.32.9 pkg/apis/apiextensions/v1/marshal.go ``UnmarshalJSON``): an object is a
        schema, decoded by the plain ``json.Unmarshal`` (unknown fields dropped, not
        reported); OrBool takes a boolean and refuses anything else; OrArray takes a list
        of schemas and OrStringArray a list of strings, and both turn any other value
        into an empty wrapper, which encodes as ``null``."""
        if isinstance(value, dict):
            return self._nested(_ref(JSON_SCHEMA_PROPS), value, at)
        if name == JSON_SCHEMA_PROPS_OR_BOOL:
            if isinstance(value, bool):
                return value
            self.fatal.append("boolean or JSON schema expected")
            return None
        if isinstance(value, list):
            items = _ref(JSON_SCHEMA_PROPS) if name == JSON_SCHEMA_PROPS_OR_ARRAY \
                else {"type": "string"}
            return self._nested({"type": "array", "items": items}, value, at)
        return None

    def _nested(self, schema: Mapping[str, Any], value: Any, at: _At) -> Any:
        """``value`` decoded by a nested, plain ``json.Unmarshal``: its error (in this
        decoder's context) stops this decoder."""
        inner = _Decoder(strict_fields=False)
        decoded = inner.value(schema, value, _At())
        error = inner.first_error()
        if isinstance(error, UnmarshalTypeError):
            error = error.in_context(at)
        if error is not None:
            self.fatal.append(error)
        return decoded

    def _type_error(self, what: str, go_type: str, at: _At) -> None:
        self.type_errors.append(UnmarshalTypeError(what, go_type).in_context(at))


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
@dataclass(frozen=True)
class Decoded:
    """A typed object as the API server's strict decoder leaves it."""

    obj: dict[str, Any]
    """What the Go type keeps: the fields it does not have dropped, a schema wrapper that
    took no schema ``null`` (the input itself when the kind is not pinned)."""
    error: str | None
    """The decoding error the server reports (``None`` when the body decodes)."""
    unknown: tuple[str, ...]
    """The unknown fields' paths, in the order the decoder meets them."""
    opaque: tuple[str, ...]
    """The paths of the values a type's own ``UnmarshalJSON`` decoded."""

    def seen_duplicates(self, duplicates: Sequence[str]) -> list[str]:
        """The paths of ``duplicates`` (every repeated key of the body) the strict decoder
        reports: not those inside a value a custom ``UnmarshalJSON`` decoded, nor those in
        or under an unknown field, whose value the decoder skips unread."""
        return [path for path in duplicates
                if not any(_below(path, region) for region in self.opaque)
                and not any(path == name or _below(path, name) for name in self.unknown)]


def _below(path: str, region: str) -> bool:
    return path.startswith((region + ".", region + "["))


def _ref(definition: str) -> dict[str, str]:
    return {"$ref": k8sopenapi.REF_PREFIX + definition}


def decode(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> Decoded:
    """``obj`` decoded strictly as the Go type of the pinned built-in ``kind_key``."""
    definition = k8sopenapi.definition_name(kind_key)
    if definition is None:
        return Decoded(dict(obj), None, (), ())
    decoder = _Decoder()
    decoded = decoder.value(_ref(definition), dict(obj), _At(_go_struct_name(definition)))
    error = decoder.first_error()
    return Decoded(decoded if isinstance(decoded, dict) else dict(obj),
                   None if error is None else str(error), tuple(dict.fromkeys(decoder.unknown)),
                   tuple(decoder.opaque))


def schema_errors(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> list[str]:
    """The decoder's errors for ``obj``, the reported one first (see the module docstring);
    empty when it decodes. Unknown fields are not errors here."""
    definition = k8sopenapi.definition_name(kind_key)
    if definition is None:
        return []
    decoder = _Decoder()
    decoder.value(_ref(definition), dict(obj), _At(_go_struct_name(definition)))
    errors = decoder.fatal[:1] + decoder.type_errors if decoder.fatal else decoder.type_errors
    return [str(error) for error in errors]


def unknown_builtin_fields(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> list[str]:
    """The strict decoding errors (``unknown field "spec.foo"``), for
    ``fieldValidation=Strict`` (a 400) and ``Warn`` (a ``Warning`` header each)."""
    return [f"unknown field {go_quote(path)}" for path in decode(kind_key, obj).unknown]


def decode_error_message(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any]) -> str | None:
    """The 400's message for a body that does not decode (``None`` when it does)."""
    error = decode(kind_key, obj).error
    kind = k8sopenapi.kind_of(kind_key)
    if error is None or kind is None:
        return None
    return f"{kind} in version {go_quote(kind_key[1])} cannot be handled as a {kind}: {error}"


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
    "Decoded",
    "UnmarshalTypeError",
    "decode",
    "decode_error_message",
    "parse_time_error",
    "schema_errors",
    "strict_error_message",
    "unknown_builtin_fields",
]
