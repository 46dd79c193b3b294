"""Ingestion flow with a date window: the backfill pattern.

A Schedule binds each tick's window ``[previous tick, this tick)`` to
``start_date``/``end_date`` (``windowParameters``); a backfill creates one FlowRun per
past window. ``end_date`` is exclusive, like the window, so consecutive runs cover
consecutive days with no overlap and no gap. Each day is
extracted by a retried task (the fake source fails the first attempt for some days,
deterministically, so the retries are visible) and transformed by a cached task, so
re-running a window reuses the work already done.

Runs offline: the "source system" generates rows deterministically from the date::

    python examples/flows/ingest.py
    headwater execute --entrypoint examples/flows/ingest.py:ingest \\
        --param start_date=2024-01-01 --param end_date=2024-01-08
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from headwater import INPUTS, TASK_SOURCE, flow, get_run_logger, runtime, task
from headwater.artifacts import create_table_artifact


class SourceUnavailable(ConnectionError):
    """The (simulated) source system refused a request."""


def fake_source(day: dt.date) -> list[dict[str, Any]]:
    """Rows the source system holds for ``day``; the same rows for the same day."""
    rng = random.Random(day.toordinal())
    return [
        {"day": day.isoformat(), "order_id": f"{day:%Y%m%d}-{i:03d}",
         "amount_cents": rng.randint(500, 50_000)}
        for i in range(rng.randint(20, 40))
    ]


@task(retries=3, retry_delay_seconds=[0.05, 0.2, 1.0], retry_jitter_factor=0.2,
      task_run_name="extract-{day}")
def extract(day: dt.date) -> list[dict[str, Any]]:
    """Fetch one day of orders; every fifth day fails its first attempt."""
    if day.day % 5 == 0 and runtime.task_run.run_count == 1:
        raise SourceUnavailable(f"source busy for {day}, try again")
    return fake_source(day)


@task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=dt.timedelta(days=7),
      task_run_name="transform-{day}")
def transform(day: dt.date, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate one day's orders (cached: re-running a window reuses it)."""
    total = sum(r["amount_cents"] for r in rows)
    return {"day": day.isoformat(), "orders": len(rows), "revenue": total / 100}


@task
def load(daily: list[dict[str, Any]]) -> dict[str, Any]:
    """Publish the window's totals as a table artifact."""
    create_table_artifact(daily, key="ingest-daily-totals",
                          description="Orders and revenue per day in the window")
    return {"days": len(daily), "orders": sum(d["orders"] for d in daily),
            "revenue": round(sum(d["revenue"] for d in daily), 2)}


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day in [start, end): the end is exclusive, like a schedule window."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


@flow(flow_run_name="ingest-{start_date}-{end_date}")
def ingest(start_date: dt.date, end_date: dt.date) -> dict[str, Any]:
    """Ingest orders for every day from ``start_date`` up to, not including, ``end_date``."""
    if end_date <= start_date:
        raise ValueError(
            f"end_date {end_date} must be after start_date {start_date} (end_date is exclusive)"
        )
    days = days_between(start_date, end_date)
    raw = extract.map(days)
    daily = transform.map(days, raw)
    totals: dict[str, Any] = load(daily)
    get_run_logger().info("Ingested %(orders)d orders over %(days)d days", totals)
    return totals


if __name__ == "__main__":
    ingest(start_date=dt.date(2024, 1, 1), end_date=dt.date(2024, 1, 8))
