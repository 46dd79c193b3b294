"""The jaffle shop end to end (seeds 001 and 004): ingest with Python, dbt build, dashboards.

One run handles one window ``[start_date, end_date)`` — what a Schedule's
``windowParameters`` or a ``headwater backfill`` gives it:

1. ``ingest_raw`` loads the window's raw customers, orders and payments into DuckDB
   (generated deterministically, replaced if already there, so a re-run is idempotent).
   It materializes ``duckdb://jaffle/raw/*``: the same keys headwater-dbt gives the dbt
   sources that read those tables, so lineage runs from Python through dbt.
2. ``dbt build`` (headwater-dbt) runs staging, then marts and their tests; the incremental
   ``orders`` mart gets the window as the ``start_date``/``end_date`` vars. Each dbt node
   is a task run, each model an asset with its upstream lineage, and the node results a
   table artifact.
3. ``refresh_dashboards``, a subflow, maps one task per dashboard; each publishes its
   figures as a table artifact.

    python examples/dbt/jaffle_flow.py            # one window, then prints what to look at
    headwater execute --entrypoint examples/dbt/jaffle_flow.py:jaffle_shop \\
        --param start_date=2026-03-01 --param end_date=2026-03-02

Needs ``pip install 'headwater-dbt[duckdb]'`` (dbt-core and dbt-duckdb). The warehouse file
and dbt's target and log folders go to ``warehouse_dir`` (default: ``$JAFFLE_WAREHOUSE_DIR``,
else ``$HEADWATER_HOME``, else ``~/.headwater``), never into the project folder, which an
image may hold read-only.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path
from typing import Any

from headwater import (
    Asset,
    AssetProperties,
    add_asset_metadata,
    create_table_artifact,
    flow,
    get_run_logger,
    materialize,
    task,
    unmapped,
)

PROJECT = Path(__file__).resolve().parent / "jaffle_shop"
RAW = {name: Asset(f"duckdb://jaffle/raw/{name}",
                   AssetProperties(name=f"Raw {name}", owners=("data-eng",)))
       for name in ("customers", "orders", "payments")}
DASHBOARDS = {
    "revenue": "select order_date, orders, revenue from main.daily_revenue "
               "order by order_date desc limit 14",
    "top-customers": "select first_name, last_name, orders, lifetime_value "
                     "from main.customers order by lifetime_value desc limit 10",
    "order-status": "select status, count(*) as orders from main.orders group by 1 order by 1",
}
CUSTOMERS = 50


def default_warehouse_dir() -> str:
    """``$JAFFLE_WAREHOUSE_DIR``, else ``$HEADWATER_HOME``, else ``~/.headwater``."""
    return (os.environ.get("JAFFLE_WAREHOUSE_DIR") or os.environ.get("HEADWATER_HOME")
            or str(Path.home() / ".headwater"))


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days)]


@materialize(*RAW.values(), refresh_cache=True)
def ingest_raw(start_date: dt.date, end_date: dt.date, warehouse: str) -> dict[str, int]:
    """Load the window's raw rows (deterministic per day) into ``raw.*``, replacing the
    window's rows if a previous run loaded them."""
    import duckdb

    orders: list[tuple[Any, ...]] = []
    payments: list[tuple[Any, ...]] = []
    for day in _days(start_date, end_date):
        rng = random.Random(day.toordinal())
        for n in range(rng.randint(5, 12)):
            order_id = day.toordinal() * 100 + n
            orders.append((order_id, rng.randint(1, CUSTOMERS), day.isoformat(),
                           rng.choice(["placed", "shipped", "completed", "completed",
                                       "returned"])))
            for p in range(rng.randint(1, 2)):
                payments.append((order_id * 10 + p, order_id,
                                 rng.choice(["credit_card", "coupon", "bank_transfer"]),
                                 rng.randint(500, 5000)))
    customers = [(i, f"Customer{i}", f"L{i % 7}") for i in range(1, CUSTOMERS + 1)]
    with duckdb.connect(warehouse) as con:
        con.execute("create schema if not exists raw")
        con.execute("create table if not exists raw.customers "
                    "(id integer primary key, first_name varchar, last_name varchar)")
        con.execute("create table if not exists raw.orders "
                    "(id bigint, user_id integer, order_date varchar, status varchar)")
        con.execute("create table if not exists raw.payments (id bigint, order_id bigint, "
                    "payment_method varchar, amount integer)")
        con.executemany("insert or replace into raw.customers values (?, ?, ?)", customers)
        window = [start_date.isoformat(), end_date.isoformat()]
        con.execute("delete from raw.payments where order_id in (select id from raw.orders "
                    "where order_date >= ? and order_date < ?)", window)
        con.execute("delete from raw.orders where order_date >= ? and order_date < ?", window)
        if orders:
            con.executemany("insert into raw.orders values (?, ?, ?, ?)", orders)
            con.executemany("insert into raw.payments values (?, ?, ?, ?)", payments)
    add_asset_metadata(RAW["orders"], {"rows": len(orders)})
    add_asset_metadata(RAW["payments"], {"rows": len(payments)})
    add_asset_metadata(RAW["customers"], {"rows": len(customers)})
    return {"orders": len(orders), "payments": len(payments)}


