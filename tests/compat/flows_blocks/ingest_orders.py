"""Ingestion flow: extract orders and load them through the ``warehouse`` block."""

from __future__ import annotations

from typing import Any

from headwater import flow, get_run_logger, task
from warehouse_blocks import WarehouseTables


@task(retries=1)
def extract(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "customer": f"c{i % 3}", "amount": 25 * i} for i in range(1, count + 1)]


@task
def load(rows: list[dict[str, Any]]) -> int:
    warehouse = WarehouseTables.load("warehouse")
    get_run_logger().info("loading into %r", warehouse)
    return warehouse.write(rows, "orders")


@flow(name="ingest-orders")
def ingest_orders(count: int = 6) -> int:
    written = load(extract(count))
    get_run_logger().info("wrote %d orders", written)
    return written


if __name__ == "__main__":
    ingest_orders()
