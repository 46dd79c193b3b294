"""Label and field selectors, parsed and matched the way the Kubernetes API server does.

Two users: the emulated API server (``headwater_dev``: the operator relies on server-side
``labelSelector`` and ``fieldSelector`` to watch only Headwater-labelled pods), and the
operator's :mod:`~headwater_operator.informer`, which checks each watched object against
its selector again. Pure functions only.

Supported label syntax (the set-based grammar of ``kubectl -l``): ``k=v``, ``k==v``,
``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists) and ``!k`` (does not exist),
joined by commas. Field selectors support ``path=value``, ``path==value`` and
``path!=value`` on dotted paths such as ``metadata.name`` or ``status.phase``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_BINARY_RE = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


class SelectorError(ValueError):
    """A selector string that the API server would reject with 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    """One clause of a selector: ``key <operator> values``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, value: str | None) -> bool:
        """Whether a label/field whose value is ``value`` (None: absent) satisfies this."""
        if self.operator == "exists":
            return value is not None
        if self.operator == "!exists":
            return value is None
        if self.operator in ("=", "in"):
            return value is not None and value in self.values
        # Kubernetes: `k!=v` and `k notin (...)` also match objects without the key.
        return value is None or value not in self.values


def _split_clauses(text: str) -> list[str]:
    """Split on commas that are not inside the parentheses of a set clause."""
    clauses: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            clauses.append(current)
            current = ""
        else:
            current += char
    clauses.append(current)
    return [clause for clause in clauses if clause.strip()]


def _parse_clause(clause: str) -> Requirement:
    if match := _SET_RE.match(clause):
        key, op, raw_values = match.groups()
        values = tuple(v.strip() for v in raw_values.split(",") if v.strip())
        return Requirement(key, "in" if op == "in" else "notin", values)
    if match := _BINARY_RE.match(clause):
        key, op, value = match.groups()
        return Requirement(key, "!=" if op == "!=" else "=", (value,))
    if match := _EXISTS_RE.match(clause):
        bang, key = match.groups()
        return Requirement(key, "!exists" if bang else "exists")
    raise SelectorError(f"unable to parse selector requirement {clause.strip()!r}")


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a ``labelSelector`` query parameter; empty or None selects everything."""
    if not text:
        return ()
    return tuple(_parse_clause(clause) for clause in _split_clauses(text))


def parse_field_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a ``fieldSelector`` query parameter (equality-based clauses only)."""
    requirements = parse_label_selector(text)
    for requirement in requirements:
        if requirement.operator not in ("=", "!="):
            raise SelectorError(
                f"field selector {requirement.key!r} uses {requirement.operator!r}; "
                "only '=', '==' and '!=' are supported for fields"
            )
    return requirements


def labels_match(requirements: Sequence[Requirement], labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy every requirement (an empty selector matches all)."""
    labels = labels or {}
    return all(req.matches(labels.get(req.key)) for req in requirements)


def _field_value(obj: Mapping[str, Any], path: str) -> str | None:
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    if current is None:
        return None
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


def fields_match(requirements: Sequence[Requirement], obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` satisfies every field requirement.

    Unlike labels, a missing field compares as the empty string, as on the API server.
    """
    return all(req.matches(_field_value(obj, req.key) or "") for req in requirements)


def format_label_selector(labels: Mapping[str, str]) -> str:
    """Render an equality selector for ``labels`` (the inverse of parsing ``k=v,...``)."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
