"""Blocks (issue #14): Prefect 3's ``Block`` API on the local store, the system blocks,
and secret values that never reach a document, a log, a state, a run record or a
summary. Every test has its own ``HEADWATER_HOME`` (conftest), so the local store is
empty at the start."""

from __future__ import annotations

import asyncio
import json
import secrets as token_source
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from headwater import engine, flow, get_run_logger, task
from headwater.blocks import stores
from headwater.blocks.core import Block, BlockNotSavedError
from headwater.blocks.stores import BlockDocument
from headwater.blocks.system import JSON, DateTime, Secret, String
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    BlockSecretNotFoundError,
    BlockStoreError,
    BlockTypeError,
    BlockValidationError,
    InvalidNameError,
    MissingSecretError,
)
from headwater.logging import setup_logging
from headwater.summary import build_summary, fit_summary
from pydantic import BaseModel, SecretBytes, SecretStr


@pytest.fixture(autouse=True)
def fresh_stores() -> None:
    stores.reset()


class WarehouseCredentials(Block):
    """Credentials for the warehouse."""

    user: str
    password: SecretStr
    role: str = "reader"


class Warehouse(Block):
    _block_type_name = "Warehouse Tables"

    account: str
    connector: WarehouseCredentials
    schema_: str = "raw"


class Settings(BaseModel):
    token: SecretStr


class HidesASecret(Block):
    settings: Settings


class ListOfSecrets(Block):
    tokens: list[SecretStr]


class Binary(Block):
    key: SecretBytes


class OptionalSecret(Block):
    token: SecretStr | None = None


class Counter(Block):
    initialised: int = 0

    def block_initialization(self) -> None:
        self.initialised += 1


def unique_secret() -> str:
    """A value no other test has registered for redaction."""
    return "pw-" + token_source.token_hex(8)


def blocks_dir(home: Path) -> Path:
    return home / "blocks"


# --- save and load ------------------------------------------------------------------------


def test_save_and_load_round_trip_a_nested_block(headwater_home: Path) -> None:
    password = unique_secret()
    warehouse = Warehouse(account="xy12345", schema_="mart",
                          connector=WarehouseCredentials(user="etl", password=password))
    warehouse.save("warehouse")

    loaded = Warehouse.load("warehouse")
    assert loaded.account == "xy12345"
    assert loaded.schema_ == "mart"
    assert loaded.connector.user == "etl"
    assert loaded.connector.password.get_secret_value() == password
    assert loaded._block_document_name == "warehouse"
    assert loaded.connector._block_document_name == "warehouse-connector"

    document = json.loads((blocks_dir(headwater_home) / "warehouse.json").read_text())
    assert document == {"name": "warehouse", "type": "test_blocks:Warehouse",
                        "data": {"account": "xy12345", "schema_": "mart"},
                        "blocks": {"connector": "warehouse-connector"}, "secrets": []}
    nested = json.loads((blocks_dir(headwater_home) / "warehouse-connector.json").read_text())
    assert nested["secrets"] == ["password"]
    assert password not in json.dumps(nested)
    assert nested["data"] == {"user": "etl", "role": "reader"}


