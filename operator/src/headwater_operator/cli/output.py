"""Rendering: kubectl-style tables for people, JSON and YAML for scripts.

Everything here is pure (objects and a ``now`` in, text out), so the unit tests pin
the exact output users see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import yaml

from headwater_operator import kubetime

Row = Sequence[str]


def render_table(headers: Row, rows: Sequence[Row]) -> str:
    """Left-aligned columns separated by three spaces, like ``kubectl get``.

    An empty ``rows`` renders nothing (callers print "No … found." themselves, to stderr).
    """
    if not rows:
        return ""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows,
                                                                        strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def render_data(data: Any, fmt: str) -> str:
    """``data`` as indented JSON or block-style YAML (keys in their original order)."""
    if fmt == "json":
        return json.dumps(data, indent=2, default=str) + "\n"
    if fmt == "yaml":
        text: str = yaml.safe_dump(data, sort_keys=False, default_flow_style=False,
                                   allow_unicode=True)
        return text
    raise ValueError(f"unknown output format {fmt!r}; use table, json or yaml")


def as_list(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A ``List`` object, the shape ``kubectl get -o json`` prints for several objects."""
    return {"apiVersion": "v1", "kind": "List", "items": [dict(item) for item in items]}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp from an object, or None when absent or malformed (a table
    cell says ``<unknown>`` rather than failing the command)."""
    if not value or not isinstance(value, str):
        return None
    try:
        return kubetime.parse_time(value)
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """``45s``, ``3m12s``, ``5h4m``, ``12d``: kubectl's compact style, two units at most."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days >= 10:
        return f"{days}d"
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def age(value: Any, now: datetime) -> str:
    """How long ago the timestamp ``value`` was (``<unknown>`` when absent)."""
    moment = parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration((now - moment).total_seconds())


def relative(value: Any, now: datetime) -> str:
    """``5m ago`` / ``in 5m`` for a timestamp, ``<none>`` when absent."""
    moment = parse_time(value)
    if moment is None:
        return "<none>"
    delta = (moment - now).total_seconds()
    return f"in {human_duration(delta)}" if delta > 0 else f"{human_duration(-delta)} ago"


def or_none(value: Any) -> str:
    """``<none>`` for missing values, like kubectl."""
    if value is None or value in ("", [], {}):
        return "<none>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def counts(mapping: Mapping[str, Any] | None) -> str:
    """``Completed=9 Failed=1`` (sorted by state name), ``<none>`` when empty."""
    if not mapping:
        return "<none>"
    return " ".join(f"{key}={mapping[key]}" for key in sorted(mapping))
