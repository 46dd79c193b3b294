"""A custom resource's ``metadata`` decoded into ``ObjectMeta`` and written back, as on a server.

apiextensions-apiserver decodes a custom resource as free-form JSON, so it puts the
``metadata`` of the resource (and of every ``x-kubernetes-embedded-resource`` inside
it) through a round trip of its own: JSON → ``metav1.ObjectMeta`` → JSON
(v0.32.9 ``pkg/apiserver/schema/objectmeta/algorithm.go`` ``GetObjectMetaWithOptions``
and ``SetObjectMeta``). What the round trip does, and what this module reproduces:

* fields ``ObjectMeta`` does not have are dropped; with strict decoding each is an
  unknown field named ``<parent>.metadata.<field>`` (``metadata.foo``,
  ``metadata.ownerReferences[0].bar``), in the decoder's order: the metadata is
  re-marshalled first, so keys come sorted;
* a value of the wrong type refuses the whole request (the decoder's first error, in
  Go's words: ``json: cannot unmarshal number into Go struct field ObjectMeta.labels of
  type string``); the caller answers 400 BadRequest with it;
* the write-back keeps what Go's ``omitempty`` keeps: empty strings, zero
  ``generation``, empty maps and lists and nulls disappear; an owner reference always
  has ``apiVersion``, ``kind``, ``name`` and ``uid``; times are normalised to UTC
  seconds (``metav1.Time``: RFC 3339 in, ``2006-01-02T15:04:05Z`` out).

One simplification: a missing ``creationTimestamp`` stays missing (the server writes a
transient ``null`` that its create and update paths always overwrite).

Pure functions; nothing here mutates its arguments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from headwater_dev.apiextensions.schemaview import go_json, go_kind

RFC3339_LAYOUT: Final = "2006-01-02T15:04:05Z07:00"


class MetadataDecodeError(ValueError):
    """``metadata`` that cannot be decoded into ``ObjectMeta``; ``str()`` is Go's text."""


@dataclass
class _Decoder:
    """One decode: the first type error (Go's ``saveError``) and the unknown fields."""

    unknown: list[str] = field(default_factory=list)
    error: str | None = None

    def save(self, message: str) -> None:
        if self.error is None:
            self.error = message


# --- Go's JSON decoding of one value ----------------------------------------------------
def _json_type(value: Any) -> str:
    """The JSON value's name in an ``UnmarshalTypeError``."""
    return {"nil": "null", "bool": "bool", "int": "number", "float": "number",
            "string": "string", "slice": "array", "map": "object"}[go_kind(value)]


def _type_error(value: Any, go_type: str, struct: str, stack: list[str]) -> str:
    shown = _json_type(value)
    if go_type == "int64" and shown == "number":
        shown = f"number {go_json(value)}"
    return (f"json: cannot unmarshal {shown} into Go struct field {struct}."
            f"{'.'.join(stack)} of type {go_type}")


def _decode_string(value: Any, go_type: str, struct: str, stack: list[str],
                   decoder: _Decoder) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    decoder.save(_type_error(value, go_type, struct, stack))
    return ""


def _decode_int(value: Any, struct: str, stack: list[str], decoder: _Decoder) -> int | None:
    if value is None:
        return None
    if go_kind(value) == "int":
        return int(value)
    decoder.save(_type_error(value, "int64", struct, stack))
    return None


def _decode_bool(value: Any, struct: str, stack: list[str], decoder: _Decoder) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    decoder.save(_type_error(value, "bool", struct, stack))
    return None


def _decode_string_map(value: Any, struct: str, stack: list[str],
                       decoder: _Decoder) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        decoder.save(_type_error(value, "map[string]string", struct, stack))
        return {}
    return {str(k): _decode_string(v, "string", struct, stack, decoder)
            for k, v in sorted(value.items())}


def _decode_string_list(value: Any, struct: str, stack: list[str],
                        decoder: _Decoder) -> list[str]:
    if value is None:
        return []
    if go_kind(value) != "slice":
        decoder.save(_type_error(value, "[]string", struct, stack))
        return []
    return [_decode_string(v, "string", struct, stack, decoder) for v in value]


