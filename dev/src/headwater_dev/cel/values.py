"""CEL values of a custom resource, as Kubernetes 1.32 presents them to rules.

apiserver v0.32.9 ``pkg/cel/common/values.go`` (``UnstructuredToVal``) wraps the decoded
JSON of an object by its schema instead of converting it: an object or map stays a map
(``has(self.x)`` is key presence, reading a missing field is ``no such key: x``), a
``date-time``/``date`` string is a timestamp, a ``duration`` string a duration, a
``byte`` string the decoded bytes, ``int-or-string`` stays as it is (``dyn``), and lists
compare as their ``x-kubernetes-list-type`` says (``set`` and ``map`` lists ignore
order). :func:`to_value` does that eagerly (objects are small); :class:`ListValue` keeps
the list type for equality.

Runtime errors carry cel-go v0.22.0's messages (``common/types/err.go`` and the
operators), since Kubernetes prints them into ``<error> evaluating rule: <rule>``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from headwater_dev.cel.checked import Uint
from headwater_dev.cel.declarations import Decl

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
"""Types :func:`_plain` returns as they are (checked before the slower ABC checks)."""


class CelEvalError(Exception):
    """A CEL runtime error (``types.Err``); its text is cel-go's."""


def no_such_overload() -> CelEvalError:
    return CelEvalError("no such overload")


@dataclass(frozen=True)
class TypeValue:
    """A CEL type as a value (``type(x)``, ``string``, ``int``…)."""

    name: str


@dataclass(frozen=True)
class OptionalValue:
    """``optional_type(T)``: a value or none."""

    value: Any = None
    present: bool = False


class _Absent:
    """``oldSelf`` of an ``optionalOldSelf`` rule where there is no old value: the rule
    is compiled with ``optional.of(oldSelf)`` (see .compiler), which makes it none."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


class ListValue(list[Any]):
    """A list with its ``x-kubernetes-list-type`` (atomic, set or map) and map keys."""

    list_type: str = "atomic"
    map_keys: tuple[str, ...] = ()

    def __init__(self, items: Sequence[Any] = (), list_type: str = "atomic",
                 map_keys: Sequence[str] = ()) -> None:
        super().__init__(items)
        self.list_type = list_type
        self.map_keys = tuple(map_keys)


# --- conversion from unstructured (common/values.go UnstructuredToVal) ----------------
def to_value(obj: Any, decl: Decl | None) -> Any:
    """The CEL value of a decoded JSON value of a schema node."""
    if obj is None or decl is None:
        return _plain(obj)
    kind = decl.kind
    # type() first: decoded JSON holds dicts and lists, and the ABC checks are the slow path.
    is_map = type(obj) is dict or isinstance(obj, Mapping)
    if kind == "object" and is_map:
        return {k: to_value(v, decl.json_field(k)) for k, v in obj.items()}
    if kind == "map" and is_map:
        return {k: to_value(v, decl.elem) for k, v in obj.items()}
    if kind == "list" and (type(obj) is list or (
            isinstance(obj, Sequence) and not isinstance(obj, str))):
        schema = decl.schema
        return ListValue([to_value(v, decl.elem) for v in obj],
                         schema.get("x-kubernetes-list-type", "atomic"),
                         schema.get("x-kubernetes-list-map-keys") or ())
    if kind == "timestamp" and isinstance(obj, str):
        return _timestamp_or_error(obj, decl)
    if kind == "duration" and isinstance(obj, str):
        try:
            return parse_duration(obj)
        except ValueError:
            return CelEvalError(f"format: duration: invalid duration {obj}")
    if kind == "bytes" and isinstance(obj, str):
        return base64.b64decode(obj)
    if kind == "double" and isinstance(obj, int) and not isinstance(obj, bool):
        return float(obj)
    return _plain(obj)


def _timestamp_or_error(text: str, decl: Decl) -> Any:
    try:
        if decl.schema.get("format") == "date":
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        return parse_timestamp(text)
    except ValueError:
        return CelEvalError(f"format: date-time: invalid value {text}")


def _plain(obj: Any) -> Any:
    if type(obj) in _SCALARS:
        return obj
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return ListValue([_plain(v) for v in obj])
    return obj


# --- parsing --------------------------------------------------------------------------
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 (Go ``time.Parse(time.RFC3339, …)``), as a UTC datetime."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = match.group(7) or ""
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    zone = match.group(8)
    moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return moment


_DURATION_UNITS: Final = {"ns": 1e-3, "us": 1.0, "µs": 1.0, "μs": 1.0, "ms": 1e3,
                          "s": 1e6, "m": 60e6, "h": 3600e6}
_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> timedelta:
    """Go ``time.ParseDuration`` (``1h30m``, ``-1.5s``, ``0``)."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return timedelta(0)
    if not body:
        raise ValueError(text)
    pos, micros = 0, 0.0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if not match:
            raise ValueError(text)
        micros += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return timedelta(microseconds=-micros if text.startswith("-") else micros)


