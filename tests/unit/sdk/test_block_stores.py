"""Block and variable stores (issue #14): which store ``HEADWATER_BLOCK_STORE`` selects,
the mounted store of a flow-run pod (``HEADWATER_BLOCKS``, ``HEADWATER_BLOCKS_DIR``,
``HEADWATER_VARIABLES``), what a pod's own writes do, and store plugins loaded from the
``headwater.stores`` entry-point group."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
import textwrap
from pathlib import Path

import pytest
from headwater.blocks import stores
from headwater.blocks.core import Block
from headwater.blocks.stores import BlockDocument
from headwater.blocks.stores.local import LocalBlockStore, LocalVariableStore
from headwater.blocks.system import Secret, String
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    BlockSecretNotFoundError,
    BlockStoreError,
)
from headwater.variables import Variable
from pydantic import SecretStr
from store_conformance import check_block_store, check_variable_store


@pytest.fixture(autouse=True)
def fresh_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HEADWATER_BLOCK_STORE", "HEADWATER_BLOCKS", "HEADWATER_BLOCKS_DIR",
                 "HEADWATER_VARIABLES", "HEADWATER_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    stores.reset()


class Credentials(Block):
    user: str
    password: SecretStr


class Pipeline(Block):
    target: str
    creds: Credentials


CREDS_TYPE = "test_block_stores:Credentials"
PIPELINE_TYPE = "test_block_stores:Pipeline"


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A flow-run pod's environment as the operator builds it: two blocks (one nesting
    the other), the nested one's secret mounted as a file, and one variable."""
    mount = tmp_path / "mount"
    (mount / "sf-creds").mkdir(parents=True)
    (mount / "sf-creds" / "password").write_text("mounted-pass-1\n")
    monkeypatch.setenv("HEADWATER_BLOCKS", json.dumps({
        "warehouse": {"name": "warehouse", "type": PIPELINE_TYPE,
                      "data": {"target": "raw"}, "blocks": {"creds": "sf-creds"},
                      "secrets": []},
        "sf-creds": {"name": "sf-creds", "type": CREDS_TYPE, "data": {"user": "etl"},
                     "blocks": {}, "secrets": ["password"]},
    }))
    monkeypatch.setenv("HEADWATER_BLOCKS_DIR", str(mount))
    monkeypatch.setenv("HEADWATER_VARIABLES", json.dumps({"batch_size": 500,
                                                          "regions": ["eu", "us"]}))
    return mount


# --- selection ------------------------------------------------------------------------------


def test_auto_off_a_pod_is_the_local_store(headwater_home: Path) -> None:
    current = stores.current()
    assert isinstance(current.blocks, LocalBlockStore)
    assert current.blocks.root == headwater_home / "blocks"
    assert isinstance(current.variables, LocalVariableStore)
    assert current.variables.root == headwater_home / "variables"
    assert stores.current() is current


