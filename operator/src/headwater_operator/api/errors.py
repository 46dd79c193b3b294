"""Turning validation failures into messages that name the field and the fix."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class InvalidResourceError(ValueError):
    """A manifest is not a valid Headwater object. ``errors`` holds one line per problem,
    each starting with the field path, e.g. ``spec.concurrency.limit: must be ≥ 1``."""

    def __init__(self, what: str, errors: Sequence[str]) -> None:
        self.what = what
        self.errors = list(errors)
        super().__init__(f"{what} is invalid:\n" + "\n".join(f"  {e}" for e in self.errors))


class FieldValueError(ValueError):
    """Raised by a validator about a field *inside* the value it checks.

    pydantic locates a validator's error at the validated field (``metadata``); this
    carries the sub-field (``name``) so the message points at ``metadata.name``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def field_path(loc: Sequence[int | str]) -> str:
    """Render a location tuple as ``spec.runTemplate.env[0].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; unknown fields are rejected, not ignored)"
    if kind == "missing":
        return "required field is missing"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        symbol = {
            "greater_than_equal": ("≥", "ge"),
            "greater_than": (">", "gt"),
            "less_than_equal": ("≤", "le"),
            "less_than": ("<", "lt"),
        }[kind]
        return f"must be {symbol[0]} {ctx.get(symbol[1])} (got {error['input']!r})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg']} (got {error['input']!r})"


def format_validation_error(exc: ValidationError) -> list[str]:
    """One ``<field path>: <what is wrong>`` line per pydantic error."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, FieldValueError):
            loc = (*loc, cause.field)
        lines.append(f"{field_path(loc)}: {_message(err)}")
    return lines
