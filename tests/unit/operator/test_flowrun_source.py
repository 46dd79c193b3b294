"""Flow.spec.source: the pod it renders, what the operator reads back, and how it pins."""

from __future__ import annotations

import json
from typing import Any

import pytest
from headwater import contract
from headwater_operator import reasons
from headwater_operator.api import Flow, InvalidResourceError, parse_resource
from headwater_operator.flowruns.machine import Facts, decide
from headwater_operator.flowruns.podfacts import observe_attempt, pod_facts
from headwater_operator.flowruns.render import render_pod, summary_budget
from headwater_operator.flowruns.source import fetched_source
from test_flowrun_builders import T0, at, iso, make_deployment, make_flow, make_pod, make_run
from test_flowrun_builders import make_settings as settings_of

COMMIT_A = "a" * 40
COMMIT_B = "b" * 40
GIT = {"git": {"url": "https://github.com/acme/flows.git", "ref": "main", "path": "flows"}}
RUNNING = {"phase": "Running", "attempts": 1, "podName": "run-a-1",
           "startTime": iso(T0), "scheduledTime": iso(T0)}


def render(source: dict[str, Any], *, status: dict[str, Any] | None = None,
           attempt: int = 1, **deployment: Any) -> dict[str, Any]:
    run = make_run(status=status)
    flow = make_flow(source=source, entrypoint="etl.py:ingest")
    return render_pod(run, settings_of(run=run, flow=flow,
                                       deployment=make_deployment(**deployment)), attempt, T0)


def container(pod: dict[str, Any], name: str, kind: str = "containers") -> dict[str, Any]:
    [found] = [c for c in pod["spec"][kind] if c["name"] == name]
    return found


def env(item: dict[str, Any]) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in item["env"]}


# --- rendering -------------------------------------------------------------------------
def test_a_git_source_adds_an_init_container_that_fetches_into_a_shared_volume() -> None:
    pod = render(GIT, runTemplate={"env": [{"name": "DB", "value": "x"}]})
    init = container(pod, contract.SOURCE_CONTAINER_NAME, "initContainers")
    flow = container(pod, "flow")
    assert init["image"] == flow["image"] == "ghcr.io/acme/etl:1.0"
    assert init["command"] == ["headwater", "fetch-source"]
    assert json.loads(env(init)[contract.ENV_SOURCE]) == GIT
    assert env(init)["DB"] == "x"  # the flow's own env: storage credentials work for both
    assert contract.ENV_PARAMETERS not in env(init)
    assert init["securityContext"] == flow["securityContext"]
    assert init["terminationMessagePath"] == contract.TERMINATION_MESSAGE_PATH
    shared = {"name": "headwater-source", "mountPath": contract.SOURCE_DIR_DEFAULT}
    assert shared in init["volumeMounts"]
    assert shared in flow["volumeMounts"]
    assert {"name": "headwater-source", "emptyDir": {}} in pod["spec"]["volumes"]
    assert flow["workingDir"] == f"{contract.SOURCE_DIR_DEFAULT}/code/flows"
    assert env(flow)[contract.ENV_SOURCE_DIR] == contract.SOURCE_DIR_DEFAULT


def test_credentials_are_mounted_into_the_init_container_only() -> None:
    source = {"git": {**GIT["git"], "credentials": {"secretRef": {"name": "repo"}}}}
    pod = render(source)
    init = container(pod, contract.SOURCE_CONTAINER_NAME, "initContainers")
    assert {"name": "headwater-source-credentials", "readOnly": True,
            "mountPath": contract.SOURCE_CREDENTIALS_DIR_DEFAULT} in init["volumeMounts"]
    assert env(init)[contract.ENV_SOURCE_CREDENTIALS_DIR] == \
        contract.SOURCE_CREDENTIALS_DIR_DEFAULT
    flow = container(pod, "flow")
    assert all(m["name"] != "headwater-source-credentials" for m in flow["volumeMounts"])
    assert {"name": "headwater-source-credentials",
            "secret": {"secretName": "repo"}} in pod["spec"]["volumes"]
    assert "repo" not in json.dumps(env(init))  # the Secret's name is not a value either


def test_user_volumes_stay_and_the_summary_budget_counts_the_init_container() -> None:
    pod = render(GIT, runTemplate={
        "volumes": [{"name": "data", "emptyDir": {}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}]})
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["data", "headwater-source"]
    flow = container(pod, "flow")
    assert [m["mountPath"] for m in flow["volumeMounts"]] == [
        "/data", contract.SOURCE_DIR_DEFAULT]
    budget = int(env(flow)[contract.ENV_SUMMARY_MAX_BYTES])
    assert budget == summary_budget(pod) == contract.termination_message_cap(2 + 2)


def test_a_flow_without_source_renders_no_init_container() -> None:
    run = make_run()
    pod = render_pod(run, settings_of(run=run), 1, T0)
    assert "initContainers" not in pod["spec"]
    assert "workingDir" not in container(pod, "flow")


def test_a_retry_fetches_the_commit_attempt_one_resolved_not_the_branch() -> None:
    pinned = {"url": "https://github.com/acme/flows.git", "ref": "main", "commit": COMMIT_A,
              "path": "flows"}
    pod = render(GIT, status={**RUNNING, "source": pinned}, attempt=2)
    init = container(pod, contract.SOURCE_CONTAINER_NAME, "initContainers")
    assert json.loads(env(init)[contract.ENV_SOURCE]) == {"git": {
        "url": "https://github.com/acme/flows.git", "ref": "main", "commit": COMMIT_A,
        "path": "flows"}}


