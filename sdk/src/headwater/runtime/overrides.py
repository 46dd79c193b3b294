"""Environment overrides of ``headwater.runtime`` values, for tests and local runs.

Every runtime attribute can be replaced by an environment variable named after its
module and attribute: ``HEADWATER__RUNTIME__FLOW_RUN__NAME`` for ``flow_run.name``,
``HEADWATER__RUNTIME__DEPLOYMENT__PARAMETERS`` for ``deployment.parameters``. Prefect's
spelling (``PREFECT__RUNTIME__FLOW_RUN__NAME``) is read too, so a test suite written for
Prefect keeps working; the Headwater name wins when both are set.

The text is converted to the type the attribute would have had, as Prefect does
(``prefect/runtime/flow_run.py``, ``type_cast``): ``true``/``false`` for booleans,
numbers for ``int`` and ``float``, an ISO 8601 instant for datetimes, and the text
itself for strings and for attributes that are ``None``. Headwater also reads JSON for
list and dict attributes (``tags``, ``parameters``), which Prefect refuses. Text that
does not convert raises ``ValueError`` naming the variable and the expected form.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

PREFIXES = ("HEADWATER__RUNTIME__", "PREFECT__RUNTIME__")
"""Searched in order: the first variable set wins."""


def variable_names(module: str, attr: str) -> list[str]:
    """The variables that override ``<module>.<attr>``, first one winning."""
    suffix = f"{module.upper()}__{attr.upper()}"
    return [prefix + suffix for prefix in PREFIXES]


def lookup(module: str, attr: str) -> tuple[str, str] | None:
    """``(variable, text)`` of the override of ``<module>.<attr>``, or ``None``."""
    for name in variable_names(module, attr):
        text = os.environ.get(name)
        if text is not None:
            return name, text
    return None


def apply(module: str, attr: str, real: Any) -> Any:
    """``real``, or the override of ``<module>.<attr>`` converted to ``real``'s type."""
    found = lookup(module, attr)
    if found is None:
        return real
    name, text = found
    return convert(name, text, real)


def module_getattr(module: str, fields: Mapping[str, Callable[[], Any]]
                   ) -> Callable[[str], Any]:
    """The ``__getattr__`` of runtime module ``module``: each of ``fields`` computed when
    read and overridable; any other name only when an override sets it."""
    def getattr_(attr: str) -> Any:
        field = fields.get(attr)
        if field is None:
            found = lookup(module, attr)
            if found is not None:
                return found[1]
            raise AttributeError(f"headwater.runtime.{module} has no attribute {attr!r}; "
                                 f"available: {', '.join(fields)}")
        return apply(module, attr, field())

    return getattr_


def _parse_datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def convert(name: str, text: str, real: Any) -> Any:
    """``text`` (the value of variable ``name``) as the type of ``real``."""
    if real is None or isinstance(real, str):
        return text
    if isinstance(real, bool):
        return text.strip().lower() == "true"
    expected: str
    try:
        if isinstance(real, int):
            expected = "an integer, e.g. 2"
            return int(text)
        if isinstance(real, float):
            expected = "a number, e.g. 0.5"
            return float(text)
        if isinstance(real, datetime):
            expected = "an ISO 8601 instant, e.g. 2026-12-07T06:00:00Z"
            return _parse_datetime(text)
        if isinstance(real, (list, dict)):
            kind = type(real)
            expected = f"a JSON {'array' if kind is list else 'object'}"
            value = json.loads(text)
            if not isinstance(value, kind):
                raise ValueError(f"got a JSON {type(value).__name__}")
            return value
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={text!r} is not {expected}: "
                         f"{exc}") from None
    raise ValueError(f"environment variable {name} cannot override a value of type "
                     f"{type(real).__name__}; unset it and patch the attribute in your test")
