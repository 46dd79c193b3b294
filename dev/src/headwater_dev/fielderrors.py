"""Field errors as the Kubernetes API server words them, and the 422 ``Status`` they make.

Every validation in the emulator (CRD registration, custom resources, built-in objects)
reports through :class:`FieldError`, so a refused request reads exactly as a real API
server's would: the same field paths, the same error bodies, the same ``Status`` shape.
The wording is apimachinery's, at the Kubernetes version the emulator follows (1.32):

* ``k8s.io/apimachinery/pkg/util/validation/field/errors.go``: ``Error.Error`` is
  ``"<field>: <body>"``; ``ErrorBody`` prints the type's words ("Invalid value",
  "Required value", …), then the bad value (Go ``%v`` for numbers and booleans, ``%q``
  for strings, ``%#v`` otherwise) unless the type omits it, then ``": <detail>"``.
  ``ErrorList.ToAggregate`` drops repeated messages.
* ``k8s.io/apimachinery/pkg/util/validation/field/path.go``: ``spec.containers[0].name``,
  map keys as ``[key]``.
* ``k8s.io/apimachinery/pkg/util/errors/errors.go``: an aggregate of one error is that
  error; of several, ``[a, b]``.
* ``k8s.io/apimachinery/pkg/api/errors/errors.go`` (``NewInvalid``): code 422, reason
  ``Invalid``, message ``<Kind.group> "<name>" is invalid: <aggregate>``, and one
  ``details.causes`` entry per error (type, body, field).

Tests compare messages with these functions' output, never with hand-written copies.
"""

from __future__ import annotations

import decimal
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from headwater_dev.apierrors import ApiError


class ErrorType(StrEnum):
    """``field.ErrorType``: the machine-readable cause of a field error."""

    NOT_FOUND = "FieldValueNotFound"
    REQUIRED = "FieldValueRequired"
    DUPLICATE = "FieldValueDuplicate"
    INVALID = "FieldValueInvalid"
    NOT_SUPPORTED = "FieldValueNotSupported"
    FORBIDDEN = "FieldValueForbidden"
    TOO_LONG = "FieldValueTooLong"
    TOO_MANY = "FieldValueTooMany"
    INTERNAL = "InternalError"
    TYPE_INVALID = "FieldValueTypeInvalid"

    @property
    def words(self) -> str:
        """``ErrorType.String()``: what a person reads."""
        return _WORDS[self]


_WORDS: Final = {
    ErrorType.NOT_FOUND: "Not found",
    ErrorType.REQUIRED: "Required value",
    ErrorType.DUPLICATE: "Duplicate value",
    ErrorType.INVALID: "Invalid value",
    ErrorType.NOT_SUPPORTED: "Unsupported value",
    ErrorType.FORBIDDEN: "Forbidden",
    ErrorType.TOO_LONG: "Too long",
    ErrorType.TOO_MANY: "Too many",
    ErrorType.INTERNAL: "Internal error",
    ErrorType.TYPE_INVALID: "Invalid value",
}
# The types whose body never shows the bad value (ErrorBody's first cases).
_VALUE_NEVER_SHOWN: Final = frozenset(
    {ErrorType.REQUIRED, ErrorType.FORBIDDEN, ErrorType.TOO_LONG, ErrorType.INTERNAL})


class _Omitted:
    """``field.omitValue``: an error that shows no bad value."""

    def __repr__(self) -> str:
        return "OMITTED"


OMITTED: Final = _Omitted()


@dataclass(frozen=True)
class GoText:
    """A bad value already printed as Go's ``%#v`` prints its typed Go value.

    Some validators report a typed Go value (``[]string{"v1"}``, a struct of the API's
    internal types), whose ``%#v`` a decoded JSON value cannot reproduce; the caller
    renders it and the message shows the text as is.
    """

    text: str


# --- Go's formatting ------------------------------------------------------------------
def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): double quotes, Go escapes, printable Unicode kept."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES: Final = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                      "\t": "\\t", "\v": "\\v"}


