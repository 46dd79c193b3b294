"""Blocks and Variables backed by Kubernetes (issue #14): the operator, the store, the CLI.

Against the emulated API server with the real operator: a Deployment that declares
blocks (one nesting another, with a secret field) and variables gives its pods their
documents, values and a projected volume of the secret fields; a run whose blocks, or
their Secrets, are missing waits without a pod and starts when they appear (watch
events, no polling); ``block.save()`` with ``HEADWATER_BLOCK_STORE=kubernetes`` writes
the Block and its owned Secret and ``load`` reads them back; the ``block`` and
``variable`` commands. Throughout, the secret value must appear in no Block, FlowRun,
Event, pod spec or operator log line.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater import contract
from headwater.blocks import stores
from headwater.blocks.core import Block
from headwater.exceptions import BlockAlreadyExistsError
from headwater.variables import Variable
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet
from headwater_operator import blockstore
from headwater_operator import kube as k
from k8s_rbac import Request, Rule, rules_allow, rules_of
from pydantic import SecretStr
from store_conformance import check_block_store, check_variable_store
from store_plugin import registered_store_path

PASSWORD = "pw-3c9e71d0a5b2"
"""The secret: it must turn up nowhere but in the Secret and the pod's mount."""
HW = "headwater.dev/v1alpha1"


def _block(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": HW, "kind": "Block", "metadata": {"name": name}, "spec": spec}


SF_CREDS = _block("sf-creds", type="mypkg.blocks:SnowflakeConnector",
                  data={"account": "xy12345", "user": "etl"},
                  secretRefs={"password": {"name": "sf-creds-block", "key": "password"}})
WAREHOUSE = _block("warehouse", type="mypkg.blocks:SnowflakePandas",
                   data={"schema": "raw"}, blockRefs={"connector": {"name": "sf-creds"}})
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sf-creds-block"},
          "stringData": {"password": PASSWORD}}


async def _etl(kube: k.Kube, namespace: str, **deployment: Any) -> None:
    await kube.create(k.FLOWS, {"metadata": {"name": "etl"}, "spec": {
        "image": "ghcr.io/acme/etl:1", "entrypoint": "etl.flows:ingest"}}, namespace=namespace)
    await kube.create(k.DEPLOYMENTS, {"metadata": {"name": "nightly"}, "spec": {
        "flowRef": {"name": "etl"}, **deployment}}, namespace=namespace)


async def _run(kube: k.Kube, namespace: str, name: str = "r1") -> None:
    await kube.create(k.FLOWRUNS, {"metadata": {"name": name}, "spec": {
        "deploymentRef": {"name": "nightly"}}}, namespace=namespace)


def _env(pod: dict[str, Any]) -> dict[str, str]:
    (container,) = pod["spec"]["containers"]
    return {var["name"]: var.get("value") for var in container["env"]}


def _everything(emulator: BackgroundEmulator, *plurals: str) -> str:
    """Every stored object of ``plurals`` in the default namespace, as JSON text."""
    return json.dumps([emulator.objects(plural, "default") for plural in plurals])


@pytest.fixture
def operator_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record of the operator's loggers, DEBUG included (request it before
    ``operator``, so its start-up is captured too)."""
    caplog.set_level(logging.DEBUG, logger="headwater_operator")
    caplog.set_level(logging.DEBUG, logger="kopf")
    return caplog


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every message logged while the operator started (setup) and during the test."""
    return "\n".join(f"{record.name} {record.getMessage()} {record.exc_text or ''}"
                     for phase in ("setup", "call") for record in caplog.get_records(phase))


