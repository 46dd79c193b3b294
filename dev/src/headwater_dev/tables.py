"""Server-side ``Table`` answers, as ``kubectl get`` asks for them.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, …`` and
prints the ``meta.k8s.io/v1`` ``Table`` it gets back; given a plain list it can only show
NAME and AGE. For a custom resource a real API server builds the table from the CRD
version's ``additionalPrinterColumns``:

* the columns are ``Name`` (type ``string``, format ``name``) followed by the CRD's
  columns, in the CRD's order, and nothing else: a CRD that wants an ``Age`` column
  declares one (ours do). Only a CRD that declares no columns at all gets the default
  ``Age`` (``.metadata.creationTimestamp``, type ``date``);
* each cell is its column's JSONPath evaluated on the object; no result is ``None``
  (kubectl prints ``<none>``). ``integer``, ``number`` and ``boolean`` columns keep JSON
  values of their type (an integer column truncates a float), ``string`` columns print the
  value (JSON for a map or a list), and ``date`` columns are rendered by the server as a
  human-readable age (``75s``, ``4m10s``, ``3h``, ``12d``) relative to the server's clock;
  kubectl prints the cell as it is;
* columns with ``priority`` > 0 are sent too: kubectl shows them only with ``-o wide``.

Simplification: the built-in kinds (pods, events, namespaces, …) get ``Name`` and
``Age`` only. A real API server has a dedicated printer for each of them (READY, STATUS,
RESTARTS, … for pods; LAST SEEN, TYPE, REASON, … for events).

The JSONPath forms understood are those CRDs use in practice: ``.a.b.c``, ``.a[0].b``,
``.a['dotted.key']`` and the filter ``.a[?(@.type=="Ready")].status`` (equality with a
string, number or boolean literal); a path that yields several values shows the first.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headwater_operator.api.resource import AGE_COLUMN, PrinterColumn

from headwater_dev.resources import ResourceSpec
from headwater_dev.store import ApiError, JsonObject, utc_now

TABLE_API_VERSION = "meta.k8s.io/v1"
INCLUDE_OBJECT_VALUES = ("None", "Object", "Metadata")

NAME_COLUMN: JsonObject = {
    "name": "Name", "type": "string", "format": "name", "priority": 0,
    "description": "The object's name, unique among objects of its kind in its namespace.",
}


# --- content negotiation ---------------------------------------------------------------
def _media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """``Accept`` as (media type, parameters), most preferred first (by ``q``, stably)."""
    ranges: list[tuple[float, str, dict[str, str]]] = []
    for item in accept.split(","):
        media_type, *raw_params = (part.strip() for part in item.split(";"))
        if not media_type:
            continue
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            ranges.append((quality, media_type.lower(), params))
    ranges.sort(key=lambda entry: -entry[0])
    return [(media_type, params) for _, media_type, params in ranges]


CONVERSION_TARGETS = ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")
"""The ``as=`` targets the emulator serves, in group version ``meta.k8s.io/v1``."""


def negotiated_conversion(accept: str | None) -> str | None:
    """The conversion the first media range the emulator can serve asks for, if any.

    The emulator serves JSON only: ``application/json``, ``application/*`` and ``*/*``
    are acceptable, plain (no conversion: None) or with ``as=<target>;v=v1;g=meta.k8s.io``
    for a target of :data:`CONVERSION_TARGETS` (a ``Table``, or metadata only: see
    :mod:`headwater_dev.partialmeta`). Other ranges (YAML, protobuf, ``v1beta1``
    targets) are skipped, and a header with nothing acceptable (or none at all) gets the
    plain object or list.
    """
    for media_type, params in _media_ranges(accept or ""):
        if media_type not in ("application/json", "application/*", "*/*"):
            continue
        wanted = params.get("as")
        if wanted is None:
            return None
        if (wanted in CONVERSION_TARGETS and params.get("v") == "v1"
                and params.get("g") == "meta.k8s.io"):
            return wanted
    return None


def wants_table(accept: str | None) -> bool:
    """Whether ``accept`` asks for a ``v1`` Table (see :func:`negotiated_conversion`)."""
    return negotiated_conversion(accept) == "Table"


# --- JSONPath -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Filter:
    path: tuple[str, ...]
    value: Any


_Step = _Field | _Index | _Filter

_FIELD = re.compile(r"\.([^.\[\]]+)")
_INDEX = re.compile(r"\[(-?\d+)\]")
_QUOTED_KEY = re.compile(r"\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")
_FILTER = re.compile(
    r"\[\?\(\s*@((?:\.[A-Za-z0-9_\-]+)+)\s*==\s*('[^']*'|\"[^\"]*\"|[^)\s]+)\s*\)\]")


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"unsupported literal {text!r} in a JSONPath filter") from exc


@functools.lru_cache(maxsize=256)
def parse_json_path(path: str) -> tuple[_Step, ...]:
    """Compile a printer column's ``jsonPath``; ValueError for a form not understood."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[_Step] = []
    position = 0
    while position < len(text):
        if match := _FIELD.match(text, position):
            steps.append(_Field(match.group(1)))
        elif match := _INDEX.match(text, position):
            steps.append(_Index(int(match.group(1))))
        elif match := _QUOTED_KEY.match(text, position):
            steps.append(_Field(match.group(1) if match.group(1) is not None
                                else match.group(2)))
        elif match := _FILTER.match(text, position):
            steps.append(_Filter(tuple(match.group(1).split(".")[1:]),
                                 _literal(match.group(2))))
        else:
            raise ValueError(f"unsupported JSONPath {path!r} (at {text[position:]!r})")
        position = match.end()
    if not steps:
        raise ValueError(f"empty JSONPath {path!r}")
    return tuple(steps)


