"""A flow that loads a block nesting a credentials block, and reads a Variable, in a pod.

Run by the sandbox's process kubelet (tests/api/test_blocks_sandbox.py) from the blocks
and variables the operator gave its pod. It fails unless the password it loaded hashes
to ``password_sha256`` and the Variable has the value expected, and it logs the password
(which must come out masked: a loaded secret is registered for redaction).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from headwater import flow, get_run_logger
from headwater.blocks.core import Block
from headwater.variables import Variable
from pydantic import SecretStr


class Credentials(Block):
    """Who the flow connects as."""

    user: str
    password: SecretStr


class Warehouse(Block):
    """Where the flow writes, through nested credentials."""

    database: str
    credentials: Credentials


@flow(name="warehouse-check")
def warehouse_check(password_sha256: str, threshold: int) -> dict[str, Any]:
    warehouse = Warehouse.load("warehouse")
    password = warehouse.credentials.password.get_secret_value()
    logger = get_run_logger()
    logger.info("connecting to %s as %s with password %s", warehouse.database,
                warehouse.credentials.user, password)
    if hashlib.sha256(password.encode()).hexdigest() != password_sha256:
        raise ValueError("the mounted password is not the one saved")
    mounted = Path(os.environ["HEADWATER_BLOCKS_DIR"]) / "wh-creds" / "password"
    logger.info("secret file %s has mode %o", mounted.name, stat.S_IMODE(mounted.stat().st_mode))
    found = Variable.get("big_order_threshold", default=None)
    if found != threshold:
        raise ValueError(f"variable big_order_threshold is {found!r}, not {threshold!r}")
    return {"database": warehouse.database, "user": warehouse.credentials.user,
            "threshold": found}