def transform(start_date: dt.date, end_date: dt.date, warehouse_dir: str) -> int:
    """``dbt build`` of the jaffle shop for the window; returns the nodes it ran."""
    from headwater_dbt import DbtCoreRunner

    os.environ["JAFFLE_WAREHOUSE_DIR"] = warehouse_dir  # profiles.yml reads it (env_var)
    dbt = DbtCoreRunner(PROJECT, profiles_dir=PROJECT,
                        target_path=Path(warehouse_dir) / "dbt-target",
                        extra_args=["--log-path", str(Path(warehouse_dir) / "dbt-logs")])
    report = dbt.build(start_date=start_date, end_date=end_date)
    return len(report.results)


@task
def refresh_dashboard(name: str, warehouse: str) -> int:
    """Query one dashboard's figures from the marts and publish them as a table."""
    import duckdb

    with duckdb.connect(warehouse) as con:
        cursor = con.execute(DASHBOARDS[name])
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    create_table_artifact(rows, key=f"dashboard-{name}", description=f"Dashboard {name}")
    return len(rows)


@flow
def refresh_dashboards(names: list[str], warehouse: str) -> dict[str, int]:
    """Refresh every dashboard, one mapped task each."""
    counts = refresh_dashboard.map(names, unmapped(warehouse)).result()
    return dict(zip(names, counts, strict=True))


@flow(log_prints=True)
def jaffle_shop(start_date: dt.date, end_date: dt.date,
                warehouse_dir: str | None = None) -> dict[str, Any]:
    """Ingest, transform and report the jaffle shop's orders from ``start_date`` up to,
    not including, ``end_date``."""
    if end_date < start_date:
        raise ValueError(f"end_date {end_date} is before start_date {start_date}")
    folder = warehouse_dir or default_warehouse_dir()
    Path(folder).mkdir(parents=True, exist_ok=True)
    warehouse = str(Path(folder) / "jaffle.duckdb")
    loaded = ingest_raw(start_date, end_date, warehouse)
    nodes = transform(start_date, end_date, folder)
    dashboards = refresh_dashboards(sorted(DASHBOARDS), warehouse)
    get_run_logger().info("Loaded %s, dbt ran %d nodes, refreshed %s", loaded, nodes,
                          dashboards)
    return {"loaded": loaded, "dbt_nodes": nodes, "dashboards": dashboards}


if __name__ == "__main__":
    print(jaffle_shop(dt.date(2026, 3, 1), dt.date(2026, 3, 3)))
    print("Lineage:   headwater lineage duckdb://jaffle/main/orders")
    print("Artifacts: headwater artifacts <run>  (or read them in the run store)")
