"""Reporting flow: reads through the same ``warehouse`` block as the ingestion flow, takes
its threshold from a Variable and keeps the report in a JSON block."""

from __future__ import annotations

from typing import Any

from headwater import flow, get_run_logger
from headwater.blocks.system import JSON
from headwater.variables import Variable
from warehouse_blocks import WarehouseTables


@flow(name="orders-report")
def orders_report() -> dict[str, Any]:
    warehouse = WarehouseTables.load("warehouse")
    threshold = Variable.get("big_order_threshold", default=100)
    totals = warehouse.read("select count(*) as orders, sum(amount) as revenue "
                            "from {prefix}orders")[0]
    big = warehouse.read("select id from {prefix}orders where amount >= ? order by id",
                         (threshold,))
    report = {**totals, "threshold": threshold, "big_orders": [row["id"] for row in big]}
    JSON(value=report).save("last-orders-report", overwrite=True)
    get_run_logger().info("report: %s", report)
    return report


if __name__ == "__main__":
    orders_report()
