"""Which container a pod-log request reads, worded as the API server and kubelet word it.

Expected strings come from kubernetes v1.32 ``pkg/registry/core/pod/strategy.go``
``validateContainer`` and ``pkg/kubelet/kubelet_pods.go`` ``validateContainerLogStatus``.
"""

from __future__ import annotations

from typing import Any

import pytest
from headwater_dev import podlogs
from headwater_dev.store import ApiError


def _pod(*containers: str, init: tuple[str, ...] = (), node: str | None = "node-1",
         statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "x"} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c, "image": "x"} for c in init]
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": "r-1"}, "spec": spec,
            "status": {"containerStatuses": statuses or []}}


def _refused(pod: dict[str, Any], container: str | None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        podlogs.log_container(pod, container)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    return caught.value


def test_a_single_container_is_the_default() -> None:
    assert podlogs.log_container(_pod("flow"), None) == "flow"
    # Init containers do not count for the default, only regular ones do.
    assert podlogs.log_container(_pod("flow", init=("setup",)), None) == "flow"


def test_an_injected_sidecar_makes_the_container_name_mandatory() -> None:
    error = _refused(_pod("flow", "istio-proxy", init=("istio-init",)), None)
    assert error.message == ("a container name must be specified for pod r-1, choose one of: "
                             "[istio-init flow istio-proxy]")


def test_naming_the_container_picks_it_and_an_unknown_name_is_refused() -> None:
    pod = _pod("flow", "istio-proxy")
    assert podlogs.log_container(pod, "flow") == "flow"
    assert podlogs.log_container(pod, "istio-proxy") == "istio-proxy"
    assert _refused(pod, "main").message == "container main is not valid for pod r-1"


def test_a_pod_without_containers_needs_a_name() -> None:
    assert _refused(_pod(), None).message == "a container name must be specified for pod r-1"


def test_only_a_pod_bound_to_a_node_has_a_log_location() -> None:
    assert podlogs.has_log_location(_pod("flow"))
    assert not podlogs.has_log_location(_pod("flow", node=None))


@pytest.mark.parametrize(("state", "expected"), [
    ({"running": {"startedAt": "2026-01-01T00:00:00Z"}}, None),
    ({"terminated": {"exitCode": 0}}, None),
    ({"waiting": {"reason": "ContainerCreating"}},
     'container "flow" in pod "r-1" is waiting to start: ContainerCreating'),
    ({"waiting": {"reason": "ErrImagePull"}},
     'container "flow" in pod "r-1" is waiting to start: image can\'t be pulled'),
    ({"waiting": {"reason": "ImagePullBackOff"}},
     'container "flow" in pod "r-1" is waiting to start: trying and failing to pull image'),
    ({}, 'container "flow" in pod "r-1" is waiting to start - no logs yet'),
])
def test_the_kubelet_serves_a_log_only_once_the_container_ran(
        state: dict[str, Any], expected: str | None) -> None:
    pod = _pod("flow", statuses=[{"name": "flow", "state": state}])
    assert podlogs.kubelet_log_refusal(pod, "flow") == expected


def test_a_container_without_a_status_is_not_available() -> None:
    assert podlogs.kubelet_log_refusal(_pod("flow"), "flow") == (
        'container "flow" in pod "r-1" is not available')