def test_secret_values_live_in_a_0600_file_apart(headwater_home: Path) -> None:
    password = unique_secret()
    WarehouseCredentials(user="etl", password=password).save("creds")
    secrets_file = blocks_dir(headwater_home) / "creds.secrets.json"
    assert json.loads(secrets_file.read_text()) == {"password": password}
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert password not in (blocks_dir(headwater_home) / "creds.json").read_text()
    leftovers = [p.name for p in blocks_dir(headwater_home).iterdir()
                 if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_saved_nested_block_is_referenced_not_copied(headwater_home: Path) -> None:
    WarehouseCredentials(user="etl", password=unique_secret()).save("shared-creds")
    creds = WarehouseCredentials.load("shared-creds")
    Warehouse(account="a", connector=creds).save("wh-a")
    Warehouse(account="b", connector=creds).save("wh-b")
    assert not (blocks_dir(headwater_home) / "wh-a-connector.json").exists()

    rotated = unique_secret()
    WarehouseCredentials(user="etl", password=rotated).save("shared-creds", overwrite=True)
    assert Warehouse.load("wh-a").connector.password.get_secret_value() == rotated
    assert Warehouse.load("wh-b").connector.password.get_secret_value() == rotated


def test_save_refuses_an_existing_name_without_overwrite() -> None:
    String(value="one").save("greeting")
    with pytest.raises(BlockAlreadyExistsError) as info:
        String(value="two").save("greeting")
    assert "String.save('greeting')" in str(info.value)
    assert "overwrite=True" in str(info.value)
    assert String.load("greeting").value == "one"
    String(value="two").save("greeting", overwrite=True)
    assert String.load("greeting").value == "two"


def test_save_without_a_name_uses_the_loaded_name() -> None:
    String(value="v1").save("motd")
    block = String.load("motd")
    block.value = "v2"
    block.save(overwrite=True)
    assert String.load("motd").value == "v2"
    with pytest.raises(ValueError, match=r"needs a name.*DNS-1123"):
        String(value="x").save()


def test_concurrent_saves_of_one_name_let_exactly_one_win() -> None:
    import threading

    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def save(i: int) -> None:
        barrier.wait()
        try:
            String(value=str(i)).save("race")
            outcomes.append("saved")
        except BlockAlreadyExistsError:
            outcomes.append("refused")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["saved"]


@pytest.mark.parametrize("name", ["Warehouse", "wh_1", "-wh", "wh-", "a" * 64, "", "a/b"])
def test_block_names_follow_the_dns_label_rule(name: str) -> None:
    with pytest.raises(InvalidNameError, match="DNS-1123 label"):
        String(value="x").save(name)
    with pytest.raises(InvalidNameError, match="DNS-1123 label"):
        String.load(name)


def test_delete_removes_the_block_and_its_secrets(headwater_home: Path) -> None:
    WarehouseCredentials(user="u", password=unique_secret()).save("doomed")
    WarehouseCredentials.delete("doomed")
    assert sorted(p.name for p in blocks_dir(headwater_home).iterdir()
                  if not p.name.startswith(".")) == []
    with pytest.raises(BlockNotFoundError, match=r"WarehouseCredentials.delete\('doomed'\)"):
        WarehouseCredentials.delete("doomed")


def test_delete_on_a_subclass_checks_the_type() -> None:
    String(value="x").save("kept")
    with pytest.raises(BlockTypeError):
        JSON.delete("kept")
    assert String.load("kept").value == "x"
    Block.delete("string/kept")
    with pytest.raises(BlockNotFoundError):
        String.load("kept")


# --- errors that name the block, the field and the fix -------------------------------------


def test_a_missing_block_names_the_store_and_how_to_create_it(headwater_home: Path) -> None:
    with pytest.raises(BlockNotFoundError) as info:
        Warehouse.load("nope")
    message = str(info.value)
    assert message.startswith("Warehouse.load('nope'): block 'nope' is not in the local store")
    assert str(blocks_dir(headwater_home)) in message
    assert ".save('nope')" in message
    assert "HEADWATER_BLOCK_STORE=kubernetes" in message
    assert isinstance(info.value, ValueError)  # Prefect raises ValueError


def test_a_missing_nested_block_names_the_parent_and_the_field() -> None:
    WarehouseCredentials(user="u", password=unique_secret()).save("creds")
    Warehouse(account="a", connector=WarehouseCredentials.load("creds")).save("wh")
    WarehouseCredentials.delete("creds")
    with pytest.raises(BlockNotFoundError) as info:
        Warehouse.load("wh")
    assert str(info.value).startswith(
        "Warehouse.load('wh'): block 'wh', field 'connector': block 'creds' is not in")


def test_a_missing_secret_field_names_the_block_the_field_and_the_fix(
        headwater_home: Path) -> None:
    WarehouseCredentials(user="u", password=unique_secret()).save("creds")
    (blocks_dir(headwater_home) / "creds.secrets.json").unlink()
    with pytest.raises(BlockSecretNotFoundError) as info:
        WarehouseCredentials.load("creds")
    assert info.value.field == "password"
    message = str(info.value)
    assert "block 'creds' has no value for its secret field 'password'" in message
    assert ".save('creds', overwrite=True)" in message


def test_a_field_that_fails_validation_is_named_with_the_fix(headwater_home: Path) -> None:
    store = stores.current().blocks
    store.write(BlockDocument(name="wh", type="test_blocks:WarehouseCredentials",
                              data={"role": 7}, secrets=("password",)),
                {"password": unique_secret()}, overwrite=False)
    with pytest.raises(BlockValidationError) as info:
        WarehouseCredentials.load("wh")
    message = str(info.value)
    assert "block 'wh' (test_blocks:WarehouseCredentials) does not fit" in message
    assert "field 'user': Field required" in message
    assert "field 'role': Input should be a valid string" in message
    assert "WarehouseCredentials(...).save('wh', overwrite=True)" in message
    assert "headwater block create wh --type test_blocks:WarehouseCredentials" in message
    assert isinstance(info.value, RuntimeError)  # Prefect raises RuntimeError


def test_a_nested_block_that_fails_validation_names_its_parent(headwater_home: Path) -> None:
    store = stores.current().blocks
    store.write(BlockDocument(name="creds", type="test_blocks:WarehouseCredentials",
                              data={"user": ["not", "a", "string"]}, secrets=("password",)),
                {"password": unique_secret()}, overwrite=False)
    store.write(BlockDocument(name="wh", type="test_blocks:Warehouse",
                              data={"account": "a"}, blocks={"connector": "creds"}),
                {}, overwrite=False)
    with pytest.raises(BlockValidationError, match=r"^block 'wh', field 'connector': block "
                                                   r"'creds' .* field 'user': Input should"):
        Warehouse.load("wh")


def test_validate_false_loads_what_fits_and_warns() -> None:
    stores.current().blocks.write(
        BlockDocument(name="old", type="test_blocks:WarehouseCredentials",
                      data={"role": "admin"}, secrets=("password",)),
        {"password": unique_secret()}, overwrite=False)
    with pytest.warns(UserWarning, match=r"field 'user': Field required"):
        block = WarehouseCredentials.load("old", validate=False)
    assert block.role == "admin"
    assert block.user is None
    block.user = "etl"
    block.save(overwrite=True)
    assert WarehouseCredentials.load("old").user == "etl"


def test_loading_through_the_wrong_class_names_both_types() -> None:
    String(value="x").save("s")
    with pytest.raises(BlockTypeError) as info:
        JSON.load("s")
    assert "block 's' is a headwater.blocks.system:String, not a " \
           "headwater.blocks.system:JSON" in str(info.value)


def test_a_type_that_cannot_be_imported_says_so() -> None:
    stores.current().blocks.write(
        BlockDocument(name="ghost", type="no_such_package.blocks:Ghost", data={}),
        {}, overwrite=False)
    with pytest.raises(BlockTypeError, match=r"no_such_package.blocks:Ghost, which cannot "
                                             r"be imported .*install the package"):
        Block.load("ghost")


def test_a_cycle_of_nested_blocks_is_an_error() -> None:
    class Node(Block):
        child: Block | None = None

    store = stores.current().blocks
    path = f"{Node.__module__}:{Node.__qualname__}"
    store.write(BlockDocument(name="a", type=path, data={}, blocks={"child": "b"}), {}, False)
    store.write(BlockDocument(name="b", type=path, data={}, blocks={"child": "a"}), {}, False)
    with pytest.raises(BlockStoreError, match="block 'a' refers to itself: a -> b -> a"):
        Node.load("a")


@pytest.mark.parametrize(("block", "hidden"), [
    (HidesASecret(settings=Settings(token=SecretStr("t0ken-value"))), "SecretStr"),
    (ListOfSecrets(tokens=[SecretStr("t0ken-value")]), "SecretStr"),
    (Binary(key=SecretBytes(b"k3y-bytes")), "SecretBytes"),
])
def test_secrets_a_document_cannot_keep_apart_are_refused(block: Block, hidden: str,
                                                          headwater_home: Path) -> None:
    with pytest.raises(BlockTypeError, match=f"holds a {hidden} .* top-level SecretStr"):
        block.save("leaky")
    assert not (blocks_dir(headwater_home) / "leaky.json").exists()


def test_an_unset_optional_secret_is_stored_as_null() -> None:
    OptionalSecret().save("no-token")
    assert OptionalSecret.load("no-token").token is None
    token = unique_secret()
    OptionalSecret(token=token).save("token")
    loaded = OptionalSecret.load("token").token
    assert loaded is not None
    assert loaded.get_secret_value() == token


# --- Block on the base class, and Prefect's class API ---------------------------------------


def test_block_load_on_the_base_class_imports_the_stored_type() -> None:
    JSON(value={"rows": [1, 2]}).save("cfg")
    loaded = Block.load("cfg")
    assert type(loaded) is JSON
    assert loaded.value == {"rows": [1, 2]}
    assert type(Block.load("json/cfg")) is JSON
    with pytest.raises(BlockTypeError, match=r"slug 'json'.*Block.load\('json/cfg'\)"):
        Block.load("string/cfg")


def test_prefect_type_metadata() -> None:
    assert Warehouse.get_block_type_name() == "Warehouse Tables"
    assert Warehouse.get_block_type_slug() == "warehouse-tables"
    assert WarehouseCredentials.get_block_type_slug() == "warehousecredentials"
    assert Secret.get_block_type_slug() == "secret"
    assert DateTime.get_block_type_slug() == "date-time"
    assert WarehouseCredentials.get_description() == "Credentials for the warehouse."
    assert 'WarehouseCredentials.load("BLOCK_NAME")' in WarehouseCredentials.get_code_example()
    assert Block.is_block_class(Warehouse)
    assert not Block.is_block_class(Settings)
    assert Block.annotation_refers_to_block_class(WarehouseCredentials | None)
    assert Warehouse.register_type_and_schema() is None
    with pytest.raises(BlockNotSavedError):
        String(value="x").get_block_placeholder()
    saved = String(value="x")
    saved.save("placeholder")
    assert saved.get_block_placeholder() == "prefect.blocks.string.placeholder"


def test_block_initialization_runs_after_construction_and_load() -> None:
    counter = Counter()
    assert counter.initialised == 1
    counter.save("counter")
    assert Counter.load("counter").initialised == 2  # stored 1, then initialised again


def test_system_blocks_round_trip() -> None:
    when = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    DateTime(value=when).save("cutoff")
    String(value="héllo").save("greeting")
    JSON(value=[{"a": None}, 1.5]).save("payload")
    assert DateTime.load("cutoff").value == when
    assert String.load("greeting").value == "héllo"
    assert JSON.load("payload").value == [{"a": None}, 1.5]


# --- async --------------------------------------------------------------------------------


def test_called_from_async_def_they_return_coroutines_as_in_prefect() -> None:
    async def main() -> tuple[Any, Any]:
        await String(value="async").save("a-block")
        loaded = await String.load("a-block")
        also = await String.aload("a-block")
        await String.adelete("a-block")
        return loaded, also

    loaded, also = asyncio.run(main())
    assert loaded.value == also.value == "async"
    with pytest.raises(BlockNotFoundError):
        String.load("a-block")


def test_a_sync_task_in_an_async_flow_loads_synchronously() -> None:
    String(value="from-sync-task").save("in-loop")

    @task
    def read_it() -> str:
        return String.load("in-loop").value  # runs in the flow's loop thread

    @flow
    async def main() -> str:
        return read_it()

    assert asyncio.run(main()) == "from-sync-task"


# --- Secret -------------------------------------------------------------------------------


def test_secret_block_saved_and_loaded() -> None:
    value = unique_secret()
    Secret(value=value).save("api-key")
    loaded = Secret.load("api-key")
    assert loaded.get() == value
    assert loaded.name == "api-key"
    assert value not in repr(loaded)
    assert value not in str(loaded)


def test_secret_json_values_come_back_as_json() -> None:
    Secret(value={"username": "etl", "password": "s3cr3t-json"}).save("login")
    assert Secret.load("login").get() == {"username": "etl", "password": "s3cr3t-json"}
    from headwater.secrets import redact

    assert redact("password is s3cr3t-json") == "password is ********"


def test_secret_falls_back_to_the_injected_env_var_then_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_SECRET_DB_PASSWORD", "from-env-var")
    (tmp_path / "api-token").write_text("from-file\n")
    monkeypatch.setenv("HEADWATER_SECRETS_DIR", str(tmp_path))
    assert Secret.load("db-password").get() == "from-env-var"
    assert Secret.load("api-token").get() == "from-file"
    assert Secret.load("api-token").name == "api-token"
    monkeypatch.setenv("HEADWATER_SECRET_DB_URL", "injected-not-a-block-name")
    assert Secret.load("DB_URL").get() == "injected-not-a-block-name"


def test_a_saved_secret_block_wins_over_the_injected_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_SECRET_TOKEN", "injected")
    Secret(value="from-the-block").save("token")
    assert Secret.load("token").get() == "from-the-block"


def test_a_missing_secret_names_the_store_the_env_var_and_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_SECRETS_DIR", str(tmp_path))
    with pytest.raises(MissingSecretError) as info:
        Secret.load("nope")
    message = str(info.value)
    assert "no block of that name in the local store" in message
    assert "Secret(value=...).save('nope')" in message
    assert "HEADWATER_SECRET_NOPE" in message
    assert str(tmp_path / "nope") in message
    assert isinstance(info.value, BlockNotFoundError)


def test_headwater_secrets_secret_is_the_block() -> None:
    import headwater
    import headwater.secrets

    assert headwater.secrets.Secret is Secret
    assert headwater.Secret is Secret


# --- secrets never reach a log, a state, the run record or the summary ---------------------


def test_a_blocks_secret_never_reaches_logs_states_record_or_summary(
        headwater_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    password = unique_secret()
    # Written through the store, not Block.save: only load() can have registered it.
    stores.current().blocks.write(
        BlockDocument(name="wh-creds", type="test_blocks:WarehouseCredentials",
                      data={"user": "etl"}, secrets=("password",)),
        {"password": password}, overwrite=False)
    setup_logging(force=True)

    @task
    def connect(creds: WarehouseCredentials) -> None:
        value = creds.password.get_secret_value()
        get_run_logger().info("connecting as %s with %s", creds.user, value)
        raise PermissionError(f"login refused for password {value}")

    @flow
    def leaky() -> None:
        creds = WarehouseCredentials.load("wh-creds")
        get_run_logger().info("loaded %r", creds)
        Warehouse(account="acct", connector=creds).save("wh")
        connect(creds)

    state = leaky(return_state=True)
    assert state.is_failed()
    assert password not in (state.message or "")
    out = capsys.readouterr()
    assert password not in out.out + out.err
    assert "connecting as etl with ********" in out.out
    assert "login refused for password ********" in out.out

    tree = engine.LAST_RUN_TREE[0]
    encoded = fit_summary(build_summary(tree, state))
    assert password not in encoded
    assert "********" in encoded

    assert tree.recorder is not None
    record_root = Path(tree.recorder.location.url)
    written = "".join(p.read_text() for p in record_root.rglob("*") if p.is_file())
    assert "connecting as etl with ********" in written
    assert password not in written

    for path in blocks_dir(headwater_home).glob("*.json"):
        holds = password in path.read_text()
        assert holds == path.name.endswith(".secrets.json"), path.name


def test_block_reprs_and_dumps_mask_secrets() -> None:
    password = unique_secret()
    block = Warehouse(account="a", connector=WarehouseCredentials(user="u", password=password))
    assert password not in repr(block)
    assert password not in str(block)
    assert password not in block.model_dump_json()


def test_a_secret_assigned_without_validation_is_still_kept_apart(
        headwater_home: Path) -> None:
    password = unique_secret()
    block = WarehouseCredentials(user="u", password="placeholder")
    block.password = password  # type: ignore[assignment]  # pydantic does not validate it
    block.save("assigned")
    assert password not in (blocks_dir(headwater_home) / "assigned.json").read_text()
    loaded = WarehouseCredentials.load("assigned")
    assert loaded.password.get_secret_value() == password
