"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``): parsing and canonical form.

Follows k8s.io/apimachinery v0.32.9 ``pkg/api/resource/quantity.go``: ``ParseQuantity``
(its regular expression and error values) and ``Quantity.String`` (``CanonicalizeBytes``:
binary suffixes when the value is a whole multiple of 1024ⁿ, otherwise decimal suffixes in
steps of 1000, the exponent form kept for exponent inputs), after the API server's
defaulting rounded the value up to milli-units (core/v1 ``SetDefaults_ResourceList``).
Values are exact (``decimal.Decimal``); the int64 overflow paths of Go's fast
representation are not reproduced.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from typing import Final

SPLIT_RE_STRING: Final = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG: Final = f"quantities must match the regular expression '{SPLIT_RE_STRING}'"
ERR_NUMERIC: Final = "unable to parse numeric part of quantity"
ERR_SUFFIX: Final = "unable to parse quantity's suffix"

_SPLIT_RE: Final = re.compile(r"([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)\Z")
_BINARY: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL: Final = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12,
                   "P": 15, "E": 18}
_DECIMAL_SUFFIX: Final = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_SUFFIX: Final = {exp: suffix for suffix, exp in _BINARY.items()}
_CONTEXT: Final = decimal.Context(prec=60)


class QuantityError(ValueError):
    """A string that is not a quantity; the message is apimachinery's."""


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its exact value and the format its suffix chose."""

    value: decimal.Decimal
    format: str
    """``DecimalSI``, ``BinarySI`` or ``DecimalExponent``."""

    def __str__(self) -> str:
        return canonical(self)

    def is_negative(self) -> bool:
        """``Cmp(Quantity{}) < 0``."""
        return self.value < 0

    def milli_value(self) -> int:
        """``MilliValue``: the value in thousandths, rounded up."""
        return int((self.value * 1000).to_integral_value(rounding=decimal.ROUND_CEILING))


def parse(text: str) -> Quantity:
    """``ParseQuantity`` followed by the milli-scale round-up of defaulting."""
    if not text:
        raise QuantityError("quantities must match the regular expression "
                            f"'{SPLIT_RE_STRING}'")
    match = _SPLIT_RE.match(text.strip())
    if match is None:
        raise QuantityError(ERR_FORMAT_WRONG)
    number, suffix = match.groups()
    try:
        mantissa = decimal.Decimal(number, context=_CONTEXT)
    except decimal.InvalidOperation as exc:
        raise QuantityError(ERR_NUMERIC) from exc
    if suffix in _BINARY:
        value, fmt = mantissa * (2 ** _BINARY[suffix]), "BinarySI"
    elif suffix in _DECIMAL:
        value, fmt = mantissa.scaleb(_DECIMAL[suffix], context=_CONTEXT), "DecimalSI"
    elif re.fullmatch(r"[eE][-+]?[0-9]+", suffix):
        value, fmt = mantissa.scaleb(int(suffix[1:]), context=_CONTEXT), "DecimalExponent"
    else:
        raise QuantityError(ERR_SUFFIX)
    rounded = (value * 1000).to_integral_value(rounding=decimal.ROUND_CEILING) / 1000
    return Quantity(rounded, fmt)


def canonical(quantity: Quantity) -> str:
    """``Quantity.String()``."""
    value = quantity.value
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if quantity.format == "BinarySI" and magnitude == magnitude.to_integral_value():
        whole = int(magnitude)
        exponent = 0
        while exponent < 60 and whole % 1024 == 0 and whole >= 1024:
            whole //= 1024
            exponent += 10
        if exponent:
            return f"{sign}{whole}{_BINARY_SUFFIX[exponent]}"
        if whole < 1024:
            return f"{sign}{whole}"
    # Decimal: the smallest power-of-1000 unit that keeps the mantissa whole, then
    # trailing thousands folded into a larger suffix (1000 -> 1k, 1500 -> 1500).
    exponent = next((e for e in (-9, -6, -3) if _whole(magnitude.scaleb(-e))), 0)
    mantissa = int(magnitude.scaleb(-exponent))
    while mantissa and mantissa % 1000 == 0 and exponent < 18:
        mantissa //= 1000
        exponent += 3
    if quantity.format == "DecimalExponent":
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{mantissa}{_DECIMAL_SUFFIX[exponent]}"


def _whole(value: decimal.Decimal) -> bool:
    return value == value.to_integral_value()


__all__ = ["ERR_FORMAT_WRONG", "Quantity", "QuantityError", "canonical", "parse"]