async def test_a_pod_gets_the_declared_blocks_variables_and_secret_files(
    *, operator_logs: pytest.LogCaptureFixture, kube: k.Kube, namespace: str,
    emulator: BackgroundEmulator, operator: OperatorHarness, kubelet: Kubelet, wait_for: Any,
) -> None:
    for resource, body in ((k.SECRETS, SECRET), (k.BLOCKS, SF_CREDS), (k.BLOCKS, WAREHOUSE)):
        await kube.create(resource, body, namespace=namespace)
    await kube.create(k.VARIABLES, blockstore.variable_body("batch_size", 500, namespace),
                      namespace=namespace)
    await kube.create(k.VARIABLES, blockstore.variable_body("batch-size", "other", namespace),
                      namespace=namespace)
    await _etl(kube, namespace, blocks=["warehouse"],
               variables=["batch_size", "not_set_yet"])
    await _run(kube, namespace)

    pod = await kubelet.wait_for_pod("r1-1")
    env = _env(pod)
    assert json.loads(env[contract.ENV_BLOCKS]) == {
        "warehouse": {"name": "warehouse", "type": "mypkg.blocks:SnowflakePandas",
                      "data": {"schema": "raw"}, "blocks": {"connector": "sf-creds"},
                      "secrets": []},
        "sf-creds": {"name": "sf-creds", "type": "mypkg.blocks:SnowflakeConnector",
                     "data": {"account": "xy12345", "user": "etl"}, "blocks": {},
                     "secrets": ["password"]}}
    assert env[contract.ENV_BLOCKS_DIR] == contract.BLOCKS_DIR_DEFAULT
    # batch_size and batch-size are two variables; one never set is left out.
    assert json.loads(env[contract.ENV_VARIABLES]) == {"batch_size": 500}
    (volume,) = pod["spec"]["volumes"]
    assert volume == {"name": "headwater-blocks", "projected": {"defaultMode": 0o440, "sources": [
        {"secret": {"name": "sf-creds-block",
                    "items": [{"key": "password", "path": "sf-creds/password"}]}}]}}
    (mount,) = pod["spec"]["containers"][0]["volumeMounts"]
    assert mount == {"name": "headwater-blocks", "mountPath": contract.BLOCKS_DIR_DEFAULT,
                     "readOnly": True}

    await kubelet.run(pod)
    await kubelet.succeed(pod)
    await wait_for(lambda: (emulator.object("flowruns", "r1") or {}).get(
        "status", {}).get("phase") == "Completed", timeout=10)
    # The value is in the Secret, and nowhere else the API server or the logs hold.
    stored = base64.b64decode(emulator.object("secrets", "sf-creds-block")["data"]["password"])
    assert stored.decode() == PASSWORD
    objects = _everything(emulator, "blocks", "variables", "flowruns", "deployments", "pods",
                          "events")
    assert PASSWORD not in objects
    assert "sf-creds-block" in objects  # the pod names the Secret, never its content
    logged = _logged(operator_logs)
    assert "controllers started" in logged  # captured indeed: the operator's start-up
    assert PASSWORD not in logged


def _status(emulator: BackgroundEmulator, name: str = "r1") -> dict[str, Any]:
    status: dict[str, Any] = (emulator.object("flowruns", name) or {}).get("status") or {}
    return status


async def test_a_run_waits_for_its_blocks_and_secret_then_starts_when_they_appear(
    *, operator_logs: pytest.LogCaptureFixture, kube: k.Kube, namespace: str,
    emulator: BackgroundEmulator, operator: OperatorHarness, kubelet: Kubelet, wait_for: Any,
) -> None:
    await _etl(kube, namespace, blocks=["warehouse"])
    await _run(kube, namespace)

    async def waits_with(reason: str, text: str) -> None:
        await wait_for(lambda: _status(emulator).get("reason") == reason
                       and text in _status(emulator).get("message", ""), timeout=10)
        assert emulator.objects("pods", namespace) == [], "a waiting run has no pod"
        assert _status(emulator)["phase"] == "Scheduled"

    await waits_with("BlockNotFound",
                     "Block default/warehouse (Deployment nightly spec.blocks) does not exist; "
                     "create it")
    await kube.create(k.BLOCKS, WAREHOUSE, namespace=namespace)
    await waits_with("BlockNotFound", "Block default/sf-creds (Block warehouse "
                     "spec.blockRefs.connector) does not exist")
    await kube.create(k.BLOCKS, SF_CREDS, namespace=namespace)
    await waits_with("BlockSecretNotFound", "Secret default/sf-creds-block (Block sf-creds "
                     "spec.secretRefs.password) does not exist")
    await kube.create(k.SECRETS, {"metadata": {"name": "sf-creds-block"},
                                  "stringData": {"user": "etl"}}, namespace=namespace)
    await waits_with("BlockSecretNotFound", "Secret default/sf-creds-block has no key "
                     "'password' (Block sf-creds spec.secretRefs.password)")
    await kube.patch(k.SECRETS, "sf-creds-block", {"stringData": {"password": PASSWORD}},
                     namespace=namespace)

    pod = await kubelet.wait_for_pod("r1-1")
    assert json.loads(_env(pod)[contract.ENV_BLOCKS]).keys() == {"warehouse", "sf-creds"}
    await wait_for(lambda: _status(emulator).get("phase") == "Pending", timeout=10)
    reasons = [event.get("reason") for event in emulator.objects("events", namespace)]
    assert {"BlockNotFound", "BlockSecretNotFound", "PodCreated"} <= set(reasons)
    assert PASSWORD not in _everything(emulator, "flowruns", "events", "blocks", "pods")
    assert PASSWORD not in _logged(operator_logs)


