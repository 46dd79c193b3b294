"""Fixtures for the headwater-dbt tests: the `shop` dbt project copied into a temporary
folder with a DuckDB profile, its raw tables loaded with Python (as a flow's ingestion
task would), and each test's own HEADWATER_HOME. Real dbt-core and dbt-duckdb, no mocks."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import isolated_home
import pytest
from headwater import engine, runstore

headwater_home = isolated_home.headwater_home  # autouse: each test's own HEADWATER_HOME

SHOP = Path(__file__).parent / "shop"
ORDERS = [  # order_id, customer_id, order_date, amount
    (1, 1, "2026-03-01", 10.0),
    (2, 2, "2026-03-02", 20.0),
    (3, 1, "2026-03-02", 7.5),
    (4, 3, "2026-03-03", 12.0),
    (5, 2, "2026-03-04", 3.0),
]


def make_shop(folder: Path, *, negative_amount: bool = False, payments: bool = True) -> Path:
    """A copy of the shop project in ``folder`` with its warehouse loaded: ``raw.orders``
    (one negative amount when asked: the singular test fails) and ``raw.payments`` (left
    out when asked: the payments_summary model fails)."""
    project = folder / "shop"
    shutil.copytree(SHOP, project)
    warehouse = project / "shop.duckdb"
    (project / "profiles.yml").write_text(
        "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{warehouse}'\n      threads: 4\n")
    rows = list(ORDERS)
    if negative_amount:
        rows[1] = (2, 2, "2026-03-02", -20.0)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.orders (order_id integer, customer_id integer, "
                    "order_date varchar, amount double, loaded_at timestamp)")
        # Loaded two days ago: `dbt source freshness` warns (after 1 day), no error.
        con.executemany("insert into raw.orders values (?, ?, ?, ?, "
                        "current_timestamp::timestamp - interval 2 day)", rows)
        if payments:
            con.execute("create table raw.payments as select 1 as payment_id")
    return project


def query(project: Path, sql: str) -> list[tuple[Any, ...]]:
    # Not read_only: dbt-duckdb keeps its connection to the file open in this process, and
    # DuckDB refuses a second one with a different configuration.
    with duckdb.connect(str(project / "shop.duckdb")) as con:
        return con.execute(sql).fetchall()


def last_record() -> dict[str, Any]:
    """The record of the last root flow run (the SDK wrote it to this test's home)."""
    recorder = engine.LAST_RUN_TREE[0].recorder
    assert recorder is not None, "the run wrote no record"
    return runstore.read_record(recorder.location.url)


@pytest.fixture
def fresh_shop(tmp_path: Path) -> Path:
    """A shop whose first build fails: a model over a missing table, a failing test."""
    return make_shop(tmp_path, negative_amount=True, payments=False)


@pytest.fixture(scope="module")
def clean_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shop whose build succeeds (shared by a module's tests: they only read it, or
    rebuild one windowed model)."""
    return make_shop(tmp_path_factory.mktemp("clean"))
