"""A chain of three Deployments: ingest → transform → dashboards, one date window each.

The flows stand alone; the chaining is declared on the Deployments
(``examples/chain/deployments.yaml``): ``transform`` runs after each Completed run of
``chain-ingest`` with the same ``start_date``/``end_date``, and ``dashboards`` after each
of ``transform`` (docs/triggers.md). A failed run stops the chain there; a backfill of
``chain-ingest`` over three windows gives three transform and three dashboard runs.

Runs offline, one after the other as the triggers would::

    python examples/flows/chain.py
    headwater execute --entrypoint examples/flows/chain.py:ingest \\
        --param start_date=2024-01-01 --param end_date=2024-01-03
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from headwater import flow, get_run_logger, task


def days(start_date: dt.date, end_date: dt.date) -> list[dt.date]:
    """The days of the window ``[start_date, end_date)``."""
    return [start_date + dt.timedelta(days=n) for n in range((end_date - start_date).days)]


@task
def orders_of(day: dt.date) -> int:
    """How many orders the (simulated) source holds for ``day``; the same for the same day."""
    return random.Random(day.toordinal()).randint(20, 40)


@flow
def ingest(start_date: dt.date, end_date: dt.date) -> dict[str, int]:
    """Land the orders of every day from ``start_date`` up to, not including, ``end_date``."""
    landed = {day.isoformat(): orders_of(day) for day in days(start_date, end_date)}
    get_run_logger().info("landed %d orders over %d days", sum(landed.values()), len(landed))
    return landed


@flow
def transform(start_date: dt.date, end_date: dt.date) -> dict[str, Any]:
    """Aggregate the window ingest landed into daily totals."""
    totals = {day.isoformat(): orders_of(day) * 100 for day in days(start_date, end_date)}
    get_run_logger().info("aggregated %s .. %s", start_date, end_date)
    return {"days": len(totals), "revenue_cents": sum(totals.values())}


@flow
def dashboards(start_date: dt.date, end_date: dt.date) -> str:
    """Refresh the sales dashboard for the window, once transform has succeeded."""
    message = f"sales dashboard refreshed for {start_date} .. {end_date}"
    get_run_logger().info(message)
    return message


if __name__ == "__main__":
    window = {"start_date": dt.date(2024, 1, 1), "end_date": dt.date(2024, 1, 3)}
    print(ingest(**window))
    print(transform(**window))
    print(dashboards(**window))