def test_a_bundle_retry_must_match_the_digest_attempt_one_unpacked() -> None:
    bundle = {"bundle": {"url": "s3://acme-flows/etl.tar.gz"}}
    first = render(bundle)
    init = container(first, contract.SOURCE_CONTAINER_NAME, "initContainers")
    assert json.loads(env(init)[contract.ENV_SOURCE]) == bundle
    assert container(first, "flow")["workingDir"] == f"{contract.SOURCE_DIR_DEFAULT}/code"
    pinned = {"url": "s3://acme-flows/etl.tar.gz", "digest": "sha256:" + "c" * 64}
    retry = render(bundle, status={**RUNNING, "source": pinned}, attempt=2)
    init = container(retry, contract.SOURCE_CONTAINER_NAME, "initContainers")
    assert json.loads(env(init)[contract.ENV_SOURCE]) == {"bundle": {
        "url": "s3://acme-flows/etl.tar.gz", "sha256": "c" * 64}}


# --- validation ------------------------------------------------------------------------
def flow_manifest(source: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
            "metadata": {"name": "etl", "namespace": "ns"},
            "spec": {"image": "ghcr.io/acme/etl:1.0", "entrypoint": "etl.py:ingest",
                     "source": source}}


@pytest.mark.parametrize(("source", "expected"), [
    ({"git": {"url": "https://ci:ghp_x1@github.com/a/b.git", "ref": "v1"}},
     "spec.source.git.url: the URL holds a password or token (https://ci:***@...); put "
     "them in a Secret"),
    ({"git": {"url": "https://ghp_x1@github.com/a/b.git", "ref": "v1"}},
     "spec.source.git.url: the URL holds a user name or token before '@'"),
    ({"bundle": {"url": "https://u:p@example.com/f.tar.gz"}},
     "spec.source.bundle.url: the URL holds a password or token (https://u:***@...); give "
     "the pod storage credentials"),
    ({}, "spec.source: set exactly one of source.git or source.bundle (found neither)"),
    ({"git": {"url": "git@github.com:a/b.git", "ref": "v1", "path": "a/../../b"}},
     "spec.source.git.path: 'a/../../b' must stay inside the repository"),
])
def test_bad_sources_are_refused_naming_the_field_and_the_fix(
        source: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_resource(flow_manifest(source))
    assert any(line.startswith(expected) for line in caught.value.errors), caught.value.errors
    assert "ghp_x1" not in str(caught.value)  # the refusal does not repeat the token


def test_ssh_user_and_scp_like_urls_are_accepted() -> None:
    for url in ("ssh://git@github.com/a/b.git", "git@github.com:a/b.git",
                "file:///srv/git/flows.git"):
        flow = parse_resource(flow_manifest({"git": {"url": url, "ref": "main"}}))
        assert isinstance(flow, Flow)


# --- reading back what the init container fetched ---------------------------------------
def source_pod(exit_code: int, message: str, phase: str = "Pending",
               flow_state: dict[str, Any] | None = None) -> dict[str, Any]:
    pod = make_pod(phase, container=flow_state or {"waiting": {"reason": "PodInitializing"}})
    pod["status"]["initContainerStatuses"] = [{"name": contract.SOURCE_CONTAINER_NAME, "state": {
        "terminated": {"exitCode": exit_code, "message": message,
                       "reason": "Completed" if exit_code == 0 else "Error"}}}]
    return pod


def test_only_a_fetch_record_becomes_status_source() -> None:
    record = {"url": "file:///r.git", "ref": "v1", "commit": COMMIT_A}
    assert fetched_source(json.dumps(record)) == record
    assert fetched_source(json.dumps({"url": "s3://b/f.tar.gz",
                                      "digest": "sha256:" + "d" * 64})) is not None
    assert fetched_source("headwater fetch-source: cannot fetch") is None
    assert fetched_source(json.dumps({"url": "x", "commit": "HEAD"})) is None


def test_the_first_fetch_is_recorded_once_with_an_event() -> None:
    record = {"url": "file:///r.git", "ref": "v1", "commit": COMMIT_A}
    run = make_run(status={"phase": "Pending", "attempts": 1, "podName": "run-a-1"})
    facts = Facts(now=at(1), settings=settings_of(run=run),
                  pod=pod_facts(source_pod(0, json.dumps(record))))
    decision = decide(run, facts)
    assert decision.status["source"] == record
    [event] = decision.events
    assert (event.reason, event.type) == (reasons.SOURCE_RESOLVED, "Normal")
    assert COMMIT_A in event.message
    pinned = make_run(status={"phase": "Pending", "attempts": 2, "podName": "run-a-2",
                              "source": record})
    later = decide(pinned, Facts(now=at(1), settings=settings_of(run=pinned),
                                 pod=pod_facts(source_pod(0, json.dumps(
                                     {**record, "commit": COMMIT_B})))))
    assert "source" not in later.status  # never moved by a later attempt


def test_a_failed_fetch_crashes_the_attempt_with_the_init_container_s_message() -> None:
    message = "headwater fetch-source: cannot fetch 'nope' from file:///r.git: fatal: ..."
    facts = pod_facts(source_pod(1, message, phase="Failed"))
    observed = observe_attempt(facts, "run-a-1", at(5), at(600) - at(0))
    assert observed.reason == reasons.SOURCE_FETCH_FAILED
    assert "cannot fetch 'nope'" in (observed.message or "")
    assert "Flow.spec.source" in (observed.message or "")
    run = make_run(status={"phase": "Pending", "attempts": 1, "podName": "run-a-1"})
    decision = decide(run, Facts(now=at(5), settings=settings_of(run=run), pod=facts))
    assert (decision.status["phase"], decision.status["reason"]) == (
        "Crashed", reasons.SOURCE_FETCH_FAILED)
    assert "source" not in decision.status