async def test_an_invalid_or_cyclic_block_holds_the_run_naming_the_problem(
    *, kube: k.Kube, namespace: str, emulator: BackgroundEmulator, operator: OperatorHarness,
    kubelet: Kubelet, wait_for: Any,
) -> None:
    # The API server accepts a field in both data and secretRefs (data is free-form), the
    # operator does not; and a block may name one that names it back.
    await kube.create(k.BLOCKS, _block("a", type="m:A", blockRefs={"next": {"name": "b"}}),
                      namespace=namespace)
    await kube.create(k.BLOCKS, _block("b", type="m:B", blockRefs={"back": {"name": "a"}}),
                      namespace=namespace)
    await _etl(kube, namespace, blocks=["a"])
    await _run(kube, namespace)
    await wait_for(lambda: _status(emulator).get("reason") == "InvalidBlock", timeout=10)
    assert "Block default/a nests itself (a → b → a" in _status(emulator)["message"]
    await kube.patch(k.BLOCKS, "b", {"spec": {"blockRefs": None, "data": {"x": 1}}},
                     namespace=namespace)
    await kubelet.wait_for_pod("r1-1")


# --- the store -----------------------------------------------------------------------------
@pytest.fixture
def kubernetes_store(emulator: BackgroundEmulator, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``HEADWATER_BLOCK_STORE=kubernetes`` in this process, the plugin found through the
    entry point operator/pyproject.toml declares."""
    path = registered_store_path(tmp_path / "entry-points")
    if path is not None:
        monkeypatch.syspath_prepend(str(path))
    monkeypatch.setenv(contract.ENV_BLOCK_STORE, "kubernetes")
    for name in (contract.ENV_BLOCKS, contract.ENV_VARIABLES, contract.ENV_NAMESPACE):
        monkeypatch.delenv(name, raising=False)
    stores.reset()
    yield
    stores.reset()


class SnowflakeConnector(Block):
    account: str
    password: SecretStr


class SnowflakePandas(Block):
    database: str
    connector: SnowflakeConnector


def _save_and_load() -> SnowflakePandas:
    creds = SnowflakeConnector(account="xy12345", password=SecretStr(PASSWORD))
    creds.save("sf-creds")
    SnowflakePandas(database="raw", connector=creds).save("warehouse")
    with pytest.raises(BlockAlreadyExistsError, match="overwrite=True"):
        creds.save("sf-creds")
    return SnowflakePandas.load("warehouse")


async def test_block_save_with_the_kubernetes_store_writes_a_block_and_its_owned_secret(
    kube: k.Kube, namespace: str, emulator: BackgroundEmulator, kubernetes_store: None,
    wait_for: Any,
) -> None:
    loaded = await asyncio.to_thread(_save_and_load)
    assert loaded.connector.password.get_secret_value() == PASSWORD
    assert (loaded.database, loaded.connector.account) == ("raw", "xy12345")

    creds = emulator.object("blocks", "sf-creds")
    assert creds["spec"] == {
        "type": f"{__name__}:SnowflakeConnector", "data": {"account": "xy12345"},
        "secretRefs": {"password": {"name": "sf-creds-block", "key": "password"}}}
    assert emulator.object("blocks", "warehouse")["spec"]["blockRefs"] == {
        "connector": {"name": "sf-creds"}}
    secret = emulator.object("secrets", "sf-creds-block")
    assert secret["metadata"]["labels"]["headwater.dev/block"] == "sf-creds"
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Block", "sf-creds", creds["metadata"]["uid"])
    assert base64.b64decode(secret["data"]["password"]).decode() == PASSWORD
    assert PASSWORD not in _everything(emulator, "blocks")

    # Deleting the block deletes its Secret (the garbage collector, by the owner reference).
    await asyncio.to_thread(SnowflakeConnector.delete, "sf-creds")
    await wait_for(lambda: emulator.object("secrets", "sf-creds-block") is None, timeout=10)


def _save_and_load_webhook() -> Block:
    from headwater.blocks.notifications import CustomWebhook

    CustomWebhook(url=f"https://hooks.example.com/{PASSWORD}", auth_header_value=PASSWORD[::-1],
                  headers={"X-Team": "data"},
                  json_body={"text": "{{ subject }}", "tags": ["etl", None]}).save("alerts")
    return Block.load("alerts")


async def test_a_notification_block_keeps_both_secret_fields_in_its_secret(
    kube: k.Kube, namespace: str, emulator: BackgroundEmulator, kubernetes_store: None,
) -> None:
    """A block with two secret fields (issue #15's custom webhook: the URL and the auth
    header) and nested JSON data round-trips through a Block and its Secret."""
    loaded: Any = await asyncio.to_thread(_save_and_load_webhook)
    assert type(loaded).__name__ == "CustomWebhook"
    assert loaded.url.get_secret_value() == f"https://hooks.example.com/{PASSWORD}"
    assert loaded.auth_header_value.get_secret_value() == PASSWORD[::-1]
    assert (loaded.headers, loaded.json_body) == (
        {"X-Team": "data"}, {"text": "{{ subject }}", "tags": ["etl", None]})

    spec = emulator.object("blocks", "alerts")["spec"]
    assert spec["type"] == "headwater.blocks.notifications:CustomWebhook"
    assert spec["secretRefs"] == {
        "url": {"name": "alerts-block", "key": "url"},
        "auth_header_value": {"name": "alerts-block", "key": "auth_header_value"}}
    secret = emulator.object("secrets", "alerts-block")
    assert base64.b64decode(secret["data"]["auth_header_value"]).decode() == PASSWORD[::-1]
    assert PASSWORD not in _everything(emulator, "blocks")
    assert PASSWORD[::-1] not in _everything(emulator, "blocks")


def _documented_pod_role() -> list[Rule]:
    """The Role docs/blocks-kubernetes.md gives a flow-run pod that writes variables."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "blocks-kubernetes.md").read_text(
        encoding="utf-8")
    section = text.split("### Writing from a flow-run pod", 1)[1]
    manifest = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    (role,) = [doc for doc in yaml.safe_load_all(manifest) if doc["kind"] == "Role"]
    return rules_of(role)


