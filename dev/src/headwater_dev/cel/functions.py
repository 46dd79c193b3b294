"""The functions a CRD rule can call, evaluated on :mod:`.values`, and their runtime cost.

cel-go v0.22.0's standard library (operators, ``size``, conversions, string functions,
timestamp accessors), ``ext.Strings`` v2, ``ext.Sets``, optional values, and Kubernetes'
libraries (apiserver v0.32.9 ``pkg/cel/library``: lists, regex, quantity, ip, cidr,
url). Dispatch is on the function name and the runtime types (the checker has already
chosen the overloads; ``dyn`` values are resolved here as cel-go resolves them), and a
call the arguments do not fit is cel-go's ``no such overload`` error.

``call_cost`` is ``CostTracker.costCall``: apiserver ``library.CostEstimator.CallCost``
first, then cel-go's sized builtins, else 1.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from headwater_dev.cel import values as v
from headwater_dev.cel.checked import Uint
from headwater_dev.cel.cost import NOMINAL_COST_FUNCTIONS

LIST_CREATE: Final = 10
MAP_CREATE: Final = 30
_ESCAPED: Final = re.compile(r"__[^_]+__")
_UNESCAPES: Final = {"underscores": "__", "dot": ".", "dash": "-", "slash": "/"}


def unescape(name: str) -> str:
    """``cel.Unescape``: the property a CEL field name stands for."""
    if name.startswith("__") and name.endswith("__") and name[2:-2] in _RESERVED:
        return name[2:-2]
    return _ESCAPED.sub(lambda m: _UNESCAPES.get(m.group(0)[2:-2], m.group(0)), name)


_RESERVED: Final = frozenset({
    "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
    "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
    "void", "while"})


def select(operand: Any, name: str) -> Any:
    """``operand.name`` on a map or object (Kubernetes objects are maps)."""
    if isinstance(operand, dict):
        key = unescape(name)
        if key in operand:
            value = operand[key]
            if isinstance(value, v.CelEvalError):
                raise value
            return value
        raise v.CelEvalError(f"no such key: {key}")
    raise v.no_such_overload()


def has_field(operand: Any, name: str) -> bool:
    if isinstance(operand, dict):
        return unescape(name) in operand
    raise v.no_such_overload()


# --- dispatch -------------------------------------------------------------------------
Impl = Callable[[Any, list[Any]], Any]
_FUNCTIONS: dict[str, Impl] = {}


def _fn(*names: str) -> Callable[[Impl], Impl]:
    def register(impl: Impl) -> Impl:
        for name in names:
            _FUNCTIONS[name] = impl
        return impl
    return register


def call(name: str, overloads: Sequence[str], target: Any, args: list[Any]) -> Any:
    """Call ``name`` (member calls get ``target``)."""
    impl = _FUNCTIONS.get(name)
    if impl is None:
        raise v.CelEvalError(f"no such overload: {name}")
    return impl(target, args)


def _all(target: Any, args: list[Any]) -> list[Any]:
    return ([target] if target is not None else []) + args


# --- operators ---
@_fn("!_")
def _not(target: Any, args: list[Any]) -> Any:
    if isinstance(args[0], bool):
        return not args[0]
    raise v.no_such_overload()


@_fn("-_")
def _negate(target: Any, args: list[Any]) -> Any:
    x = args[0]
    if isinstance(x, (bool, Uint)):
        raise v.no_such_overload()
    if isinstance(x, int):
        return v.check_int(-x)
    if isinstance(x, (float, timedelta)):
        return -x
    raise v.no_such_overload()


@_fn("_==_")
def _eq(target: Any, args: list[Any]) -> Any:
    return v.equal(args[0], args[1])


@_fn("_!=_")
def _ne(target: Any, args: list[Any]) -> Any:
    return not v.equal(args[0], args[1])


def _compare(a: Any, b: Any) -> int:
    if _num(a) and _num(b):
        return int((a > b) - (a < b))
    same = (isinstance(a, bool) and isinstance(b, bool)) or (
        not isinstance(a, bool) and type(a) is type(b)
        and isinstance(a, (str, bytes, datetime, timedelta)))
    if not same:
        raise v.no_such_overload()
    return int((a > b) - (a < b))


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_fn("_<_")(lambda t, a: _compare(a[0], a[1]) < 0)
_fn("_<=_")(lambda t, a: _compare(a[0], a[1]) <= 0)
_fn("_>_")(lambda t, a: _compare(a[0], a[1]) > 0)
_fn("_>=_")(lambda t, a: _compare(a[0], a[1]) >= 0)


@_fn("_+_")
def _add(target: Any, args: list[Any]) -> Any:
    a, b = args
    if isinstance(a, Uint) and isinstance(b, Uint):
        return v.check_uint(a + b)
    if _int(a) and _int(b):
        return v.check_int(a + b)
    if isinstance(a, float) and isinstance(b, float):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, bytes) and isinstance(b, bytes):
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        return v.ListValue([*a, *b])
    if isinstance(a, (datetime, timedelta)) and isinstance(b, timedelta):
        return a + b
    if isinstance(a, timedelta) and isinstance(b, datetime):
        return b + a
    raise v.no_such_overload()


def _int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, (bool, Uint))


@_fn("_-_")
def _sub(target: Any, args: list[Any]) -> Any:
    a, b = args
    if isinstance(a, Uint) and isinstance(b, Uint):
        return v.check_uint(a - b)
    if _int(a) and _int(b):
        return v.check_int(a - b)
    if isinstance(a, float) and isinstance(b, float):
        return a - b
    if isinstance(a, datetime) and isinstance(b, (datetime, timedelta)):
        return a - b
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a - b
    raise v.no_such_overload()


@_fn("_*_")
def _mul(target: Any, args: list[Any]) -> Any:
    a, b = args
    if isinstance(a, Uint) and isinstance(b, Uint):
        return v.check_uint(a * b)
    if _int(a) and _int(b):
        return v.check_int(a * b)
    if isinstance(a, float) and isinstance(b, float):
        return a * b
    raise v.no_such_overload()


@_fn("_/_")
def _div(target: Any, args: list[Any]) -> Any:
    a, b = args
    if (_int(a) and _int(b)) or (isinstance(a, Uint) and isinstance(b, Uint)):
        if b == 0:
            raise v.CelEvalError("division by zero")
        quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
        return Uint(quotient) if isinstance(a, Uint) else v.check_int(quotient)
    if isinstance(a, float) and isinstance(b, float):
        return a / b if b else (math.copysign(math.inf, a) if a else math.nan)
    raise v.no_such_overload()


@_fn("_%_")
def _mod(target: Any, args: list[Any]) -> Any:
    a, b = args
    if (_int(a) and _int(b)) or (isinstance(a, Uint) and isinstance(b, Uint)):
        if b == 0:
            raise v.CelEvalError("modulus by zero")
        remainder = abs(a) % abs(b) * (1 if a >= 0 else -1)
        return Uint(remainder) if isinstance(a, Uint) else remainder
    raise v.no_such_overload()


@_fn("@in")
def _in(target: Any, args: list[Any]) -> Any:
    item, container = args
    if isinstance(container, list):
        return any(v.equal(item, x) for x in container)
    if isinstance(container, dict):
        return item in container
    raise v.no_such_overload()


@_fn("_[_]")
def _index(target: Any, args: list[Any]) -> Any:
    container, index = args
    if isinstance(container, list):
        if isinstance(index, float) and index.is_integer():
            index = int(index)
        if not _num(index):
            raise v.no_such_overload()
        if not 0 <= index < len(container):
            raise v.CelEvalError(f"index out of bounds: {index}")
        return container[index]
    if isinstance(container, dict):
        if index in container:
            return container[index]
        raise v.CelEvalError(f"no such key: {index}")
    raise v.no_such_overload()


@_fn("size")
def _size(target: Any, args: list[Any]) -> Any:
    return v.size(_all(target, args)[0])


# --- conversions ---
@_fn("int")
def _to_int(target: Any, args: list[Any]) -> Any:
    x = args[0]
    if isinstance(x, bool):
        raise v.no_such_overload()
    if isinstance(x, int):
        return v.check_int(int(x))
    if isinstance(x, float):
        if math.isnan(x) or not -(2.0**63) <= x < 2.0**63:
            raise v.CelEvalError("integer overflow")
        return int(x)
    if isinstance(x, str):
        try:
            return v.check_int(int(x, 10))
        except ValueError:
            raise v.CelEvalError(f"cannot convert string '{x}' to int") from None
    if isinstance(x, datetime):
        return int(x.timestamp())
    if isinstance(x, timedelta):
        return int(x / timedelta(microseconds=1)) * 1000
    raise v.no_such_overload()


@_fn("uint")
def _to_uint(target: Any, args: list[Any]) -> Any:
    x = args[0]
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return v.check_uint(int(x))
    if isinstance(x, str):
        return v.check_uint(int(x, 10))
    raise v.no_such_overload()


@_fn("double")
def _to_double(target: Any, args: list[Any]) -> Any:
    x = args[0]
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            raise v.CelEvalError(f"cannot convert string '{x}' to double") from None
    raise v.no_such_overload()


@_fn("string")
def _to_string(target: Any, args: list[Any]) -> Any:
    x = args[0]
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return str(int(x))
    if isinstance(x, float):
        return repr(x) if x != int(x) or abs(x) >= 1e21 else f"{x:g}"
    if isinstance(x, bytes):
        return x.decode("utf-8")
    if isinstance(x, datetime):
        return x.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(x, timedelta):
        return f"{x.total_seconds():g}s"
    if isinstance(x, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(x)
    if isinstance(x, Cidr):
        return str(x)
    raise v.no_such_overload()


_fn("bytes")(lambda t, a: a[0].encode() if isinstance(a[0], str) else a[0])
_fn("bool")(lambda t, a: a[0] if isinstance(a[0], bool) else {"true": True, "false": False}[
    a[0]])
_fn("dyn")(lambda t, a: a[0])
_fn("type")(lambda t, a: v.TypeValue(v.type_name(a[0])))


@_fn("timestamp")
def _to_timestamp(target: Any, args: list[Any]) -> Any:
    x = args[0]
    if isinstance(x, datetime):
        return x
    if isinstance(x, int):
        return datetime.fromtimestamp(x, UTC)
    try:
        return v.parse_timestamp(x)
    except ValueError:
        raise v.CelEvalError(f"cannot convert string '{x}' to timestamp") from None


@_fn("duration")
def _to_duration(target: Any, args: list[Any]) -> Any:
    x = args[0]
    if isinstance(x, timedelta):
        return x
    try:
        return v.parse_duration(x)
    except ValueError:
        raise v.CelEvalError(f"cannot convert string '{x}' to duration") from None


# --- timestamps and durations ---
def _moment(target: Any, args: list[Any]) -> datetime:
    if not isinstance(target, datetime):
        raise v.no_such_overload()
    if args:
        zone = args[0]
        try:
            return target.astimezone(ZoneInfo(zone))
        except (KeyError, ValueError):
            sign = -1 if zone.startswith("-") else 1
            hours, _, minutes = zone.lstrip("+-").partition(":")
            return target.astimezone(datetime.now(UTC).tzinfo).__add__(
                sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))
    return target


_fn("getFullYear")(lambda t, a: _moment(t, a).year)
_fn("getMonth")(lambda t, a: _moment(t, a).month - 1)
_fn("getDate")(lambda t, a: _moment(t, a).day)
_fn("getDayOfMonth")(lambda t, a: _moment(t, a).day - 1)
_fn("getDayOfWeek")(lambda t, a: (_moment(t, a).weekday() + 1) % 7)
_fn("getDayOfYear")(lambda t, a: _moment(t, a).timetuple().tm_yday - 1)


def _clock(unit: str) -> Impl:
    def impl(target: Any, args: list[Any]) -> Any:
        if isinstance(target, timedelta):
            seconds = target.total_seconds()
            return int({"h": seconds / 3600, "m": seconds / 60, "s": seconds,
                        "ms": seconds * 1000}[unit])
        moment = _moment(target, args)
        return {"h": moment.hour, "m": moment.minute, "s": moment.second,
                "ms": moment.microsecond // 1000}[unit]
    return impl


_fn("getHours")(_clock("h"))
_fn("getMinutes")(_clock("m"))
_fn("getSeconds")(_clock("s"))
_fn("getMilliseconds")(_clock("ms"))


# --- strings (standard and ext.Strings v2) ---
def _string(x: Any) -> str:
    if not isinstance(x, str):
        raise v.no_such_overload()
    return x


_fn("contains")(lambda t, a: _string(t) .__contains__(_string(a[0])))
_fn("startsWith")(lambda t, a: _string(t).startswith(_string(a[0])))
_fn("endsWith")(lambda t, a: _string(t).endswith(_string(a[0])))
_fn("lowerAscii")(lambda t, a: "".join(c.lower() if c.isascii() else c for c in _string(t)))
_fn("upperAscii")(lambda t, a: "".join(c.upper() if c.isascii() else c for c in _string(t)))
_fn("trim")(lambda t, a: _string(t).strip())


@_fn("matches")
def _matches(target: Any, args: list[Any]) -> Any:
    text, pattern = (target, args[0]) if target is not None else (args[0], args[1])
    try:
        return v.compile_regex(_string(pattern)).search(_string(text)) is not None
    except ValueError as error:
        raise v.CelEvalError(f"error parsing regexp: {error}") from None


@_fn("charAt")
def _char_at(target: Any, args: list[Any]) -> Any:
    text, index = _string(target), args[0]
    if not 0 <= index <= len(text):
        raise v.CelEvalError(f"index out of range: {index}")
    return text[index:index + 1]


@_fn("indexOf")
def _index_of(target: Any, args: list[Any]) -> Any:
    if isinstance(target, list):
        indexes = [i for i, x in enumerate(target) if v.equal(x, args[0])]
        return indexes[0] if indexes else -1
    return _string_index(target, args)


def _string_index(target: Any, args: list[Any]) -> int:
    text, sub = _string(target), _string(args[0])
    start = args[1] if len(args) > 1 else 0
    if not 0 <= start <= len(text):
        raise v.CelEvalError(f"index out of range: {start}")
    return text.find(sub, start)


@_fn("lastIndexOf")
def _last_index_of(target: Any, args: list[Any]) -> Any:
    if isinstance(target, list):
        indexes = [i for i, x in enumerate(target) if v.equal(x, args[0])]
        return indexes[-1] if indexes else -1
    text, sub = _string(target), _string(args[0])
    end = args[1] if len(args) > 1 else len(text)
    if not 0 <= end <= len(text):
        raise v.CelEvalError(f"index out of range: {end}")
    return text.rfind(sub, 0, end + len(sub))


@_fn("replace")
def _replace(target: Any, args: list[Any]) -> Any:
    count = args[2] if len(args) > 2 else -1
    return _string(target).replace(_string(args[0]), _string(args[1]), count)


@_fn("split")
def _split(target: Any, args: list[Any]) -> Any:
    text, separator = _string(target), _string(args[0])
    limit = args[1] if len(args) > 1 else -1
    if limit == 0:
        return v.ListValue()
    if separator == "":
        parts = list(text)
        if limit > 0 and len(parts) > limit:
            parts = [*parts[:limit - 1], "".join(parts[limit - 1:])]
        return v.ListValue(parts)
    return v.ListValue(text.split(separator, limit - 1 if limit > 0 else -1))


@_fn("substring")
def _substring(target: Any, args: list[Any]) -> Any:
    text = _string(target)
    start = args[0]
    end = args[1] if len(args) > 1 else len(text)
    if not 0 <= start <= len(text):
        raise v.CelEvalError(f"index out of range: {start}")
    if not start <= end <= len(text):
        raise v.CelEvalError(f"index out of range: {end}")
    return text[start:end]


@_fn("join")
def _join(target: Any, args: list[Any]) -> Any:
    if not isinstance(target, list) or not all(isinstance(x, str) for x in target):
        raise v.no_such_overload()
    return (_string(args[0]) if args else "").join(target)


# --- lists (pkg/cel/library/lists.go) ---
def _list(x: Any) -> list[Any]:
    if not isinstance(x, list):
        raise v.no_such_overload()
    return x


@_fn("isSorted")
def _is_sorted(target: Any, args: list[Any]) -> Any:
    items = _list(target)
    return all(_compare(a, b) <= 0 for a, b in itertools.pairwise(items))


@_fn("sum")
def _sum(target: Any, args: list[Any]) -> Any:
    items = _list(target)
    total: Any = 0
    for item in items:
        total = _add(None, [total, item]) if items else total
    return total


@_fn("max")
def _extreme(target: Any, args: list[Any]) -> Any:
    items = _list(target)
    if not items:
        raise v.CelEvalError("max of empty list")
    best = items[0]
    for item in items[1:]:
        if _compare(item, best) > 0:
            best = item
    return best


@_fn("min")
def _minimum(target: Any, args: list[Any]) -> Any:
    items = _list(target)
    if not items:
        raise v.CelEvalError("min of empty list")
    best = items[0]
    for item in items[1:]:
        if _compare(item, best) < 0:
            best = item
    return best


# --- sets (cel-go ext/sets.go) ---
_fn("sets.contains")(lambda t, a: all(any(v.equal(x, y) for y in a[0]) for x in a[1]))
_fn("sets.equivalent")(lambda t, a: all(any(v.equal(x, y) for y in a[0]) for x in a[1])
                       and all(any(v.equal(x, y) for y in a[1]) for x in a[0]))
_fn("sets.intersects")(lambda t, a: any(any(v.equal(x, y) for y in a[0]) for x in a[1]))


# --- regex (pkg/cel/library/regex.go) ---
@_fn("find")
def _find(target: Any, args: list[Any]) -> Any:
    match = v.compile_regex(_string(args[0])).search(_string(target))
    return match.group(0) if match else ""


@_fn("findAll")
def _find_all(target: Any, args: list[Any]) -> Any:
    found = [m.group(0) for m in v.compile_regex(_string(args[0])).finditer(_string(target))]
    if len(args) > 1 and args[1] >= 0:
        found = found[:args[1]]
    return v.ListValue(found)


# --- optional values ---
_fn("optional.of")(lambda t, a: v.OptionalValue() if a[0] is v.ABSENT
                   else v.OptionalValue(a[0], True))
_fn("optional.none")(lambda t, a: v.OptionalValue())
_fn("optional.ofNonZeroValue")(lambda t, a: v.OptionalValue(a[0], a[0] not in (
    0, 0.0, "", b"", False, None) and a[0] != [] and a[0] != {}))


def _optional(x: Any) -> v.OptionalValue:
    if not isinstance(x, v.OptionalValue):
        raise v.no_such_overload()
    return x


_fn("hasValue")(lambda t, a: _optional(t).present)
_fn("orValue")(lambda t, a: _optional(t).value if _optional(t).present else a[0])
_fn("or")(lambda t, a: _optional(t) if _optional(t).present else _optional(a[0]))


@_fn("value")
def _value(target: Any, args: list[Any]) -> Any:
    optional = _optional(target)
    if not optional.present:
        raise v.CelEvalError("optional.none() dereference")
    return optional.value


# --- quantity (pkg/cel/library/quantity.go, apimachinery resource.Quantity) ---
_QUANTITY: Final = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|"
                              r"[eE][+-]?\d+)?")
_SUFFIX: Final = {"": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"),
                  "m": Decimal("1e-3"), "k": Decimal("1e3"), "M": Decimal("1e6"),
                  "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"),
                  "E": Decimal("1e18"), "Ki": Decimal(2**10), "Mi": Decimal(2**20),
                  "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50),
                  "Ei": Decimal(2**60)}


class Quantity:
    """A ``resource.Quantity`` (exact decimal value)."""

    cel_type = "kubernetes.Quantity"

    def __init__(self, amount: Decimal) -> None:
        self.amount = amount

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.amount == other.amount

    def __hash__(self) -> int:
        return hash(self.amount)


def parse_quantity(text: Any) -> Quantity:
    match = _QUANTITY.fullmatch(_string(text))
    if not match:
        raise v.CelEvalError("quantities must match the regular expression "
                             "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    suffix = match.group(2) or ""
    try:
        scale = (Decimal(10) ** int(suffix[1:]) if suffix[:1] in "eE" and suffix
                 else _SUFFIX[suffix])
        return Quantity(Decimal(match.group(1)) * scale)
    except (InvalidOperation, KeyError):
        raise v.CelEvalError("quantities must match the regular expression") from None


def _q(x: Any) -> Quantity:
    if not isinstance(x, Quantity):
        raise v.no_such_overload()
    return x


def _is_quantity(target: Any, args: list[Any]) -> bool:
    try:
        parse_quantity(args[0])
    except v.CelEvalError:
        return False
    return True


_fn("quantity")(lambda t, a: parse_quantity(a[0]))
_fn("isQuantity")(_is_quantity)
_fn("sign")(lambda t, a: (_q(a[0]).amount > 0) - (_q(a[0]).amount < 0))
_fn("isGreaterThan")(lambda t, a: _q(t).amount > _q(a[0]).amount)
_fn("isLessThan")(lambda t, a: _q(t).amount < _q(a[0]).amount)
_fn("compareTo")(lambda t, a: (_q(t).amount > _q(a[0]).amount) - (_q(t).amount < _q(a[0]).amount))
_fn("asApproximateFloat")(lambda t, a: float(_q(t).amount))
_fn("isInteger")(lambda t, a: _q(t).amount == _q(t).amount.to_integral_value()
                 and abs(_q(t).amount) <= v.INT64_MAX)


@_fn("asInteger")
def _as_integer(target: Any, args: list[Any]) -> Any:
    amount = _q(target).amount
    if amount != amount.to_integral_value() or abs(amount) > v.INT64_MAX:
        raise v.CelEvalError("cannot convert value to integer")
    return int(amount)


def _other(x: Any) -> Decimal:
    return Decimal(x) if _int(x) else _q(x).amount


_fn("add")(lambda t, a: Quantity(_q(t).amount + _other(a[0])))
_fn("sub")(lambda t, a: Quantity(_q(t).amount - _other(a[0])))


# --- ip and cidr (pkg/cel/library/ip.go, cidr.go) ---
class Cidr:
    cel_type = "net.IPNet"

    def __init__(self, network: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
        self.interface = network

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cidr) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __str__(self) -> str:
        return str(self.interface)


def _parse_ip(text: Any) -> Any:
    try:
        if "%" in _string(text):
            raise ValueError(text)
        return ipaddress.ip_address(text)
    except ValueError:
        raise v.CelEvalError(f"IP Address {text!r} parse error during conversion from "
                             "string: ParseAddr(" + repr(text) + ")") from None


def _parse_cidr(text: Any) -> Cidr:
    try:
        return Cidr(ipaddress.ip_interface(_string(text)))
    except ValueError:
        raise v.CelEvalError(f"network address parse error during conversion from string: "
                             f"{text}") from None


def _ip(target: Any, args: list[Any]) -> Any:
    if isinstance(target, Cidr):
        return target.interface.ip
    return _parse_ip(args[0])


def _succeeds(parse: Callable[[Any], Any]) -> Impl:
    def impl(target: Any, args: list[Any]) -> bool:
        try:
            parse(args[0])
        except v.CelEvalError:
            return False
        return True
    return impl


_fn("ip")(_ip)
_fn("isIP")(_succeeds(_parse_ip))
_fn("cidr")(lambda t, a: _parse_cidr(a[0]))
_fn("isCIDR")(_succeeds(_parse_cidr))
_fn("ip.isCanonical")(lambda t, a: str(_parse_ip(a[0])) == a[0])
_fn("family")(lambda t, a: t.version)
_fn("isUnspecified")(lambda t, a: t.is_unspecified)
_fn("isLoopback")(lambda t, a: t.is_loopback)
_fn("isLinkLocalMulticast")(lambda t, a: t.is_multicast and t.is_link_local)
_fn("isLinkLocalUnicast")(lambda t, a: t.is_link_local and not t.is_multicast)
_fn("isGlobalUnicast")(lambda t, a: t.is_global and not t.is_multicast)
_fn("prefixLength")(lambda t, a: t.interface.network.prefixlen)
_fn("masked")(lambda t, a: Cidr(ipaddress.ip_interface(str(t.interface.network))))


@_fn("containsIP")
def _contains_ip(target: Any, args: list[Any]) -> Any:
    address = _parse_ip(args[0]) if isinstance(args[0], str) else args[0]
    return address in target.interface.network


@_fn("containsCIDR")
def _contains_cidr(target: Any, args: list[Any]) -> Any:
    other = _parse_cidr(args[0]) if isinstance(args[0], str) else args[0]
    return bool(other.interface.network.subnet_of(target.interface.network))


# --- urls (pkg/cel/library/urls.go) ---
class Url:
    cel_type = "kubernetes.URL"

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts = urlsplit(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Url) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)


def _parse_url(text: Any) -> Url:
    parts = urlsplit(_string(text))
    if not parts.scheme and not text.startswith("/"):
        raise v.CelEvalError(f"URL parse error during conversion from string: parse "
                             f"{text!r}: invalid URI for request")
    return Url(text)


_fn("url")(lambda t, a: _parse_url(a[0]))
_fn("isURL")(_succeeds(_parse_url))
_fn("getScheme")(lambda t, a: t.parts.scheme)
_fn("getHost")(lambda t, a: t.parts.netloc)
_fn("getHostname")(lambda t, a: t.parts.hostname or "")
_fn("getPort")(lambda t, a: str(t.parts.port or ""))
_fn("getEscapedPath")(lambda t, a: t.parts.path)
_fn("getQuery")(lambda t, a: {k: v.ListValue(x) for k, x in parse_qs(t.parts.query).items()})


# --- runtime cost (CostTracker.costCall, library CostEstimator.CallCost) -------------
def actual_size(x: Any) -> int:
    if isinstance(x, (str, bytes, list, dict)):
        return len(x)
    return 1


def _traversal(x: Any) -> int:
    if isinstance(x, (str, bytes)):
        return int(len(x) * 0.1)
    if isinstance(x, list):
        return sum(_traversal(i) for i in x)
    if isinstance(x, dict):
        return sum(_traversal(k) + _traversal(i) for k, i in x.items())
    return 1


def call_cost(name: str, overloads: Sequence[str], args: Sequence[Any], result: Any) -> int:
    """The runtime cost of one call (its arguments are charged separately)."""
    kubernetes = _library_call_cost(name, overloads, args, result)
    if kubernetes is not None:
        return kubernetes
    overload = overloads[0] if len(overloads) == 1 else _runtime_overload(name, args)
    if overload in ("starts_with_string", "ends_with_string", "string_to_bytes",
                    "bytes_to_string", "strings_quote", "string_format"):
        return math.ceil(actual_size(args[0]) * 0.1)
    if overload == "in_list":
        return actual_size(args[1])
    if name in ("_==_", "_!=_") or (name in ("_<_", "_<=_", "_>_", "_>=_")
                                   and isinstance(args[0], (str, bytes))):
        return math.ceil(min(actual_size(args[0]), actual_size(args[1])) * 0.1)
    if overload in ("add_string", "add_bytes"):
        return math.ceil((actual_size(args[0]) + actual_size(args[1])) * 0.1)
    if overload == "matches_string" or (name == "matches" and len(args) == 2):
        return (math.ceil((1 + actual_size(args[0])) * 0.1)
                * math.ceil(actual_size(args[1]) * 0.25))
    if overload == "contains_string":
        return math.ceil(actual_size(args[0]) * 0.1) * math.ceil(actual_size(args[1]) * 0.1)
    return 1


def _runtime_overload(name: str, args: Sequence[Any]) -> str:
    if name == "_+_" and args and isinstance(args[0], str):
        return "add_string"
    if name == "_+_" and args and isinstance(args[0], bytes):
        return "add_bytes"
    if name == "@in" and len(args) == 2 and isinstance(args[1], list):
        return "in_list"
    return ""


def _library_call_cost(name: str, overloads: Sequence[str], args: Sequence[Any],
                       result: Any) -> int | None:
    if name in ("isSorted", "sum", "max", "min", "indexOf", "lastIndexOf"):
        return _traversal(args[0]) if args else 0
    if name in ("url", "lowerAscii", "upperAscii", "substring", "trim", "cidr", "isIP",
                "isCIDR", "quantity", "isQuantity") and args:
        return math.ceil(actual_size(args[0]) * 0.1)
    if name in ("replace", "split") and args:
        return math.ceil(actual_size(args[0]) * 2 * 0.1)
    if name == "join" and args:
        return math.ceil(actual_size(result) * 2 * 0.1)
    if name in ("find", "findAll") and len(args) >= 2:
        return (math.ceil((1 + actual_size(args[0])) * 0.1)
                * math.ceil(actual_size(args[1]) * 0.25))
    if name == "ip" and args:
        return 1 if "cidr_ip" in overloads else math.ceil(actual_size(args[0]) * 0.1)
    if name in NOMINAL_COST_FUNCTIONS:
        return 1
    if name == "_==_" and args and isinstance(args[0], (Quantity, Cidr, Url)):
        return 1
    return None


__all__ = ["LIST_CREATE", "MAP_CREATE", "Quantity", "call", "call_cost", "has_field",
           "select", "unescape"]