def go_value(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON scalar (``int64``, ``float64``, ``bool``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def go_float(value: float) -> str:
    """Go's ``%v`` of a ``float64``: ``strconv.FormatFloat(f, 'g', -1, 64)``.

    The shortest digits that round-trip; exponent form when the decimal exponent is
    below -4 or at least 6 (strconv/ftoa.go: "if precision was the shortest possible,
    use precision 6 for this decision"), e.g. ``1.5``, ``100000``, ``1e+06``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # digits before the decimal point
    prefix = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{point - 1:+03d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def go_string_slice(values: Sequence[str]) -> str:
    """Go's ``%#v`` of a ``[]string``: ``[]string{"a", "b"}`` (a query's values, a
    list of names); wrap it in :class:`GoText` to show it as a bad value."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def go_syntax(value: Any) -> str:
    """Go's ``%#v`` of a decoded JSON value (``map[string]interface {}{…}`` and kin)."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{go_quote(str(k))}:{go_syntax(v)}" for k, v in sorted(
            value.items()))
        return f"map[string]interface {{}}{{{items}}}"
    if isinstance(value, Sequence):
        return "[]interface {}{" + ", ".join(go_syntax(v) for v in value) + "}"
    return repr(value)


# --- paths ----------------------------------------------------------------------------
PathPart = str | int


def format_path(parts: Iterable[PathPart]) -> str:
    """``field.Path.String()``: names joined by dots, indexes and keys in brackets.

    A part is a field name (``str``), a list index (``int``), or a map key written as
    ``"[key]"`` (a ``str`` in brackets, which :func:`key` builds).
    """
    out: list[str] = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.startswith("[") and part.endswith("]"):
            out.append(part)
        else:
            out.append(f".{part}" if out else part)
    return "".join(out)


def key(name: str) -> str:
    """A map key as a path part (``field.Path.Key``): ``properties[metadata]``."""
    return f"[{name}]"


# --- errors ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldError:
    """``field.Error``: one problem with one field."""

    type: ErrorType
    field: str
    bad_value: Any = OMITTED
    detail: str = ""

    def body(self) -> str:
        """``ErrorBody``: the message without the field."""
        text = self.type.words
        if self.type not in _VALUE_NEVER_SHOWN and self.bad_value is not OMITTED:
            text += ": " + _show(self.bad_value)
        if self.detail:
            text += f": {self.detail}"
        return text

    def message(self) -> str:
        """``Error()``: ``<field>: <body>``."""
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, str]:
        """The ``metav1.StatusCause`` of this error."""
        return {"reason": self.type.value, "message": self.body(), "field": self.field}


def _show(value: Any) -> str:
    if isinstance(value, GoText):
        return value.text
    # ErrorBody replaces a nil value by the Go string "null", which then prints with %q.
    if value is None:
        return '"null"'
    if isinstance(value, (bool, int, float)):
        return go_value(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_syntax(value)


# The constructors, named as apimachinery's (field.Invalid, field.Required, ...).
def invalid(path: str, value: Any, detail: str) -> FieldError:
    """``field.Invalid``."""
    return FieldError(ErrorType.INVALID, path, value, detail)


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    """``field.TypeInvalid``."""
    return FieldError(ErrorType.TYPE_INVALID, path, value, detail)


def required(path: str, detail: str = "") -> FieldError:
    """``field.Required``."""
    return FieldError(ErrorType.REQUIRED, path, "", detail)


def forbidden(path: str, detail: str) -> FieldError:
    """``field.Forbidden``."""
    return FieldError(ErrorType.FORBIDDEN, path, "", detail)


def duplicate(path: str, value: Any) -> FieldError:
    """``field.Duplicate``."""
    return FieldError(ErrorType.DUPLICATE, path, value)


def not_found(path: str, value: Any) -> FieldError:
    """``field.NotFound``."""
    return FieldError(ErrorType.NOT_FOUND, path, value)


def not_supported(path: str, value: Any, valid_values: Sequence[Any]) -> FieldError:
    """``field.NotSupported``: lists the supported values, each Go-quoted."""
    detail = ""
    if valid_values:
        detail = "supported values: " + ", ".join(
            go_quote(v if isinstance(v, str) else go_value(v)) for v in valid_values)
    return FieldError(ErrorType.NOT_SUPPORTED, path, value, detail)


def too_long(path: str, max_length: int) -> FieldError:
    """``field.TooLong`` (1.32 wording: "may not be more than N bytes")."""
    detail = (f"may not be more than {max_length} bytes" if max_length >= 0
              else "value is too long")
    return FieldError(ErrorType.TOO_LONG, path, "<value omitted>", detail)


def too_many(path: str, actual: int, maximum: int) -> FieldError:
    """``field.TooMany``."""
    detail = f"must have at most {maximum} items" if maximum >= 0 else "has too many items"
    return FieldError(ErrorType.TOO_MANY, path, actual if actual >= 0 else OMITTED, detail)


def internal(path: str, detail: str) -> FieldError:
    """``field.InternalError``."""
    return FieldError(ErrorType.INTERNAL, path, None, detail)


# --- aggregation and the Status -------------------------------------------------------
def unique(errors: Iterable[FieldError]) -> list[FieldError]:
    """``ToAggregate``'s de-duplication: the first error of each message."""
    seen: set[str] = set()
    kept = []
    for error in errors:
        if error.message() not in seen:
            seen.add(error.message())
            kept.append(error)
    return kept


def aggregate(errors: Sequence[FieldError]) -> str:
    """``utilerrors.Aggregate.Error()``: one message as is, several as ``[a, b]``."""
    messages = [error.message() for error in unique(errors)]
    if len(messages) == 1:
        return messages[0]
    return "[" + ", ".join(messages) + "]"


def qualified_kind(kind: str, group: str) -> str:
    """``schema.GroupKind.String()``: ``Flow.headwater.dev``, or ``Pod`` for the core group."""
    return f"{kind}.{group}" if group else kind


def invalid_error(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> ApiError:
    """``apierrors.NewInvalid``: the 422 a write with these field errors gets."""
    what = f"{qualified_kind(kind, group)} {go_quote(name)} is invalid"
    message = f"{what}: {aggregate(errors)}" if errors else what
    return ApiError(422, "Invalid", message, {
        "name": name, "group": group, "kind": kind,
        "causes": [error.cause() for error in errors],
    })


def raise_if_invalid(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> None:
    """Raise :func:`invalid_error` when there is at least one error."""
    if errors:
        raise invalid_error(kind, group, name, errors)


def json_compact(value: Any) -> str:
    """JSON as Go's ``encoding/json`` writes it (no spaces), for messages that embed it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


__all__ = [
    "OMITTED",
    "ErrorType",
    "FieldError",
    "GoText",
    "PathPart",
    "aggregate",
    "duplicate",
    "forbidden",
    "format_path",
    "go_float",
    "go_quote",
    "go_string_slice",
    "go_syntax",
    "go_value",
    "internal",
    "invalid",
    "invalid_error",
    "json_compact",
    "key",
    "not_found",
    "not_supported",
    "qualified_kind",
    "raise_if_invalid",
    "required",
    "too_long",
    "too_many",
    "type_invalid",
    "unique",
]