async def test_variables_with_the_kubernetes_store_need_only_the_documented_role(
    kube: k.Kube, namespace: str, emulator: BackgroundEmulator, kubernetes_store: None,
) -> None:
    def use() -> tuple[Any, ...]:
        Variable.set("last_sync", {"since": "2026-01-01"})
        Variable.set("last-sync", "hyphenated")
        Variable.set("last_sync", {"since": "2026-02-01"}, overwrite=True)
        found = (Variable.get("last_sync"), Variable.get("last-sync"),
                 Variable.get("missing", default=7))
        Variable.unset("last-sync")
        return found

    mark = emulator.requests.mark()
    assert await asyncio.to_thread(use) == ({"since": "2026-02-01"}, "hyphenated", 7)
    objects = {v["metadata"]["name"]: v["spec"] for v in emulator.objects("variables", namespace)}
    (derived,) = objects
    assert derived.startswith("last-sync-")
    assert objects[derived] == {"name": "last_sync", "value": {"since": "2026-02-01"}}
    # What a flow-run pod's service account must be granted to do the same.
    role = _documented_pod_role()
    calls = [Request(record.verb, record.group, record.resource, namespace=namespace)
             for record in emulator.requests.since(mark)]
    assert {call.verb for call in calls} == {"create", "get", "patch", "delete"}
    assert [str(call) for call in calls if not rules_allow(role, call)] == []


async def test_the_kubernetes_stores_pass_the_store_conformance_checks(
    kube: k.Kube, namespace: str, emulator: BackgroundEmulator,
) -> None:
    client = k.get_blocking_client()
    await asyncio.to_thread(check_block_store,
                            blockstore.KubernetesBlockStore(client, namespace))
    await asyncio.to_thread(check_variable_store,
                            blockstore.KubernetesVariableStore(client, namespace))


