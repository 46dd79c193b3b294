"""What every block and variable store must do (the protocols of
:mod:`headwater.blocks.stores`), as two functions any store's tests call on an empty
store: the local store's (tests/unit/sdk/test_block_stores.py) and the Kubernetes
store's run the same checks."""

from __future__ import annotations

import pytest
from headwater.blocks.stores import MISSING, BlockDocument, BlockStore, VariableStore
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    BlockSecretNotFoundError,
    VariableAlreadyExistsError,
)


def check_block_store(store: BlockStore) -> None:
    """Exercise ``store`` (empty at the start; empty again at the end)."""
    assert store.description
    assert store.list() == []
    with pytest.raises(BlockNotFoundError) as missing:
        store.read("warehouse")
    assert missing.value.name == "warehouse"
    assert "'warehouse'" in str(missing.value)

    creds = BlockDocument(name="sf-creds", type="pkg.blocks:Creds",
                          data={"user": "etl", "port": 5432, "tags": ["a"]},
                          secrets=("password", "token"))
    store.write(creds, {"password": "p4ss word\n", "token": "t0ken"}, overwrite=False)
    warehouse = BlockDocument(name="warehouse", type="pkg.blocks:Warehouse",
                              data={"schema": "raw", "nothing": None},
                              blocks={"connector": "sf-creds"})
    store.write(warehouse, {}, overwrite=False)
    assert store.read("sf-creds") == creds
    assert store.read("warehouse") == warehouse
    assert store.read_secret("sf-creds", "password") == "p4ss word\n"  # exactly as written
    assert [doc.name for doc in store.list()] == ["sf-creds", "warehouse"]

    with pytest.raises(BlockAlreadyExistsError, match="overwrite=True"):
        store.write(creds, {"password": "other", "token": "other"}, overwrite=False)
    assert store.read_secret("sf-creds", "password") == "p4ss word\n"

    # Overwriting replaces the secret values: a field no longer secret has none left.
    rotated = BlockDocument(name="sf-creds", type="pkg.blocks:Creds",
                            data={"user": "etl", "token": None}, secrets=("password",))
    store.write(rotated, {"password": "rotated"}, overwrite=True)
    assert store.read("sf-creds") == rotated
    assert store.read_secret("sf-creds", "password") == "rotated"
    with pytest.raises(BlockSecretNotFoundError) as no_secret:
        store.read_secret("sf-creds", "token")
    assert (no_secret.value.name, no_secret.value.field) == ("sf-creds", "token")

    store.delete("sf-creds")
    store.delete("warehouse")
    with pytest.raises(BlockNotFoundError):
        store.read("sf-creds")
    with pytest.raises(BlockSecretNotFoundError):
        store.read_secret("sf-creds", "password")
    with pytest.raises(BlockNotFoundError):
        store.delete("sf-creds")
    assert store.list() == []


def check_variable_store(store: VariableStore) -> None:
    """Exercise ``store`` (empty at the start; empty again at the end)."""
    assert store.description
    assert store.list() == {}
    assert store.get("batch_size") is MISSING
    store.set("batch_size", 500, overwrite=False)
    store.set("regions", ["eu", {"us": None}], overwrite=False)
    store.set("nothing", None, overwrite=False)
    assert store.get("batch_size") == 500
    assert store.get("regions") == ["eu", {"us": None}]
    assert store.get("nothing") is None
    with pytest.raises(VariableAlreadyExistsError, match="overwrite=True"):
        store.set("batch_size", 1, overwrite=False)
    store.set("batch_size", 1, overwrite=True)
    assert store.list() == {"batch_size": 1, "nothing": None, "regions": ["eu", {"us": None}]}
    assert store.delete("batch_size") is True
    assert store.delete("batch_size") is False
    assert store.get("batch_size") is MISSING
    store.delete("regions")
    store.delete("nothing")
    assert store.list() == {}
