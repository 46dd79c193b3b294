"""A run's blocks and variables: resolution, the waits it decides, and the pod it shapes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest
from headwater import contract
from headwater_operator import reasons
from headwater_operator.api import Block, FlowRunPhase, parse_resource, variable_object_name
from headwater_operator.flowruns import inputs
from headwater_operator.flowruns.machine import Facts, decide
from headwater_operator.flowruns.render import render_pod
from test_flowrun_builders import T0, at, iso, make_deployment, make_run, make_settings

NS = "data"


def block(name: str, *, data: dict[str, Any] | None = None,
          nested: dict[str, str] | None = None,
          secrets: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": f"mypkg.blocks:{name.title().replace('-', '')}",
                            "data": data or {}}
    if nested:
        spec["blockRefs"] = {field: {"name": ref} for field, ref in nested.items()}
    if secrets:
        spec["secretRefs"] = {field: {"name": secret, "key": key}
                              for field, (secret, key) in secrets.items()}
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Block",
            "metadata": {"name": name, "namespace": NS}, "spec": spec}


WAREHOUSE = block("warehouse", data={"schema": "raw"}, nested={"connector": "sf-creds"},
                  secrets={"token": ("warehouse-block", "token")})
SF_CREDS = block("sf-creds", data={"account": "xy12345"},
                 secrets={"password": ("sf-creds-block", "password")})


def parse_block(body: Mapping[str, Any]) -> Block:
    parsed = parse_resource(body)
    assert isinstance(parsed, Block)
    return parsed


def resolve(roots: list[str], *bodies: dict[str, Any]
            ) -> tuple[list[Block], inputs.Wait | None, list[str]]:
    by_name = {body["metadata"]["name"]: body for body in bodies}
    asked: list[str] = []

    async def lookup(name: str) -> dict[str, Any] | None:
        asked.append(name)
        return by_name.get(name)

    found, wait = asyncio.run(inputs.resolve_blocks(
        roots, lookup, parse_block, namespace=NS, deployment="etl"))
    return found, wait, asked


def test_declared_blocks_and_the_blocks_they_nest_are_resolved_once_each() -> None:
    shared = block("shared", data={"x": 1}, nested={"creds": "sf-creds"})
    found, wait, asked = resolve(["warehouse", "shared"], WAREHOUSE, SF_CREDS, shared)
    assert wait is None
    assert [b.metadata.name for b in found] == ["warehouse", "sf-creds", "shared"]
    assert asked == ["warehouse", "sf-creds", "shared"]  # sf-creds is looked up once


def test_a_missing_declared_block_waits_naming_the_deployment_field_and_fix() -> None:
    _, wait, _ = resolve(["warehouse"])
    assert wait is not None
    assert wait.reason == reasons.BLOCK_NOT_FOUND
    assert wait.message.startswith(
        "Block data/warehouse (Deployment etl spec.blocks) does not exist; create it")
    assert "the run starts when it exists" in wait.message
    assert wait.blocks == {"warehouse"}


def test_a_missing_nested_block_names_the_field_that_nests_it() -> None:
    _, wait, _ = resolve(["warehouse"], WAREHOUSE)
    assert wait is not None
    assert wait.reason == reasons.BLOCK_NOT_FOUND
    assert wait.message.startswith(
        "Block data/sf-creds (Block warehouse spec.blockRefs.connector) does not exist")
    # Woken by the missing block, and by the one naming it (its reference may be fixed).
    assert wait.blocks == {"sf-creds", "warehouse"}


def test_a_cycle_of_nested_blocks_is_named_not_followed() -> None:
    a = block("a", nested={"next": "b"})
    b = block("b", nested={"back": "a"})
    _, wait, asked = resolve(["a"], a, b)
    assert wait is not None
    assert wait.reason == reasons.INVALID_BLOCK
    assert "Block data/a nests itself (a → b → a, spec.blockRefs)" in wait.message
    assert asked == ["a", "b"]


def test_an_invalid_block_waits_with_the_field_the_model_refuses() -> None:
    both = block("warehouse", data={"token": "plain"},
                 secrets={"token": ("warehouse-block", "token")})
    _, wait, _ = resolve(["warehouse"], both)
    assert wait is not None
    assert wait.reason == reasons.INVALID_BLOCK
    assert "field 'token' is in both spec.data and spec.secretRefs" in wait.message


def test_secret_checks_name_the_secret_the_key_and_the_field() -> None:
    found, _, _ = resolve(["warehouse"], WAREHOUSE, SF_CREDS)
    files = inputs.secret_files(found)
    assert [(f.block, f.field, f.secret, f.key, f.path) for f in files] == [
        ("warehouse", "token", "warehouse-block", "token", "warehouse/token"),
        ("sf-creds", "password", "sf-creds-block", "password", "sf-creds/password")]
    missing = inputs.check_secrets(files, {"warehouse-block": {"token"},
                                           "sf-creds-block": None}, namespace=NS)
    assert missing is not None
    assert missing.reason == reasons.BLOCK_SECRET_NOT_FOUND
    assert missing.message.startswith(
        "Secret data/sf-creds-block (Block sf-creds spec.secretRefs.password) does not exist")
    assert missing.secrets == {"sf-creds-block"}
    no_key = inputs.check_secrets(files, {"warehouse-block": {"other"},
                                          "sf-creds-block": {"password"}}, namespace=NS)
    assert no_key is not None
    assert no_key.message.startswith(
        "Secret data/warehouse-block has no key 'token' (Block warehouse "
        "spec.secretRefs.token); add the key")
    assert inputs.check_secrets(files, {"warehouse-block": {"token"},
                                        "sf-creds-block": {"password"}}, namespace=NS) is None


def test_the_block_document_holds_secret_field_names_never_values() -> None:
    document = inputs.block_document(parse_block(WAREHOUSE))
    assert document == {"name": "warehouse", "type": "mypkg.blocks:Warehouse",
                        "data": {"schema": "raw"}, "blocks": {"connector": "sf-creds"},
                        "secrets": ["token"]}


def test_variables_are_handed_over_only_under_their_own_name() -> None:
    def variable(object_name: str, value: Any, name: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"value": value}
        if name is not None:
            spec["name"] = name
        return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Variable",
                "metadata": {"name": object_name, "namespace": NS}, "spec": spec}

    underscored = variable_object_name("last_sync")
    assert underscored.startswith("last-sync-")
    assert underscored != "last-sync"
    bodies = {
        "batch-size": variable("batch-size", 500),
        underscored: variable(underscored, {"since": "2026-01-01"}, name="last_sync"),
        "last-sync": variable("last-sync", "the hyphenated one"),
        variable_object_name("stolen_name"): variable(
            variable_object_name("stolen_name"), "x", name=None),
    }
    values = inputs.resolve_variables(
        ["batch-size", "last_sync", "last-sync", "missing", "stolen_name"], bodies)
    assert values == {"batch-size": 500, "last_sync": {"since": "2026-01-01"},
                      "last-sync": "the hyphenated one"}


# --- the pod -------------------------------------------------------------------------------
RESOLVED = inputs.RunInputs(
    documents={"warehouse": {"name": "warehouse"}, "sf-creds": {"name": "sf-creds"}},
    secret_files=(inputs.SecretFile("warehouse", "token", "warehouse-block", "token"),
                  inputs.SecretFile("sf-creds", "password", "shared", "sf-pw"),
                  inputs.SecretFile("sf-creds", "user", "shared", "sf-user")),
    variables={"batch_size": 500}, declares_blocks=True, declares_variables=True)


def render_with(run_inputs: inputs.RunInputs, **deployment: Any) -> dict[str, Any]:
    run = make_run()
    settings = dataclasses.replace(
        make_settings(run=run, deployment=make_deployment(blocks=["warehouse"],
                                                          **deployment)),
        inputs=run_inputs)
    return render_pod(run, settings, 1, T0)


def test_the_pod_gets_documents_variables_and_one_read_only_file_per_secret_field() -> None:
    pod = render_with(RESOLVED)
    (container,) = pod["spec"]["containers"]
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert json.loads(env[contract.ENV_BLOCKS]) == RESOLVED.documents
    assert env[contract.ENV_BLOCKS_DIR] == contract.BLOCKS_DIR_DEFAULT
    assert json.loads(env[contract.ENV_VARIABLES]) == {"batch_size": 500}
    assert container["volumeMounts"] == [{"name": "headwater-blocks", "readOnly": True,
                                          "mountPath": contract.BLOCKS_DIR_DEFAULT}]
    (volume,) = pod["spec"]["volumes"]
    assert volume == {"name": "headwater-blocks", "projected": {
        "defaultMode": 0o440,
        "sources": [
            {"secret": {"name": "warehouse-block",
                        "items": [{"key": "token", "path": "warehouse/token"}]}},
            {"secret": {"name": "shared", "items": [
                {"key": "sf-pw", "path": "sf-creds/password"},
                {"key": "sf-user", "path": "sf-creds/user"}]}}]}}
    # 0440 files are readable through the pod's fsGroup, whatever user the image runs as.
    assert pod["spec"]["securityContext"]["fsGroup"] == inputs.DEFAULT_FS_GROUP


def test_the_users_volumes_and_fs_group_are_kept_beside_the_blocks() -> None:
    pod = render_with(RESOLVED, runTemplate={
        "podSecurityContext": {"fsGroup": 2000},
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]})
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["scratch", "headwater-blocks"]
    assert [m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]] == [
        "scratch", "headwater-blocks"]
    assert pod["spec"]["securityContext"]["fsGroup"] == 2000
    grouped = render_with(RESOLVED, runTemplate={"podSecurityContext": {"runAsGroup": 3000}})
    assert grouped["spec"]["securityContext"]["fsGroup"] == 3000


def test_a_pod_without_blocks_or_secret_fields_gets_no_volume() -> None:
    plain = render_with(inputs.NO_INPUTS)
    assert "volumes" not in plain["spec"]
    assert "fsGroup" not in plain["spec"]["securityContext"]
    no_secrets = render_with(inputs.RunInputs(documents={"json": {"name": "json"}},
                                              declares_blocks=True))
    env = {var["name"] for var in no_secrets["spec"]["containers"][0]["env"]}
    assert contract.ENV_BLOCKS in env
    assert contract.ENV_VARIABLES not in env
    assert "volumes" not in no_secrets["spec"]


# --- the state machine --------------------------------------------------------------------
WAIT = (reasons.BLOCK_NOT_FOUND, "Block data/warehouse (Deployment etl spec.blocks) ...")


def test_a_run_waiting_for_a_block_gets_no_pod_and_says_why_once() -> None:
    run = make_run()
    held = decide(run, Facts(now=at(1), settings=make_settings(run=run), inputs_wait=WAIT))
    assert held.create_pod is None
    assert (held.status["phase"], held.status["reason"], held.status["message"]) == (
        "Scheduled", *WAIT)
    assert [(e.reason, e.message) for e in held.events] == [WAIT]
    waiting = make_run(status={**held.status})
    again = decide(waiting, Facts(now=at(2), settings=make_settings(run=waiting),
                                  inputs_wait=WAIT))
    assert again.status == {}
    assert again.events == []
    other = (reasons.BLOCK_SECRET_NOT_FOUND, "Secret data/warehouse-block ...")
    moved_on = decide(waiting, Facts(now=at(3), settings=make_settings(run=waiting),
                                     inputs_wait=other))
    assert (moved_on.status["reason"], moved_on.status["message"]) == other
    started = decide(waiting, Facts(now=at(4), settings=make_settings(run=waiting)))
    assert started.create_pod == 1


def test_a_late_run_waiting_for_a_block_shows_late() -> None:
    run = make_run()
    held = decide(run, Facts(now=at(120), settings=make_settings(run=run), inputs_wait=WAIT))
    assert held.status["phase"] == FlowRunPhase.LATE.value
    assert held.status["reason"] == reasons.BLOCK_NOT_FOUND


def test_a_paused_deployment_holds_before_blocks_are_looked_at() -> None:
    run = make_run()
    settings = make_settings(run=run, deployment=make_deployment(paused=True))
    held = decide(run, Facts(now=at(1), settings=settings, inputs_wait=WAIT))
    assert held.status["reason"] == reasons.DEPLOYMENT_PAUSED


@pytest.mark.parametrize("seconds", [71, 90])
def test_a_retry_waits_for_a_block_that_went_missing(seconds: int) -> None:
    status = {"phase": "AwaitingRetry", "attempts": 1, "podName": "run-a-1",
              "reason": "FlowFailed", "nextAttemptTime": iso(at(70)),
              "scheduledTime": iso(T0)}
    run = make_run(status=status, retries=2)
    held = decide(run, Facts(now=at(seconds), settings=make_settings(run=run),
                             inputs_wait=WAIT))
    assert held.create_pod is None
    assert held.status["phase"] == "AwaitingRetry"
    assert held.status["reason"] == reasons.BLOCK_NOT_FOUND
    assert held.status["message"].startswith("attempt 2 waits: Block data/warehouse")