def _decode_time(value: Any, struct: str, stack: list[str]) -> str | None:
    """``metav1.Time.UnmarshalJSON``: RFC 3339, normalised to UTC seconds; None for null."""
    if value is None:
        return None
    if not isinstance(value, str):
        # The string unmarshal inside UnmarshalJSON fails; the outer decoder adds its
        # struct context to that UnmarshalTypeError.
        raise MetadataDecodeError(_type_error(value, "string", struct, stack))
    return format_time_utc(parse_rfc3339(value))


# --- the ObjectMeta types --------------------------------------------------------------
_OWNER_REFERENCE_REQUIRED: Final = ("apiVersion", "kind", "name", "uid")


def _decode_owner_reference(value: Any, index: int, decoder: _Decoder,
                            prefix: str) -> dict[str, Any]:
    stack = ["ownerReferences"]
    if value is None:
        return dict.fromkeys(_OWNER_REFERENCE_REQUIRED, "")
    if not isinstance(value, Mapping):
        decoder.save(_type_error(value, "v1.OwnerReference", "ObjectMeta", stack))
        return dict.fromkeys(_OWNER_REFERENCE_REQUIRED, "")
    out: dict[str, Any] = dict.fromkeys(_OWNER_REFERENCE_REQUIRED, "")
    for name in sorted(value):
        item = value[name]
        if name in ("apiVersion", "kind", "name", "uid"):
            go_type = "types.UID" if name == "uid" else "string"
            out[name] = _decode_string(item, go_type, "OwnerReference", [*stack, name], decoder)
        elif name in ("controller", "blockOwnerDeletion"):
            flag = _decode_bool(item, "OwnerReference", [*stack, name], decoder)
            if flag is not None:
                out[name] = flag
        else:
            decoder.unknown.append(f"{prefix}.ownerReferences[{index}].{name}")
    return out


_MANAGED_FIELDS_STRINGS: Final = ("manager", "operation", "apiVersion", "fieldsType",
                                  "subresource")


def _decode_managed_fields_entry(value: Any, index: int, decoder: _Decoder,
                                 prefix: str) -> dict[str, Any]:
    stack = ["managedFields"]
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        decoder.save(_type_error(value, "v1.ManagedFieldsEntry", "ObjectMeta", stack))
        return {}
    out: dict[str, Any] = {}
    for name in sorted(value):
        item = value[name]
        if name in _MANAGED_FIELDS_STRINGS:
            go_type = "v1.ManagedFieldsOperationType" if name == "operation" else "string"
            text = _decode_string(item, go_type, "ManagedFieldsEntry", [*stack, name], decoder)
            if text:
                out[name] = text
        elif name == "time":
            when = _decode_time(item, "ManagedFieldsEntry", [*stack, name])
            if item is not None:
                out[name] = when
        elif name == "fieldsV1":
            if item is not None:  # FieldsV1 keeps any JSON as raw bytes
                out[name] = item
        else:
            decoder.unknown.append(f"{prefix}.managedFields[{index}].{name}")
    return out


