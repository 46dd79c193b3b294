"""Pods: core/v1 defaulting and ValidatePodCreate/ValidatePodUpdate
(kubernetes pkg/apis/core/validation/validation.go, pkg/apis/core/v1/defaults.go)."""

from __future__ import annotations

import copy
from typing import Any

from headwater_dev.builtins import default_pod, validate_builtin
from headwater_dev.builtins.names import is_dns1123_label

PODS = ("", "v1", "pods")


def pod(**spec: Any) -> dict[str, Any]:
    container = {"name": "flow", "image": "ghcr.io/acme/etl:1.0"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "run-a-1", "namespace": "ns"},
            "spec": {"containers": [container], "restartPolicy": "Never", **spec}}


def errors(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [e.message() for e in validate_builtin(PODS, obj, old)]


def with_container(**fields: Any) -> dict[str, Any]:
    obj = pod()
    obj["spec"]["containers"][0].update(fields)
    return obj


def test_a_minimal_pod_is_valid_after_defaulting() -> None:
    assert errors(pod()) == []
    defaulted = default_pod(pod())
    container = defaulted["spec"]["containers"][0]
    assert (container["imagePullPolicy"], container["terminationMessagePolicy"]) == (
        "IfNotPresent", "File")
    assert default_pod(with_container(image="busybox"))["spec"]["containers"][0][
        "imagePullPolicy"] == "Always"
    assert defaulted["spec"]["terminationGracePeriodSeconds"] == 30


def test_container_names_are_dns_labels_and_unique() -> None:
    assert errors(with_container(name="Flow_1")) == [
        'spec.containers[0].name: Invalid value: "Flow_1": ' + is_dns1123_label("Flow_1")[0]]
    obj = pod()
    obj["spec"]["containers"].append(copy.deepcopy(obj["spec"]["containers"][0]))
    assert errors(obj) == ['spec.containers[1].name: Duplicate value: "flow"']
    obj = pod(initContainers=[{"name": "flow", "image": "x"}])
    assert errors(obj) == ['spec.initContainers[0].name: Duplicate value: "flow"']
    assert errors(pod(containers=[])) == ["spec.containers: Required value"]


def test_image_required_and_unpadded() -> None:
    assert errors(with_container(image="")) == ["spec.containers[0].image: Required value"]
    assert errors(with_container(image=" x")) == [
        'spec.containers[0].image: Invalid value: " x": must not have leading or trailing '
        "whitespace"]


def test_restart_policy_and_termination_message_policy() -> None:
    assert errors(pod(restartPolicy="Sometimes")) == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never"']
    assert errors(with_container(terminationMessagePolicy="Logs")) == [
        'spec.containers[0].terminationMessagePolicy: Unsupported value: "Logs": supported '
        'values: "File", "FallbackToLogsOnError"']


def test_volumes_and_mounts() -> None:
    assert errors(with_container(volumeMounts=[{"name": "data", "mountPath": "/d"}])) == [
        'spec.containers[0].volumeMounts[0].name: Not found: "data"']
    obj = pod(volumes=[{"name": "data", "emptyDir": {}}])
    obj["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/d"},
                                                    {"name": "data", "mountPath": "/d"}]
    assert errors(obj) == [
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/d": must be unique']
    assert errors(pod(volumes=[{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}])) \
        == ["spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type"]
    assert errors(pod(volumes=[{"name": "v", "configMap": {}}])) == [
        "spec.volumes[0].configMap.name: Required value"]
    assert errors(pod(volumes=[{"name": "v", "emptyDir": {}},
                               {"name": "v", "emptyDir": {}}])) == [
        'spec.volumes[1].name: Duplicate value: "v"']


def test_env_and_env_from() -> None:
    assert errors(with_container(env=[{"name": "1X", "value": "a"}]))[0].startswith(
        'spec.containers[0].env[0].name: Invalid value: "1X": a valid environment variable '
        "name must consist of")
    assert errors(with_container(env=[{"name": "X", "value": "a", "valueFrom": {
        "secretKeyRef": {"name": "s", "key": "k"}}}])) == [
        'spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when '
        "`value` is not empty"]
    assert errors(with_container(envFrom=[{"prefix": "P_"}])) == [
        'spec.containers[0].envFrom: Invalid value: "": must specify one of: `configMapRef` '
        "or `secretRef`"]


def test_resources_quantities_and_requests_within_limits() -> None:
    assert errors(with_container(resources={"limits": {"cpu": "500m"},
                                            "requests": {"cpu": "1"}})) == [
        'spec.containers[0].resources.requests: Invalid value: "1": must be less than or '
        "equal to cpu limit of 500m"]
    assert errors(with_container(resources={"requests": {"memory": "-1Gi"}})) == [
        'spec.containers[0].resources.requests[memory]: Invalid value: "-1Gi": must be '
        "greater than or equal to 0"]
    # Defaulting copies limits into requests first (SetDefaults_Pod), so both are reported.
    assert errors(with_container(resources={"limits": {"gpu": "1"}})) == [
        f'spec.containers[0].resources.{kind}[gpu]: Invalid value: "gpu": must be a '
        f"standard {what}" for kind in ("limits", "requests")
        for what in ("resource type or fully qualified", "resource for containers")]


def test_ports() -> None:
    assert errors(with_container(ports=[{"containerPort": 70000, "protocol": "HTTP"}])) == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 "
        "and 65535, inclusive",
        'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: '
        '"SCTP", "TCP", "UDP"']


def test_security_contexts() -> None:
    assert errors(with_container(securityContext={"runAsUser": -1})) == [
        "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 "
        "and 2147483647, inclusive"]
    assert errors(pod(securityContext={"seccompProfile": {"type": "Custom"}})) == [
        'spec.securityContext.seccompProfile.type: Unsupported value: "Custom": supported '
        'values: "Localhost", "RuntimeDefault", "Unconfined"']


def test_pod_level_fields() -> None:
    assert errors(pod(activeDeadlineSeconds=0)) == [
        "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
        "inclusive"]
    assert errors(pod(serviceAccountName="Etl"))[0].startswith(
        'spec.serviceAccountName: Invalid value: "Etl": a lowercase RFC 1123 subdomain')
    assert errors(pod(nodeSelector={"pool": "a b"}))[0].startswith(
        'spec.nodeSelector: Invalid value: "a b": a valid label must be')
    assert errors(pod(tolerations=[{"operator": "Equal", "value": "x"}])) == [
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when '
        '`key` is empty, which means "match all values and all keys"']


def test_update_may_change_only_the_mutable_fields() -> None:
    old = pod(activeDeadlineSeconds=100)
    old["metadata"].update(uid="u", resourceVersion="1")
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "ghcr.io/acme/etl:2.0"
    new["spec"]["activeDeadlineSeconds"] = 50
    assert errors(new, old) == []
    new["spec"]["activeDeadlineSeconds"] = 200
    assert errors(new, old) == [
        "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to "
        "previous value"]
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["restartPolicy"] = "Always"
    changed = errors(new, old)
    assert len(changed) == 1
    assert changed[0].startswith("spec: Forbidden: pod updates may not change fields other "
                                 "than `spec.containers[*].image`")
