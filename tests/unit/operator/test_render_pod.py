"""render_pod: the manifest every attempt's pod gets."""

from __future__ import annotations

import json
import re
from typing import Any

from headwater import contract
from headwater_operator.api.flowrun import FLOWRUN_NAME_MAX_LENGTH
from headwater_operator.flowruns.render import merge_patch, render_pod
from headwater_operator.flowruns.settings import resolve_settings
from headwater_operator.labels import label_value
from test_flowrun_builders import T0, make_deployment, make_flow, make_run, make_settings


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    """The flow container's environment (found by name: a strategic merge patch of
    ``podOverrides`` puts added containers first, as the API server would)."""
    (flow,) = [c for c in pod["spec"]["containers"] if c["name"] == "flow"]
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in flow["env"]}


def render(attempt: int = 1, **deployment: Any) -> dict[str, Any]:
    run = make_run(parameters={"day": "2024-05-01"},
                   labels={contract.LABEL_SCHEDULE: "daily"})
    settings = make_settings(run=run, flow=make_flow(parameters={"day": "x", "n": 3}),
                             deployment=make_deployment(**deployment))
    return render_pod(run, settings, attempt, T0)


def test_pod_name_labels_and_owner_are_deterministic() -> None:
    pod = render(attempt=2)
    assert pod["metadata"]["name"] == "run-a-2"
    assert pod == render(attempt=2)
    labels = pod["metadata"]["labels"]
    assert labels[contract.LABEL_MANAGED_BY] == "headwater"
    assert labels[contract.LABEL_ATTEMPT] == "2"
    assert labels[contract.LABEL_SCHEDULE] == "daily"
    owner = pod["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("FlowRun", "uid-run-a", True)


def test_owner_reference_does_not_block_owner_deletion() -> None:
    # blockOwnerDeletion: true would need update on flowruns/finalizers wherever the
    # OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift): every pod
    # create would be 403 there.
    owner = render()["metadata"]["ownerReferences"][0]
    assert owner["blockOwnerDeletion"] is False


def test_contract_env_carries_merged_parameters_and_identity() -> None:
    env = env_of(render())
    assert json.loads(env[contract.ENV_PARAMETERS]) == {"day": "2024-05-01", "n": 3}
    assert env[contract.ENV_ENTRYPOINT] == "etl.flows:ingest"
    assert env[contract.ENV_ATTEMPT] == "1"
    assert env[contract.ENV_SCHEDULED_TIME] == "2024-05-01T10:00:00Z"
    assert env[contract.ENV_DEPLOYMENT_NAME] == "nightly"


def test_the_deployment_s_uid_and_generation_reach_runtime_deployment() -> None:
    run = make_run()
    deployment = make_deployment()
    deployment.metadata.uid, deployment.metadata.generation = "uid-nightly", 4
    env = env_of(render_pod(run, make_settings(run=run, deployment=deployment), 1, T0))
    assert env[contract.ENV_DEPLOYMENT_ID] == "uid-nightly"
    assert env[contract.ENV_DEPLOYMENT_VERSION] == "4"
    direct = make_run(flowRef={"name": "etl"}, deploymentRef=None)
    env = env_of(render_pod(direct, resolve_settings(make_flow(), None, direct), 1, T0))
    assert contract.ENV_DEPLOYMENT_ID not in env  # a FlowRun of a Flow has no Deployment
    assert env[contract.ENV_DEPLOYMENT_NAME] == ""


def test_user_env_cannot_override_contract_env() -> None:
    pod = render(runTemplate={"env": [{"name": contract.ENV_ATTEMPT, "value": "9"},
                                      {"name": "DB", "value": "x"}]})
    env = env_of(pod)
    assert env[contract.ENV_ATTEMPT] == "1"
    assert env["DB"] == "x"


def test_restricted_security_context_by_default_and_run_to_completion() -> None:
    pod = render()
    spec = pod["spec"]
    container = spec["containers"][0]
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePath"] == contract.TERMINATION_MESSAGE_PATH
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_timeout_resources_and_scheduling_come_from_run_template() -> None:
    pod = render(timeoutSeconds=120, runTemplate={
        "resources": {"limits": {"memory": "1Gi"}},
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists"}],
        "serviceAccountName": "etl",
    })
    spec = pod["spec"]
    assert spec["activeDeadlineSeconds"] == 120
    assert spec["containers"][0]["resources"] == {"limits": {"memory": "1Gi"}}
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == [{"key": "batch", "operator": "Exists"}]
    assert spec["serviceAccountName"] == "etl"


def test_pod_overrides_merge_but_cannot_change_identity() -> None:
    pod = render(runTemplate={"podOverrides": {
        "metadata": {"name": "evil", "labels": {contract.LABEL_MANAGED_BY: "me"}},
        "spec": {"hostNetwork": True, "containers": [{"name": "flow", "workingDir": "/w"}]},
    }})
    assert pod["metadata"]["name"] == "run-a-1"
    assert pod["metadata"]["labels"][contract.LABEL_MANAGED_BY] == "headwater"
    assert pod["spec"]["hostNetwork"] is True
    container = pod["spec"]["containers"][0]
    assert container["workingDir"] == "/w"
    assert container["image"] == "ghcr.io/acme/etl:1.0"


def test_merge_patch_deletes_with_none_and_replaces_plain_lists() -> None:
    assert merge_patch({"a": 1, "b": [1, 2]}, {"a": None, "b": [3]}) == {"b": [3]}


def test_long_names_give_valid_distinct_label_values() -> None:
    first, second = label_value("x" * 80), label_value("x" * 79)
    assert len(first) <= 63
    assert first != second
    assert label_value("short") == "short"


LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
"""apimachinery v0.32.9 pkg/util/validation/validation.go IsValidLabelValue (≤ 63 too)."""
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def test_longest_names_give_a_valid_pod_name_and_labels_for_every_attempt() -> None:
    run_name = "r" * FLOWRUN_NAME_MAX_LENGTH
    long_name = "n" * 253
    run = make_run(run_name, labels={contract.LABEL_SCHEDULE: "s" * 52})
    deployment = make_deployment()
    deployment.metadata.name = long_name
    flow = make_flow()
    flow.metadata.name = long_name
    settings = make_settings(run=run, flow=flow, deployment=deployment)
    assert settings.deployment_name == long_name
    largest_attempt = 2**63  # retries is an int64: attempt = retries + 1
    for attempt in (1, 10, largest_attempt):
        pod = render_pod(run, settings, attempt, T0)
        name = pod["metadata"]["name"]
        assert len(name) <= 253, name
        assert DNS_SUBDOMAIN.match(name), name
        for key, value in pod["metadata"]["labels"].items():
            assert len(value) <= 63, (key, value)
            assert LABEL_VALUE.match(value), (key, value)


def test_the_engine_is_told_its_share_of_the_pods_termination_messages() -> None:
    # 12288 bytes for all containers and init containers, with room for two a webhook
    # may inject: 1 + 2 → 4096, 4 + 2 → 2048, 4 + 1 init + 2 → 1755.
    assert env_of(render())[contract.ENV_SUMMARY_MAX_BYTES] == "4096"
    sidecars = [{"name": f"sidecar-{i}", "image": "busybox"} for i in range(3)]
    pod = render(runTemplate={"podOverrides": {"spec": {"containers": sidecars}}})
    assert sorted(c["name"] for c in pod["spec"]["containers"]) == [
        "flow", "sidecar-0", "sidecar-1", "sidecar-2"]
    assert env_of(pod)[contract.ENV_SUMMARY_MAX_BYTES] == "2048"
    pod = render(runTemplate={"podOverrides": {"spec": {
        "containers": sidecars, "initContainers": [{"name": "init", "image": "busybox"}]}}})
    assert env_of(pod)[contract.ENV_SUMMARY_MAX_BYTES] == "1755"


def test_kubectl_logs_picks_the_flow_container_beside_a_sidecar() -> None:
    # kubectl logs/exec read this annotation before falling back to the first container,
    # which a podOverrides sidecar (or a webhook's) would be.
    sidecar = {"name": "proxy", "image": "busybox"}
    pod = render(runTemplate={"podOverrides": {"spec": {"containers": [sidecar]}}})
    assert pod["spec"]["containers"][0]["name"] == "proxy"
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "flow"