def compile_regex(pattern: str) -> re.Pattern[str]:
    """An RE2 pattern as a Python one. RE2 has no backreferences or look-around."""
    if re.search(r"\\[1-9]|\(\?[=!<]", pattern):
        raise ValueError(pattern)
    try:
        return re.compile(pattern.replace("(?P<", "(?P<").replace("\\z", "\\Z"))
    except re.error as error:
        raise ValueError(str(error)) from error


# --- equality (cel-go common/types, Kubernetes common/values.go list types) -----------
def equal(a: Any, b: Any) -> bool:
    """CEL ``==``: heterogeneous numbers compare by value; lists by list type."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) and _number(b):
        return bool(a == b)
    if type_name(a) != type_name(b):
        return False
    if isinstance(a, ListValue) and isinstance(b, list):
        return _list_equal(a, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return (len(a) == len(b) and all(k in b for k in a)
                and all(equal(v, b[k]) for k, v in a.items()))
    return bool(a == b)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _list_equal(a: ListValue, b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    if a.list_type == "set":
        return all(any(equal(x, y) for y in b) for x in a)
    if a.list_type == "map" and a.map_keys:
        keyed = {_map_key(item, a.map_keys): item for item in b if isinstance(item, dict)}
        return all(isinstance(item, dict) and _map_key(item, a.map_keys) in keyed
                   and equal(item, keyed[_map_key(item, a.map_keys)]) for item in a)
    return all(equal(x, y) for x, y in zip(a, b, strict=True))


def _map_key(item: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(repr(item.get(k)) for k in keys)


def type_name(v: Any) -> str:
    """The CEL type name of a runtime value (``type(v)``)."""
    if v is None:
        return "null_type"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Uint):
        return "uint"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bytes):
        return "bytes"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, datetime):
        return "google.protobuf.Timestamp"
    if isinstance(v, timedelta):
        return "google.protobuf.Duration"
    if isinstance(v, TypeValue):
        return "type"
    if isinstance(v, OptionalValue):
        return "optional_type"
    return getattr(v, "cel_type", type(v).__name__)


def size(v: Any) -> int:
    """``size()``: code points of a string, bytes, items, entries."""
    if isinstance(v, (str, bytes, list, dict)):
        return len(v)
    raise no_such_overload()


def check_int(v: int) -> int:
    if not INT64_MIN <= v <= INT64_MAX:
        raise CelEvalError("integer overflow")
    return v


def check_uint(v: int) -> Uint:
    if not 0 <= v <= UINT64_MAX:
        raise CelEvalError("unsigned integer overflow")
    return Uint(v)


def iterate(v: Any) -> Iterator[Any]:
    if isinstance(v, (list, dict)):
        return iter(list(v))
    raise no_such_overload()


__all__ = [
    "CelEvalError",
    "ListValue",
    "OptionalValue",
    "TypeValue",
    "compile_regex",
    "equal",
    "parse_duration",
    "parse_timestamp",
    "size",
    "to_value",
    "type_name",
]