# --- the CLI -------------------------------------------------------------------------------
def _invoke(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    from headwater.cli import build_parser
    from headwater_operator.cli.common import Io

    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(list(argv))
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        code = args.func(args)
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


async def cli(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    return await asyncio.to_thread(_invoke, *argv, stdin=stdin)


async def test_block_and_variable_commands(
    kube: k.Kube, namespace: str, emulator: BackgroundEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SF_PASSWORD", PASSWORD)
    created = await cli("block", "create", "sf-creds", "--type", "mypkg.blocks:Connector",
                        "--field", "account=xy12345", "--field", "port=5432",
                        "--secret-from-env", "password=SF_PASSWORD", "--secret", "token",
                        stdin="tok-9f8e\n")
    assert created == (0, "block/sf-creds created in namespace default and Secret "
                          "sf-creds-block (2 secret field(s))\n", "")
    assert (await cli("block", "create", "warehouse", "--type", "mypkg.blocks:Pandas",
                      "--block", "connector=sf-creds", "--field", "schema=raw"))[0] == 0
    again = await cli("block", "create", "warehouse", "--type", "mypkg.blocks:Pandas")
    assert again[0] == 1
    assert "already exists; replace it with --overwrite" in again[2]
    spec = emulator.object("blocks", "sf-creds")["spec"]
    assert spec["data"] == {"account": "xy12345", "port": 5432}
    data = emulator.object("secrets", "sf-creds-block")["data"]
    assert {key: base64.b64decode(value).decode() for key, value in data.items()} == {
        "password": PASSWORD, "token": "tok-9f8e"}

    code, listing, _ = await cli("block", "get")
    assert code == 0
    assert listing.splitlines()[0].split() == ["NAME", "TYPE", "FIELDS", "BLOCKS", "SECRETS",
                                               "AGE"]
    assert "connector=sf-creds" in listing
    assert "password,token" in listing
    code, described, _ = await cli("block", "describe", "sf-creds")
    assert code == 0
    assert "Type:       mypkg.blocks:Connector" in described
    fields = {line.split()[0]: line.split(None, 2)[1:] for line in
              described.split("Fields:\n", 1)[1].splitlines()[1:]}
    assert fields["password"] == ["********", "Secret sf-creds-block key password"]
    assert fields["token"] == ["********", "Secret sf-creds-block key token"]
    assert fields["port"] == ["5432", "spec.data"]
    code, as_json, _ = await cli("block", "get", "sf-creds", "-o", "json")
    assert json.loads(as_json)["spec"]["secretRefs"]["token"]["key"] == "token"
    for output in (listing, described, as_json):
        assert PASSWORD not in output
        assert "tok-9f8e" not in output

    # A secret never comes from the command line: --field is data, and the type is checked.
    bad = await cli("block", "create", "x", "--type", "not a type")
    assert bad[0] == 2
    assert "is not a block type" in bad[2]
    twice = await cli("block", "create", "x", "--type", "m:C", "--field", "a=1",
                      "--secret", "a", stdin="v\n")
    assert twice[0] == 2
    assert "field 'a' is given with --field and with a secret option" in twice[2]

    assert (await cli("variable", "set", "batch_size", "500"))[0] == 0
    assert (await cli("variable", "set", "region", "eu-west-1"))[0] == 0
    assert await cli("variable", "get", "batch_size") == (0, "500\n", "")
    refused = await cli("variable", "set", "batch_size", "1")
    assert refused[0] == 1
    assert "--overwrite" in refused[2]
    assert (await cli("variable", "set", "batch_size", "1", "--overwrite"))[0] == 0
    code, listed, _ = await cli("variable", "ls", "-o", "json")
    assert json.loads(listed) == {"batch_size": 1, "region": "eu-west-1"}
    assert (await cli("variable", "unset", "region"))[0] == 0
    assert (await cli("variable", "get", "region"))[0] == 1

    assert (await cli("block", "delete", "sf-creds"))[0] == 0
    assert emulator.object("blocks", "sf-creds") is None
    missing = await cli("block", "describe", "sf-creds")
    assert missing[0] == 1
    assert "block default/sf-creds not found" in missing[2]
