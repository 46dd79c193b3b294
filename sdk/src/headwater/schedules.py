"""``Cron``, ``Interval`` and ``RRule``: schedules written in a flow file, as in Prefect 3.

A flow file written for Prefect's ``serve()``/``deploy()`` imports these::

    from headwater.schedules import Cron

    if __name__ == "__main__":
        nightly.serve(name="nightly", schedules=[Cron("0 6 * * *", timezone="Europe/Paris")])

Each function returns a :class:`Schedule`, a frozen description with Prefect's fields
that maps onto a Headwater ``Schedule`` (``cron``, ``interval``, ``rrule``,
``anchorTime``, ``timezone``, ``parameters``; ``active=False`` is ``suspend: true``).
Importing them costs nothing at run time, so such a file can be a Flow's entrypoint.

What it must respect: only the shape of an expression is checked here (a cron has five
fields or is a macro such as ``@daily``, an rrule names a ``FREQ``, an interval is
positive, a time zone is known to ``zoneinfo``); the operator's scheduler parses the
expression fully when the Schedule is applied. ``day_or=False`` (a cron's day-of-month
AND day-of-week) has no Headwater equivalent: a Schedule made from it must say so.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import Any

__all__ = ["Cron", "Interval", "RRule", "Schedule"]

_CRON_SHAPE = re.compile(r"^(@[a-z]+|\S+(\s+\S+){4})$")
"""Five fields or a macro: the coarse check the Schedule CRD itself makes."""


def _check_timezone(timezone: str | None) -> None:
    if timezone is None:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {timezone!r} is not an IANA time zone; use a name such "
                         "as 'UTC' or 'America/New_York'") from None


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a deployed flow runs: exactly one of ``interval``, ``cron`` or ``rrule``."""

    interval: timedelta | None = None
    cron: str | None = None
    rrule: str | None = None
    timezone: str | None = None
    anchor_date: datetime | None = None
    """An interval's phase; ``None`` aligns it as a Headwater Schedule without
    ``anchorTime`` does (2000-01-01 00:00 in ``timezone``: ``1h`` on the hour)."""
    day_or: bool = True
    active: bool = True
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    slug: str | None = None

    def __post_init__(self) -> None:
        kinds = [name for name in ("interval", "cron", "rrule") if getattr(self, name)
                 is not None]
        if len(kinds) != 1:
            raise ValueError("a schedule needs exactly one of interval, cron or rrule; got "
                             f"{', '.join(kinds) or 'none'}")
        if self.cron is not None and not _CRON_SHAPE.match(" ".join(self.cron.split())):
            raise ValueError(f"cron {self.cron!r} must have five fields (minute hour "
                             "day-of-month month day-of-week) or be a macro such as '@daily'")
        if self.rrule is not None and "FREQ=" not in self.rrule.upper():
            raise ValueError(f"rrule {self.rrule!r} must be an RFC 5545 rule such as "
                             "'RRULE:FREQ=DAILY;INTERVAL=1'")
        if self.interval is not None and self.interval <= timedelta(0):
            raise ValueError(f"interval must be positive, got {self.interval!r}")
        if self.anchor_date is not None and self.interval is None:
            raise ValueError("anchor_date applies only to an interval schedule")
        _check_timezone(self.timezone)
        if not isinstance(self.parameters, dict):
            raise ValueError("parameters must be a dict of flow parameter names to values")


def Cron(  # noqa: PLR0917 - Prefect's signature, positional as there
    cron: str,
    /,
    timezone: str | None = None,
    day_or: bool = True,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A cron schedule, e.g. ``Cron("0 6 * * 1-5", timezone="Europe/Paris")``."""
    return Schedule(cron=cron, timezone=timezone, day_or=day_or, active=active,
                    parameters=dict(parameters or {}), slug=slug)


def Interval(  # noqa: PLR0917 - Prefect's signature, positional as there
    interval: timedelta | float | int,
    /,
    anchor_date: datetime | None = None,
    timezone: str | None = None,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """A fixed-interval schedule (a number is seconds) phased by ``anchor_date``, e.g.
    ``Interval(timedelta(hours=1))``.

    Without ``anchor_date`` the ticks align as a Schedule without ``anchorTime`` does
    (``1h`` on the hour, ``15m`` on the quarter hour, in ``timezone``), not to the moment
    of the call as in Prefect: manifests generated twice are then identical, as GitOps
    needs.
    """
    if isinstance(interval, bool) or not isinstance(interval, timedelta | int | float):
        raise ValueError(f"interval must be a timedelta or a number of seconds, got "
                         f"{interval!r}")
    if not isinstance(interval, timedelta):
        interval = timedelta(seconds=interval)
    return Schedule(interval=interval, anchor_date=anchor_date, timezone=timezone,
                    active=active, parameters=dict(parameters or {}), slug=slug)


def RRule(
    rrule: str,
    /,
    timezone: str | None = None,
    active: bool = True,
    parameters: dict[str, Any] | None = None,
    slug: str | None = None,
) -> Schedule:
    """An RFC 5545 recurrence, e.g. ``RRule("RRULE:FREQ=WEEKLY;BYDAY=MO,WE")``."""
    return Schedule(rrule=rrule, timezone=timezone, active=active,
                    parameters=dict(parameters or {}), slug=slug)