def _decode_list(value: Any, name: str, decoder: _Decoder, prefix: str,
                 entry: Callable[[Any, int, _Decoder, str], dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    go_type = {"ownerReferences": "[]v1.OwnerReference",
               "managedFields": "[]v1.ManagedFieldsEntry"}[name]
    if value is None:
        return []
    if go_kind(value) != "slice":
        decoder.save(_type_error(value, go_type, "ObjectMeta", [name]))
        return []
    return [entry(item, index, decoder, prefix) for index, item in enumerate(value)]


_STRING_FIELDS: Final = {"name": "string", "generateName": "string", "namespace": "string",
                         "selfLink": "string", "uid": "types.UID", "resourceVersion": "string"}


def _decode_field(name: str, value: Any, decoder: _Decoder, prefix: str
                  ) -> tuple[bool, Any]:
    """One ObjectMeta field: (whether the write-back keeps it, its value)."""
    stack = [name]
    if name in _STRING_FIELDS:
        text = _decode_string(value, _STRING_FIELDS[name], "ObjectMeta", stack, decoder)
        return bool(text), text
    if name in ("generation", "deletionGracePeriodSeconds"):
        number = _decode_int(value, "ObjectMeta", stack, decoder)
        # generation is omitempty; deletionGracePeriodSeconds a pointer (0 is kept).
        keep = number is not None and (number != 0 or name == "deletionGracePeriodSeconds")
        return keep, number
    if name in ("creationTimestamp", "deletionTimestamp"):
        when = _decode_time(value, "ObjectMeta", stack)
        return value is not None and (when is not None or name == "deletionTimestamp"), when
    if name in ("labels", "annotations"):
        mapping = _decode_string_map(value, "ObjectMeta", stack, decoder)
        return bool(mapping), mapping
    if name == "finalizers":
        names = _decode_string_list(value, "ObjectMeta", stack, decoder)
        return bool(names), names
    if name == "ownerReferences":
        owners = _decode_list(value, name, decoder, prefix, _decode_owner_reference)
        return bool(owners), owners
    managed = _decode_list(value, name, decoder, prefix, _decode_managed_fields_entry)
    return bool(managed), managed


OBJECT_META_FIELDS: Final = frozenset({
    *_STRING_FIELDS, "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
    "finalizers", "managedFields"})
"""The JSON names of ``metav1.ObjectMeta``'s fields in Kubernetes 1.32."""


@dataclass(frozen=True)
class DecodedMeta:
    """``metadata`` after its round trip through ``ObjectMeta``."""

    meta: dict[str, Any]
    """What the server writes back (``SetObjectMeta``)."""
    unknown: list[str]
    """The fields that were dropped, named as strict decoding names them."""


def decode_object_meta(metadata: Any, parent: str = "") -> DecodedMeta:
    """Round-trip ``metadata`` (found at ``parent``; ``""`` for the root) through ObjectMeta.

    Raises :class:`MetadataDecodeError` with Go's message when a value has the wrong
    type; the server then refuses the request with 400 BadRequest.
    """
    prefix = f"{parent}.metadata" if parent else "metadata"
    if not isinstance(metadata, Mapping):
        if metadata is None:
            return DecodedMeta({}, [])
        raise MetadataDecodeError(
            f"json: cannot unmarshal {_json_type(metadata)} into Go value of type "
            "v1.ObjectMeta")
    decoder = _Decoder()
    out: dict[str, Any] = {}
    # An error of a field's own UnmarshalJSON (metav1.Time) is raised at once and wins
    # over an earlier type error, as Go's decoder returns it without finishing.
    for name in sorted(metadata):
        if name not in OBJECT_META_FIELDS:
            decoder.unknown.append(f"{prefix}.{name}")
            continue
        keep, value = _decode_field(name, metadata[name], decoder, prefix)
        if keep:
            out[name] = value
    if decoder.error is not None:
        raise MetadataDecodeError(decoder.error)
    return DecodedMeta(out, decoder.unknown)


# --- metav1.Time: Go's time.Parse with the RFC 3339 layout --------------------------------
@dataclass(frozen=True)
class GoTime:
    """A parsed RFC 3339 instant: the wall clock as written and its zone offset."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    offset_seconds: int


_LAYOUT: Final = (("2006", "std"), ("-", "lit"), ("01", "std"), ("-", "lit"), ("02", "std"),
                  ("T", "lit"), ("15", "std"), (":", "lit"), ("04", "std"), (":", "lit"),
                  ("05", "std"), ("Z07:00", "std"))


def go_time_quote(text: str) -> str:
    """The ``time`` package's own ``quote``: non-ASCII and control bytes as ``\\xNN``."""
    out = ['"']
    for char in text:
        if ord(char) >= 0x80 or char < " ":
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append("\\" + char if char in '"\\' else char)
    out.append('"')
    return "".join(out)


def _parse_error(value: str, layout_elem: str, value_elem: str, message: str = "") -> str:
    if message:
        return f"parsing time {go_time_quote(value)}{message}"
    return (f"parsing time {go_time_quote(value)} as {go_time_quote(RFC3339_LAYOUT)}: cannot "
            f"parse {go_time_quote(value_elem)} as {go_time_quote(layout_elem)}")


def _getnum(text: str, fixed: bool) -> tuple[int, str] | None:
    if not text[:1].isascii() or not text[:1].isdigit():
        return None
    if not (len(text) > 1 and text[1].isascii() and text[1].isdigit()):
        return None if fixed else (int(text[0]), text[1:])
    return int(text[:2]), text[2:]


def days_in_month(year: int, month: int) -> int:
    """Days of ``month`` in the proleptic Gregorian ``year`` (Go's ``daysIn``)."""
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


_NUMBER_RANGES: Final = {"01": ("month", 1, 12), "15": ("hour", 0, 23),
                         "04": ("minute", 0, 59), "05": ("second", 0, 59)}


def _parse_zone(value: str, rest: str) -> tuple[int, str]:
    """The ``Z07:00`` element; the range check comes first, as in Go's parser."""
    if rest.startswith("Z"):
        return 0, rest[1:]
    if len(rest) < 6 or rest[3] != ":":
        raise MetadataDecodeError(_parse_error(value, "Z07:00", rest))
    hours, minutes = _getnum(rest[1:3], True), _getnum(rest[4:6], True)
    hour_value = hours[0] if hours else 0
    minute_value = minutes[0] if hours and minutes else 0
    for what, number, limit in (("hour", hour_value, 24), ("minute", minute_value, 60)):
        if number > limit:
            raise MetadataDecodeError(_parse_error(
                value, "", rest[6:], f": time zone offset {what} out of range"))
    if hours is None or minutes is None or rest[0] not in "+-":
        raise MetadataDecodeError(_parse_error(value, "Z07:00", rest))
    offset = (hour_value * 60 + minute_value) * 60
    return (offset if rest[0] == "+" else -offset), rest[6:]


def parse_rfc3339(value: str) -> GoTime:
    """``time.Parse(time.RFC3339, value)``; raises :class:`MetadataDecodeError` in Go's words."""
    rest, numbers, offset = value, {}, 0
    for elem, kind in _LAYOUT:
        hold = rest
        if kind == "lit":
            if not rest.startswith(elem):
                raise MetadataDecodeError(_parse_error(value, elem, rest))
            rest = rest[len(elem):]
            continue
        if elem == "2006":
            if len(rest) < 4 or not rest[:4].isascii() or not rest[:4].isdigit():
                raise MetadataDecodeError(_parse_error(value, elem, hold))
            numbers[elem], rest = int(rest[:4]), rest[4:]
        elif elem == "Z07:00":
            offset, rest = _parse_zone(value, rest)
        else:
            parsed = _getnum(rest, fixed=elem != "15")
            if parsed is None:
                raise MetadataDecodeError(_parse_error(value, elem, hold))
            numbers[elem], rest = parsed
            if elem in _NUMBER_RANGES:
                what, low, high = _NUMBER_RANGES[elem]
                if not low <= numbers[elem] <= high:
                    raise MetadataDecodeError(
                        _parse_error(value, elem, rest, f": {what} out of range"))
            if elem == "05":
                # A fractional second the layout does not name is accepted and dropped.
                fraction = re.match(r"[.,][0-9]+", rest)
                rest = rest[fraction.end():] if fraction else rest
    if rest:
        raise MetadataDecodeError(
            _parse_error(value, "", rest, f": extra text: {go_time_quote(rest)}"))
    year, month, day = numbers["2006"], numbers["01"], numbers["02"]
    if not 1 <= day <= days_in_month(year, month):
        raise MetadataDecodeError(_parse_error(value, "", rest, ": day out of range"))
    return GoTime(year, month, day, numbers["15"], numbers["04"], numbers["05"], offset)


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def format_time_utc(when: GoTime) -> str | None:
    """``metav1.Time``'s JSON: the instant in UTC to the second; None for the zero time."""
    seconds = (_days_from_civil(when.year, when.month, when.day) * 86400 + when.hour * 3600
               + when.minute * 60 + when.second - when.offset_seconds)
    days, remainder = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    if (year, month, day, remainder) == (1, 1, 1, 0):
        return None  # time.Time's zero value marshals as null
    hour, remainder = divmod(remainder, 3600)
    minute, second = divmod(remainder, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


__all__ = [
    "OBJECT_META_FIELDS",
    "RFC3339_LAYOUT",
    "DecodedMeta",
    "GoTime",
    "MetadataDecodeError",
    "days_in_month",
    "decode_object_meta",
    "format_time_utc",
    "go_time_quote",
    "parse_rfc3339",
]
