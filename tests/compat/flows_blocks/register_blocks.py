"""Register the warehouse blocks, as the seed tutorial's setup script does: the password
comes from a Secret (here injected as HEADWATER_SECRET_WAREHOUSE_PASSWORD, the way
Headwater flows received secrets before blocks), never from a parameter."""

from __future__ import annotations

from headwater import flow, get_run_logger
from headwater.blocks.system import Secret
from warehouse_blocks import WarehouseConnector, WarehouseTables


@flow(name="register-blocks")
def register_blocks(database: str, user: str = "etl") -> str:
    password = Secret.load("warehouse-password").get()
    connector = WarehouseConnector(database=database, user=user, password=password)
    connector.save("warehouse-creds", overwrite=True)
    WarehouseTables(connector=connector).save("warehouse", overwrite=True)
    get_run_logger().info("registered the warehouse for %s (password %s)", user, password)
    return "warehouse"


if __name__ == "__main__":
    import sys

    register_blocks(sys.argv[1])
