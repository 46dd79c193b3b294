"""Custom blocks in the style of the seed tutorial's ``SnowflakeConnector`` and
``SnowflakePandas``: a credentials block with a ``SecretStr`` and a block that nests it
and carries read/write methods. The "warehouse" is a SQLite file whose ``_users`` table
holds a SHA-256 of each user's password, so wrong credentials really fail.

Written as for Prefect 3, with only the imports changed
(``prefect.blocks.core`` → ``headwater.blocks.core``).
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from headwater.blocks.core import Block
from pydantic import Field, SecretStr


def create_warehouse(path: str, user: str, password: str) -> None:
    """Make an empty warehouse that admits ``user`` with ``password``."""
    with sqlite3.connect(path) as connection:
        connection.execute("create table if not exists _users (user text primary key, "
                           "password_sha256 text)")
        connection.execute("insert or replace into _users values (?, ?)",
                           (user, hashlib.sha256(password.encode()).hexdigest()))


class WarehouseConnector(Block):
    """Credentials for the warehouse."""

    _block_type_name = "Warehouse Connector"

    database: str = Field(description="Path of the warehouse file.")
    user: str
    password: SecretStr

    def get_connection(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.database)
        row = connection.execute("select password_sha256 from _users where user = ?",
                                 (self.user,)).fetchone()
        digest = hashlib.sha256(self.password.get_secret_value().encode()).hexdigest()
        if row is None or row[0] != digest:
            connection.close()
            raise PermissionError(f"authentication failed for user {self.user!r}")
        return connection


class WarehouseTables(Block):
    """Reads and writes tables of one schema, through a nested connector block."""

    _block_type_name = "Warehouse Tables"

    connector: WarehouseConnector
    table_prefix: str = "raw_"

    def write(self, rows: list[dict[str, Any]], table: str) -> int:
        if not rows:
            return 0
        name = self.table_prefix + table
        columns = list(rows[0])
        with self.connector.get_connection() as connection:
            connection.execute(f"create table if not exists {name} ({', '.join(columns)})")
            connection.executemany(
                f"insert into {name} values ({', '.join('?' for _ in columns)})",
                [tuple(row[c] for c in columns) for row in rows])
        return len(rows)

    def read(self, query: str, parameters: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.connector.get_connection() as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(query.format(prefix=self.table_prefix),
                                      parameters).fetchall()
        return [dict(row) for row in rows]