def test_local_is_local_even_in_a_pod(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_BLOCK_STORE", "local")
    assert isinstance(stores.current().blocks, LocalBlockStore)
    with pytest.raises(BlockNotFoundError):
        Pipeline.load("warehouse")


@pytest.mark.parametrize(("setting", "message"), [
    ("local:x", "'local' takes no argument"),
    (":ns", "empty before ':'"),
    ("s3", "HEADWATER_BLOCK_STORE='s3' names no block store: use auto, local or kubernetes"),
])
def test_bad_settings_are_explained(setting: str, message: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_BLOCK_STORE", setting)
    with pytest.raises(BlockStoreError, match=message):
        stores.current()


def test_kubernetes_without_headwater_operator_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.entry_points

    def without_stores(**params: str) -> importlib.metadata.EntryPoints:
        if params.get("group") == "headwater.stores":
            return importlib.metadata.EntryPoints(())
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", without_stores)
    monkeypatch.setenv("HEADWATER_BLOCK_STORE", "kubernetes")
    with pytest.raises(BlockStoreError) as info:
        String(value="x").save("greeting")
    assert "pip install headwater-operator" in str(info.value)
    assert "'headwater.stores'" in str(info.value)


FAKE_PLUGIN = textwrap.dedent('''
    from pathlib import Path
    from headwater.blocks.stores import Stores
    from headwater.blocks.stores.local import LocalBlockStore, LocalVariableStore

    ROOT = Path(__file__).parent / "plugin-data"
    calls = []

    def factory(argument):
        calls.append(argument)
        root = ROOT / (argument or "default")
        return Stores(blocks=LocalBlockStore(root / "blocks"),
                      variables=LocalVariableStore(root / "variables"))

    def not_stores(argument):
        return "nope"
''')


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution on sys.path that registers store plugins in 'headwater.stores'."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fake_store_plugin.py").write_text(FAKE_PLUGIN)
    info = site / "fake_store_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-store-plugin\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[headwater.stores]\nvault = fake_store_plugin:factory\n"
        "broken = fake_store_plugin:not_stores\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "fake_store_plugin", raising=False)
    return site


def test_a_store_plugin_is_found_by_entry_point_and_given_its_argument(
        plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_BLOCK_STORE", "vault:team-a")
    String(value="kept by the plugin").save("greeting")
    Variable.set("limit", 3)
    import fake_store_plugin  # type: ignore[import-not-found]

    assert fake_store_plugin.calls == ["team-a"]
    data = plugin / "plugin-data" / "team-a"
    assert json.loads((data / "blocks" / "greeting.json").read_text())["data"] == {
        "value": "kept by the plugin"}
    assert json.loads((data / "variables" / "limit.json").read_text())["value"] == 3
    assert String.load("greeting").value == "kept by the plugin"


def test_a_plugin_that_returns_no_stores_is_named(plugin: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_BLOCK_STORE", "broken")
    with pytest.raises(BlockStoreError, match=r"store plugin 'broken' .* returned str"):
        stores.current()


def test_kubernetes_gets_the_namespace_from_the_setting_then_headwater_namespace(
        plugin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.entry_points

    def kubernetes_is_the_fake(**params: str) -> importlib.metadata.EntryPoints:
        if params.get("group") == "headwater.stores":
            return importlib.metadata.EntryPoints((importlib.metadata.EntryPoint(
                name="kubernetes", value="fake_store_plugin:factory",
                group="headwater.stores"),))
        return real(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", kubernetes_is_the_fake)
    import fake_store_plugin

    monkeypatch.setenv("HEADWATER_BLOCK_STORE", "kubernetes:data")
    stores.current()
    monkeypatch.setenv("HEADWATER_BLOCK_STORE", "kubernetes")
    monkeypatch.setenv("HEADWATER_NAMESPACE", "team-b")
    stores.current()
    monkeypatch.delenv("HEADWATER_NAMESPACE")
    stores.current()
    assert fake_store_plugin.calls == ["data", "team-b", None]


# --- the mounted store of a flow-run pod ------------------------------------------------------


def test_a_pod_loads_mounted_blocks_nested_ones_and_secret_files(pod: Path) -> None:
    warehouse = Pipeline.load("warehouse")
    assert warehouse.target == "raw"
    assert warehouse.creds.user == "etl"
    # The file holds exactly what the Secret holds (a trailing newline included).
    assert warehouse.creds.password.get_secret_value() == "mounted-pass-1\n"
    assert type(Block.load("sf-creds")) is Credentials


def test_a_pod_missing_a_block_says_to_declare_it(pod: Path) -> None:
    with pytest.raises(BlockNotFoundError) as info:
        Pipeline.load("other")
    message = str(info.value)
    assert "is neither among the blocks mounted into this pod (HEADWATER_BLOCKS)" in message
    assert "nor in the local store" in message
    assert "declare it in the Deployment's spec.blocks" in message


def test_a_pod_missing_a_secret_file_names_the_file_and_the_secret_ref(pod: Path) -> None:
    (pod / "sf-creds" / "password").unlink()
    with pytest.raises(BlockSecretNotFoundError) as info:
        Pipeline.load("warehouse")
    message = str(info.value)
    assert message.startswith("Pipeline.load('warehouse'): block 'warehouse', field 'creds':")
    assert str(pod / "sf-creds" / "password") in message
    assert "spec.secretRefs.password" in message


def test_a_pod_reads_declared_variables(pod: Path) -> None:
    assert Variable.get("batch_size") == 500
    assert Variable.get("regions") == ["eu", "us"]
    assert Variable.get("other", default="d") == "d"


def test_a_pods_own_writes_are_read_back_and_the_first_warns_they_end_with_the_pod(
        pod: Path, headwater_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(BlockAlreadyExistsError, match="among the blocks mounted"):
        Credentials(user="other", password="p4ss-word").save("sf-creds")
    with caplog.at_level(logging.WARNING, logger="headwater.blocks"):
        Credentials(user="other", password="p4ss-word").save("sf-creds", overwrite=True)
        Variable.set("batch_size", 10, overwrite=True)
    assert Credentials.load("sf-creds").user == "other"
    assert Variable.get("batch_size") == 10
    assert (headwater_home / "blocks" / "sf-creds.json").exists()
    warnings = [r.getMessage() for r in caplog.records if r.name == "headwater.blocks"]
    assert len(warnings) == 2  # once for blocks, once for variables
    assert "ends with this pod" in warnings[0]
    assert "HEADWATER_BLOCK_STORE=kubernetes" in warnings[0]

    Credentials.delete("sf-creds")
    with pytest.raises(BlockNotFoundError):
        Credentials.load("sf-creds")
    assert Variable.unset("regions") is True
    assert Variable.get("regions") is None


def test_the_mounted_store_alone_is_read_only(pod: Path) -> None:
    mounted = stores.current().blocks.mounted  # type: ignore[attr-defined]
    with pytest.raises(BlockStoreError, match="read-only: set HEADWATER_BLOCK_STORE=kube"):
        mounted.write(BlockDocument(name="x", type="m:X", data={}), {}, True)


def test_a_malformed_mounted_document_is_named(pod: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_BLOCKS", json.dumps({"bad": {"name": "bad", "type": "X"}}))
    with pytest.raises(BlockStoreError,
                       match=r"HEADWATER_BLOCKS\['bad'\]: malformed block document: 'type'"):
        Block.load("bad")


def test_secret_load_in_a_pod_still_falls_back_to_injected_values(
        pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_SECRET_LEGACY_TOKEN", "legacy-injected")
    assert Secret.load("legacy-token").get() == "legacy-injected"


# --- the local store --------------------------------------------------------------------------


def test_the_local_stores_keep_the_store_protocols(tmp_path: Path) -> None:
    check_block_store(LocalBlockStore(tmp_path / "blocks"))
    check_variable_store(LocalVariableStore(tmp_path / "variables"))


def test_local_store_lists_documents_and_variables(headwater_home: Path) -> None:
    Credentials(user="u", password="pa55word").save("b-creds")
    String(value="x").save("a-string")
    Variable.set("y", 1)
    Variable.set("x", {"k": "v"})
    current = stores.current()
    assert [doc.name for doc in current.blocks.list()] == ["a-string", "b-creds"]
    assert current.variables.list() == {"x": {"k": "v"}, "y": 1}


def test_a_corrupt_local_file_is_named(headwater_home: Path) -> None:
    (headwater_home / "blocks").mkdir(parents=True)
    (headwater_home / "blocks" / "broken.json").write_text("{not json")
    with pytest.raises(BlockStoreError, match=r"broken.json is not JSON .* fix or delete"):
        String.load("broken")
