"""The flow of tests/api/test_run_store.py: every part a run record holds, in one run.

Three tasks (``extract`` fails its first attempt and is retried, ``transform`` is cached
and hit again by the subflow, ``load`` materializes an asset), a subflow (``report``), two
artifacts, and log lines from the flow, the tasks and the subflow.
"""

from __future__ import annotations

from typing import Any

from headwater import flow, get_run_logger, task
from headwater.artifacts import create_markdown_artifact, create_table_artifact
from headwater.assets import add_asset_metadata, materialize

ASSET = "s3://lake/marts/daily-orders"
_attempts: list[str] = []


@task(retries=1)
def extract(day: str) -> list[dict[str, Any]]:
    """Fails once (the source is "not ready"), then returns the day's orders."""
    _attempts.append(day)
    if len(_attempts) == 1:
        raise ConnectionError(f"orders for {day} are not exported yet")
    get_run_logger().info("extracted 3 orders for %s", day)
    return [{"id": i, "day": day, "amount": 10 * i} for i in (1, 2, 3)]


@task(persist_result=True, cache_key_fn=lambda ctx, params: f"totals-{params['orders'][0]['day']}")
def transform(orders: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals per day; the subflow's second call is a cache hit."""
    get_run_logger().info("transforming %d orders", len(orders))
    return {"day": orders[0]["day"], "total": sum(o["amount"] for o in orders)}


@materialize(ASSET)
def load(totals: dict[str, Any]) -> dict[str, Any]:
    """Writes the daily totals (the asset)."""
    add_asset_metadata(ASSET, {"total": totals["total"]})
    get_run_logger().info("loaded totals for %s", totals["day"])
    return totals


@flow
def report(orders: list[dict[str, Any]]) -> int:
    """The subflow: reuses the cached totals and publishes a table."""
    totals = transform(orders)
    create_table_artifact([{"day": totals["day"], "total": totals["total"]}],
                          key="daily-totals", description="Totals per day")
    get_run_logger().info("report ready")
    return int(totals["total"])


@flow(log_prints=True)
def pipeline(day: str = "2026-12-01") -> int:
    """Extract, transform, load, then the report subflow and a markdown summary."""
    orders = extract(day)
    load(transform(orders))
    total = report(orders)
    create_markdown_artifact(f"# Orders {day}\n\nTotal: **{total}**", key="orders-summary")
    print(f"pipeline done for {day}")
    return total