def _follow(value: Any, names: Iterable[str]) -> tuple[bool, Any]:
    for name in names:
        if not isinstance(value, Mapping) or name not in value:
            return False, None
        value = value[name]
    return True, value


def evaluate_json_path(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` selects in ``obj`` (empty when nothing matches)."""
    nodes: list[Any] = [obj]
    for step in parse_json_path(path):
        found: list[Any] = []
        for node in nodes:
            if isinstance(step, _Field):
                present, value = _follow(node, (step.name,))
                if present:
                    found.append(value)
            elif isinstance(step, _Index):
                if isinstance(node, list) and -len(node) <= step.index < len(node):
                    found.append(node[step.index])
            elif isinstance(node, list):
                for element in node:
                    present, value = _follow(element, step.path)
                    if present and value == step.value and (
                            isinstance(value, bool) == isinstance(step.value, bool)):
                        found.append(element)
        nodes = found
    return nodes


# --- cells ----------------------------------------------------------------------------
def human_age(seconds: float) -> str:
    """A duration as ``kubectl`` shows ages: ``45s``, ``4m10s``, ``2h5m``, ``3d4h``, ``2y9d``."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    total = round(seconds)
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _age_cell(value: str, now: datetime.datetime) -> str:
    if not value:
        return "<unknown>"
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return "<invalid>"
    if moment.tzinfo is None:
        return "<invalid>"
    return human_age((now - moment).total_seconds())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, separators=(",", ":"))


def cell(column: PrinterColumn, obj: Mapping[str, Any], now: datetime.datetime) -> Any:
    """One cell: the column's JSONPath on ``obj``, typed as the API server types it."""
    results = evaluate_json_path(obj, column.json_path)
    value = results[0] if results else None
    if value is None:
        return None
    kind = column.type
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return _text(value)
    if kind == "integer" and is_number:
        return int(value)
    if kind == "number" and is_number:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return _age_cell(value, now)
    return None


# --- the Table ------------------------------------------------------------------------
def columns_of(spec: ResourceSpec) -> tuple[PrinterColumn, ...]:
    """The columns after ``Name``: the CRD's, or ``Age`` when it declares none."""
    return spec.printer_columns or (AGE_COLUMN,)


def _definition(column: PrinterColumn) -> JsonObject:
    return {"name": column.name, "type": column.type, "format": column.format,
            "description": column.description, "priority": column.priority}


def _row_object(obj: JsonObject, include_object: str) -> JsonObject | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION,
            "metadata": obj.get("metadata") or {}}


def render_table(
    spec: ResourceSpec,
    objects: Sequence[JsonObject],
    *,
    include_object: str = "Metadata",
    list_metadata: Mapping[str, Any] | None = None,
    now: datetime.datetime | None = None,
) -> JsonObject:
    """A ``meta.k8s.io/v1`` ``Table`` of ``objects`` (one row each, in order).

    ``include_object`` is the request's ``includeObject``: ``Metadata`` (the default:
    a ``PartialObjectMetadata`` per row), ``Object`` (the whole object) or ``None`` (no
    ``object``); anything else is a 400. ``list_metadata`` is the list's (or the single
    object's) metadata: its ``resourceVersion`` and ``continue`` are carried over.
    ``now`` (default: the wall clock) is what ``date`` cells are ages relative to.
    """
    if include_object not in INCLUDE_OBJECT_VALUES:
        raise ApiError(400, "BadRequest",
                       f"includeObject {include_object!r} is not one of "
                       f"{', '.join(INCLUDE_OBJECT_VALUES)}")
    moment = now or utc_now()
    columns = columns_of(spec)
    rows: list[JsonObject] = []
    for obj in objects:
        row: JsonObject = {"cells": [(obj.get("metadata") or {}).get("name"),
                                     *(cell(column, obj, moment) for column in columns)]}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    metadata: JsonObject = {key: str(value) for key, value in (list_metadata or {}).items()
                            if key in ("resourceVersion", "continue") and value}
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        "columnDefinitions": [dict(NAME_COLUMN), *(_definition(c) for c in columns)],
        "rows": rows,
    }


__all__ = [
    "AGE_COLUMN",
    "INCLUDE_OBJECT_VALUES",
    "evaluate_json_path",
    "human_age",
    "parse_json_path",
    "render_table",
    "wants_table",
]
