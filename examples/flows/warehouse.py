"""Blocks and a Variable: credentials nested in a warehouse block, read in a flow-run pod.

Deployed by ``examples/blocks`` (Blocks, their Secret, a Variable and a Deployment that
declares them); the operator gives the pod the blocks' documents and the password as a
file, and ``Warehouse.load`` reads them (docs/blocks-kubernetes.md). Try it locally, with
the local store::

    python -c 'from examples.flows.warehouse import *; \\
        Warehouse(host="db", database="sales", credentials=WarehouseCredentials(
            user="etl", password="example-only")).save("warehouse")'
    headwater execute --entrypoint examples/flows/warehouse.py:warehouse_report
"""

from __future__ import annotations

from typing import Any

from headwater import flow, get_run_logger
from headwater.blocks.core import Block
from headwater.variables import Variable
from pydantic import SecretStr


class WarehouseCredentials(Block):
    """Who connects: a user and a password (a secret field)."""

    user: str
    password: SecretStr


class Warehouse(Block):
    """Where the data is, and the credentials to reach it (a nested block)."""

    host: str
    database: str
    credentials: WarehouseCredentials

    def url(self) -> str:
        """A connection URL; the password is masked wherever it is logged."""
        creds = self.credentials
        return (f"postgresql://{creds.user}:{creds.password.get_secret_value()}"
                f"@{self.host}/{self.database}")


@flow(name="warehouse-report")
def warehouse_report(table: str = "orders") -> dict[str, Any]:
    """Say what a report of ``table`` would read, and how many rows at most."""
    warehouse = Warehouse.load("warehouse")
    limit = Variable.get("report_row_limit", default=100)
    get_run_logger().info("reading at most %s rows of %s from %s", limit, table,
                          warehouse.url())
    return {"host": warehouse.host, "database": warehouse.database, "table": table,
            "limit": limit}


if __name__ == "__main__":
    warehouse_report()
