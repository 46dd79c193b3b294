"""Realistic ``Pod.status`` documents for every situation a flow-run pod can be in.

Pure functions (time is an argument) shared by the api tests' kubelet stand-in and the
sandbox's process-running kubelet, so both report pods exactly as a real kubelet,
scheduler and node controller would: the phase, the conditions, and the container
state with its reason, exit code and termination message. The shapes follow the
``v1 PodStatus`` reference; the reasons and messages are the ones Kubernetes 1.32 writes
(each builder cites where).

A lost node is several writes by several controllers, in this order (see
:mod:`headwater_operator.flowruns.podfacts` for what each means):
:func:`node_not_ready` (node lifecycle controller), :func:`taint_evicted` (taint
eviction, then a graceful delete), :func:`pod_gc_orphaned` (pod GC, then a forced
delete) — or, for a node that shuts down in order, :func:`node_shutdown` (its kubelet).
No Kubernetes ≥ 1.29 controller sets a pod's ``status.reason`` to ``NodeLost``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from headwater.contract import (
    POD_TERMINATION_MESSAGE_MAX_BYTES,
    TERMINATION_MESSAGE_MAX_BYTES,
)

from headwater_dev.fielderrors import go_quote

JsonObject = dict[str, Any]

DEFAULT_CONTAINER = "main"
DEFAULT_IMAGE = "ghcr.io/headwater/flow:latest"


def container_count(pod: Mapping[str, Any]) -> int:
    """What the kubelet divides the pod's 12 KiB of termination messages by: containers
    plus init containers (pkg/kubelet/status/status_manager.go ``normalizeStatus``;
    ephemeral containers do not count)."""
    spec = pod.get("spec") or {}
    return len(spec.get("containers") or []) + len(spec.get("initContainers") or [])


def read_termination_file(content: str) -> str:
    """The termination message the kubelet reads from the file a container wrote.

    The *last* 4096 bytes (pkg/kubelet/kuberuntime/kuberuntime_container.go
    ``getTerminationMessage``: pkg/util/tail ``ReadAtMost`` seeks to 4096 bytes before
    the end), so an oversized message loses its beginning.
    """
    return _text(content.encode()[-TERMINATION_MESSAGE_MAX_BYTES:])


def cap_for_pod(message: str, containers: int) -> str:
    """A termination message as the kubelet posts it in a pod of ``containers``.

    Its *first* ``12288 // containers`` bytes (pkg/kubelet/status/status_manager.go
    ``normalizeStatus``, applied to every status the kubelet caches and sends), so a
    message cut here loses its end.
    """
    limit = POD_TERMINATION_MESSAGE_MAX_BYTES // max(containers, 1)
    return _text(message.encode()[:limit])


def _text(data: bytes) -> str:
    # Go cuts bytes, and its JSON encoder turns a split UTF-8 sequence into U+FFFD.
    return data.decode("utf-8", errors="replace")


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Kubernetes writes times."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, status: str, now: datetime.datetime, reason: str | None = None,
               message: str | None = None) -> JsonObject:
    condition: JsonObject = {"type": kind, "status": status,
                             "lastProbeTime": None, "lastTransitionTime": timestamp(now)}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _container(name: str, image: str, state: JsonObject, *, ready: bool = False,
               restart_count: int = 0, last_state: JsonObject | None = None) -> JsonObject:
    return {"name": name, "image": image, "imageID": "", "ready": ready,
            "restartCount": restart_count, "started": "running" in state,
            "state": state, "lastState": last_state or {}}


def _scheduled_conditions(now: datetime.datetime, *, ready: bool,
                          ready_reason: str | None = None) -> list[JsonObject]:
    status = "True" if ready else "False"
    return [
        _condition("PodScheduled", "True", now),
        _condition("Initialized", "True", now),
        _condition("ContainersReady", status, now, None if ready else ready_reason),
        _condition("Ready", status, now, None if ready else ready_reason),
    ]


def scheduled(now: datetime.datetime, *, container: str = DEFAULT_CONTAINER,
              image: str = DEFAULT_IMAGE, host_ip: str = "10.0.0.10") -> JsonObject:
    """Bound to a node; the container is being created (phase Pending)."""
    return {
        "phase": "Pending", "hostIP": host_ip, "startTime": timestamp(now),
        "conditions": _scheduled_conditions(now, ready=False, ready_reason="ContainersNotReady"),
        "containerStatuses": [_container(container, image, {
            "waiting": {"reason": "ContainerCreating"}})],
        "qosClass": "Burstable",
    }


def waiting(now: datetime.datetime, reason: str, message: str, *,
            container: str = DEFAULT_CONTAINER, image: str = DEFAULT_IMAGE) -> JsonObject:
    """Scheduled but the container cannot start (phase Pending), e.g. ``ErrImagePull``."""
    status = scheduled(now, container=container, image=image)
    status["containerStatuses"] = [_container(container, image, {
        "waiting": {"reason": reason, "message": message}})]
    return status


def image_pull_error(now: datetime.datetime, *, backoff: bool = False,
                     container: str = DEFAULT_CONTAINER,
                     image: str = DEFAULT_IMAGE) -> JsonObject:
    """``ErrImagePull`` on the first failure, ``ImagePullBackOff`` while retrying."""
    if backoff:
        return waiting(now, "ImagePullBackOff", f'Back-off pulling image "{image}"',
                       container=container, image=image)
    return waiting(now, "ErrImagePull",
                   f'failed to pull and unpack image "{image}": failed to resolve reference '
                   f'"{image}": {image}: not found', container=container, image=image)


def create_container_config_error(now: datetime.datetime, message: str, *,
                                  container: str = DEFAULT_CONTAINER,
                                  image: str = DEFAULT_IMAGE) -> JsonObject:
    """The container spec cannot be realised (e.g. a missing Secret key).

    kubernetes v1.32 ``pkg/kubelet/kuberuntime/kuberuntime_container.go``
    ``startContainer``: a ``generateContainerConfig`` error becomes waiting reason
    ``CreateContainerConfigError`` with the error's text as the message.
    """
    return waiting(now, "CreateContainerConfigError", message, container=container, image=image)


def pod_desc(name: str, namespace: str, uid: str) -> str:
    """How the kubelet names a pod in messages (``pkg/kubelet/util/format`` ``PodDesc``)."""
    return f"{name}_{namespace}({uid})"


def run_as_non_root_message(pod: str, container: str, image_user: str = "0") -> str:
    """``verifyRunAsNonRoot``'s refusal for an image whose user is ``image_user``.

    kubernetes v1.32 ``pkg/kubelet/kuberuntime/security_context_others.go``: a numeric
    user 0 "will run as root"; a user name cannot be verified. ``pod`` is
    :func:`pod_desc`, quoted as Go's ``%q`` quotes it.
    """
    if image_user.isdigit():
        return (f"container has runAsNonRoot and image will run as root (pod: {go_quote(pod)}, "
                f"container: {container})")
    return (f"container has runAsNonRoot and image has non-numeric user ({image_user}), "
            f"cannot verify user is non-root (pod: {go_quote(pod)}, container: {container})")


def missing_key_message(kind: str, namespace: str, name: str, key: str) -> str:
    """A ``valueFrom`` key absent from its Secret or ConfigMap (``kind``).

    kubernetes v1.32 ``pkg/kubelet/kubelet_pods.go`` ``makeEnvironmentVariables``.
    """
    return f"couldn't find key {key} in {kind} {namespace}/{name}"


def missing_object_message(kind: str, name: str) -> str:
    """A Secret or ConfigMap (``kind``) that does not exist, as the kubelet's object
    managers report it: their NotFound uses the resource ``secret``/``configmap``
    (kubernetes v1.32 ``pkg/kubelet/secret/secret_manager.go``,
    ``pkg/kubelet/configmap/configmap_manager.go``)."""
    return f'{kind.lower()} "{name}" not found'


def _docker_remote(image: str) -> str:
    # distribution/reference splitDockerDomain: a first path part with "." or ":", or
    # "localhost", or an upper-case letter is a registry; Docker Hub names get library/.
    first, sep, rest = image.partition("/")
    if sep and (any(c in first for c in ".:") or first == "localhost" or
                first.lower() != first):
        remainder = rest
    else:
        remainder = image if sep else f"library/{image}"
    return remainder.split(":", 1)[0].split("@", 1)[0]


def invalid_image_name(now: datetime.datetime, *, container: str = DEFAULT_CONTAINER,
                       image: str = "ghcr.io/Acme/flow:1") -> JsonObject:
    """An image reference the kubelet cannot parse: waiting ``InvalidImageName``.

    kubernetes v1.32 ``pkg/kubelet/images/image_manager.go`` ``EnsureImageExists``
    (``applyDefaultImageTag``) over distribution/reference's ``ParseNormalizedNamed``,
    whose refusal of an upper-case repository path is the message built here (the one
    case built: ``image`` must have an upper-case letter in its repository path).
    """
    remote = _docker_remote(image)
    if remote.lower() == remote:
        raise ValueError(f"image {image!r}: only an upper-case repository path is emulated")
    message = (f"Failed to apply default image tag {go_quote(image)}: couldn't parse image "
               f"reference {go_quote(image)}: invalid reference format: repository name "
               f"({remote}) must be lowercase")
    return waiting(now, "InvalidImageName", message, container=container, image=image)


def unschedulable(now: datetime.datetime, message: str = (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.")) -> JsonObject:
    """The scheduler found no node: ``PodScheduled=False`` reason ``Unschedulable``."""
    return {"phase": "Pending", "qosClass": "Burstable", "conditions": [
        _condition("PodScheduled", "False", now, "Unschedulable", message)]}


def running(now: datetime.datetime, *, started: datetime.datetime | None = None,
            container: str = DEFAULT_CONTAINER, image: str = DEFAULT_IMAGE,
            pod_ip: str = "10.244.0.10", host_ip: str = "10.0.0.10") -> JsonObject:
    """The container runs (phase Running, Ready)."""
    started = started or now
    return {
        "phase": "Running", "hostIP": host_ip, "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}], "startTime": timestamp(started),
        "conditions": _scheduled_conditions(now, ready=True),
        "containerStatuses": [_container(container, image, {
            "running": {"startedAt": timestamp(started)}}, ready=True)],
        "qosClass": "Burstable",
    }


def terminated(now: datetime.datetime, *, exit_code: int, reason: str,
               message: str | None = None, started: datetime.datetime | None = None,
               container: str = DEFAULT_CONTAINER, image: str = DEFAULT_IMAGE,
               containers: int = 1) -> JsonObject:
    """The container exited; phase Succeeded for exit code 0, Failed otherwise.

    ``message`` is the termination message as the kubelet read it (for flow runs: the
    JSON run summary, see :func:`read_termination_file`); it is cut to the container's
    share of the pod's 12 KiB (:func:`cap_for_pod`), ``containers`` being
    :func:`container_count` of the pod.
    """
    if message is not None:
        message = cap_for_pod(message, containers)
    started = started or now
    state: JsonObject = {"terminated": {
        "exitCode": exit_code, "reason": reason, "startedAt": timestamp(started),
        "finishedAt": timestamp(now), "containerID": f"containerd://{container}"}}
    if message is not None:
        state["terminated"]["message"] = message
    return {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "hostIP": "10.0.0.10", "startTime": timestamp(started),
        "conditions": _scheduled_conditions(now, ready=False, ready_reason="PodCompleted"),
        "containerStatuses": [_container(container, image, state)],
        "qosClass": "Burstable",
    }


def succeeded(now: datetime.datetime, message: str | None = None, **kwargs: Any) -> JsonObject:
    """Exit code 0, reason ``Completed``."""
    return terminated(now, exit_code=0, reason="Completed", message=message, **kwargs)


def failed(now: datetime.datetime, exit_code: int = 1, message: str | None = None,
           **kwargs: Any) -> JsonObject:
    """A non-zero exit, reason ``Error``."""
    return terminated(now, exit_code=exit_code, reason="Error", message=message, **kwargs)


def oom_killed(now: datetime.datetime, **kwargs: Any) -> JsonObject:
    """Killed by the kernel for exceeding its memory limit: exit 137, ``OOMKilled``."""
    return terminated(now, exit_code=137, reason="OOMKilled", **kwargs)


def evicted(now: datetime.datetime, message: str = (
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
        "Container main was using 1843200Ki, request is 0, has larger consumption of memory."),
        *, container: str = DEFAULT_CONTAINER, image: str = DEFAULT_IMAGE) -> JsonObject:
    """Evicted by the kubelet under node pressure: phase Failed, reason ``Evicted``."""
    status = terminated(now, exit_code=137, reason="ContainerStatusUnknown",
                        message="The container could not be located when the pod was "
                                "terminated", container=container, image=image)
    status.update({"phase": "Failed", "reason": "Evicted", "message": message})
    status["conditions"].append(_condition("DisruptionTarget", "True", now,
                                           "TerminationByKubelet", message))
    return status


def _set_condition(status: JsonObject, condition: JsonObject) -> JsonObject:
    # As pkg/api/v1/pod UpdatePodCondition: the condition of that type is replaced.
    conditions = [c for c in status.get("conditions") or () if c.get("type") != condition["type"]]
    return {**status, "conditions": [*conditions, condition]}


def node_not_ready(now: datetime.datetime, previous: JsonObject) -> JsonObject:
    """The node stopped posting status: its pods are marked not Ready, nothing else.

    kubernetes v1.32 ``pkg/controller/util/node/controller_utils.go`` ``MarkPodsNotReady``
    (called by the node lifecycle controller once the node's ``Ready`` is ``Unknown``):
    only the pod's ``Ready`` condition turns ``False``; ``ContainersReady``, the phase and
    the container states keep what the kubelet last reported.
    """
    ready = next((dict(c) for c in previous.get("conditions") or ()
                  if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") == "False":
        return dict(previous)
    ready.update({"status": "False", "lastTransitionTime": timestamp(now)})
    return _set_condition(previous, ready)


def taint_evicted(now: datetime.datetime, previous: JsonObject) -> JsonObject:
    """Taint eviction's mark, set just before it deletes the pod (gracefully).

    kubernetes v1.32 ``pkg/controller/tainteviction/taint_eviction.go``
    ``addConditionAndDeletePod``.
    """
    return _set_condition(previous, _condition(
        "DisruptionTarget", "True", now, "DeletionByTaintManager",
        "Taint manager: deleting due to NoExecute taint"))


def pod_gc_orphaned(now: datetime.datetime, previous: JsonObject) -> JsonObject:
    """Pod GC's mark on a pod whose Node object is gone, just before it force-deletes it.

    kubernetes v1.32 ``pkg/controller/podgc/gc_controller.go`` ``gcOrphaned`` and
    ``markFailedAndDeletePodWithCondition``: phase ``Failed`` (the container states stay
    as the kubelet last reported them) and ``DisruptionTarget`` ``DeletionByPodGC``.
    """
    status = _set_condition(previous, _condition(
        "DisruptionTarget", "True", now, "DeletionByPodGC", "PodGC: node no longer exists"))
    if status.get("phase") not in ("Succeeded", "Failed"):
        status["phase"] = "Failed"
    return status


NODE_SHUTDOWN_MESSAGE = "Pod was terminated in response to imminent node shutdown."


def node_shutdown(now: datetime.datetime, *, started: datetime.datetime | None = None,
                  exit_code: int = 143, message: str | None = None,
                  container: str = DEFAULT_CONTAINER, image: str = DEFAULT_IMAGE) -> JsonObject:
    """A node shutting down in order: its kubelet stopped the container and failed the pod.

    kubernetes v1.32 ``pkg/kubelet/nodeshutdown/nodeshutdown_manager_linux.go``: phase
    ``Failed``, reason ``Terminated`` and the shutdown message, and ``DisruptionTarget``
    ``TerminationByKubelet``. ``message`` is the container's termination message (the
    run summary the engine wrote on SIGTERM, if any).
    """
    status = terminated(now, exit_code=exit_code, reason="Error", message=message,
                        started=started, container=container, image=image)
    status.update({"phase": "Failed", "reason": "Terminated", "message": NODE_SHUTDOWN_MESSAGE})
    return _set_condition(status, _condition("DisruptionTarget", "True", now,
                                             "TerminationByKubelet", NODE_SHUTDOWN_MESSAGE))



# --- init containers ---------------------------------------------------------------------
#
# kubernetes v1.32 pkg/kubelet/kubelet_pods.go: ``convertToAPIContainerStatuses`` gives a
# container that has not started the waiting reason ``PodInitializing`` while the pod has
# init containers (``ContainerCreating`` otherwise); ``getPhase`` keeps the pod
# ``Pending`` while an init container has not completed and makes it ``Failed`` when one
# failed under ``restartPolicy: Never``. pkg/kubelet/status/generate.go
# ``GeneratePodInitializedCondition``: ``Initialized=False``, reason
# ``ContainersNotInitialized``, listing the init containers that have not exited 0;
# ``GenerateContainersReadyCondition``: ``ContainersNotReady``, listing the others.

POD_INITIALIZING = "PodInitializing"


def init_waiting(name: str, image: str) -> JsonObject:
    """An init container that has not started yet."""
    return _container(name, image, {"waiting": {"reason": POD_INITIALIZING}})


def init_running(name: str, image: str, started: datetime.datetime, *,
                 restart_count: int = 0, last_state: JsonObject | None = None) -> JsonObject:
    """An init container that runs."""
    return _container(name, image, {"running": {"startedAt": timestamp(started)}},
                      restart_count=restart_count, last_state=last_state)


def init_terminated(name: str, image: str, now: datetime.datetime, *, exit_code: int,
                    started: datetime.datetime, message: str | None = None,
                    containers: int = 1, restart_count: int = 0) -> JsonObject:
    """An init container that exited (reason ``Completed`` for 0, ``Error`` otherwise); a
    completed one is ``ready`` (it counts as initialized)."""
    state = terminated(now, exit_code=exit_code, reason="Completed" if exit_code == 0
                       else "Error", message=message, started=started, container=name,
                       image=image, containers=containers)["containerStatuses"][0]
    return {**state, "ready": exit_code == 0, "restartCount": restart_count}


def init_back_off(status: JsonObject, pod_desc_text: str, delay: float) -> JsonObject:
    """A failed init container the kubelet restarts after ``delay`` seconds (restart
    policy ``OnFailure``/``Always``): waiting ``CrashLoopBackOff``, the failure in
    ``lastState``, one more restart counted (pkg/kubelet/kuberuntime
    ``doBackOff``'s message)."""
    name = status["name"]
    return {**status, "ready": False, "started": False,
            "restartCount": int(status.get("restartCount") or 0) + 1,
            "lastState": status["state"],
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {int(delay)}s restarting failed container={name} "
                f"pod={pod_desc_text}")}}}


def initializing(now: datetime.datetime, init_statuses: list[JsonObject], *,
                 container: str = DEFAULT_CONTAINER, image: str = DEFAULT_IMAGE,
                 failed: bool = False, started: datetime.datetime | None = None) -> JsonObject:
    """The pod while its init containers run (``Pending``), or after one failed under
    ``restartPolicy: Never`` (``failed``: phase ``Failed``)."""
    incomplete = [s["name"] for s in init_statuses
                  if ((s.get("state") or {}).get("terminated") or {}).get("exitCode") != 0]
    unready = f"containers with unready status: [{container}]"
    return {
        "phase": "Failed" if failed else "Pending", "hostIP": "10.0.0.10",
        "startTime": timestamp(started or now),
        "conditions": [
            _condition("PodScheduled", "True", now),
            _condition("Initialized", "False", now, "ContainersNotInitialized",
                       f"containers with incomplete status: [{' '.join(incomplete)}]"),
            _condition("ContainersReady", "False", now, "ContainersNotReady", unready),
            _condition("Ready", "False", now, "ContainersNotReady", unready),
        ],
        "initContainerStatuses": init_statuses,
        "containerStatuses": [_container(container, image, {
            "waiting": {"reason": POD_INITIALIZING}})],
        "qosClass": "Burstable",
    }


def with_init_statuses(status: JsonObject, init_statuses: list[JsonObject]) -> JsonObject:
    """``status`` of a pod whose init containers all completed (nothing added when the
    pod has none)."""
    return {**status, "initContainerStatuses": init_statuses} if init_statuses else status


def with_qos_class_of(status: JsonObject, pod: Mapping[str, Any]) -> JsonObject:
    """``status`` with the pod's own QoS class, as a kubelet reports it.

    The kubelet computes the class from the spec exactly as the API server did when the
    pod was created (``pkg/kubelet/kubelet_pods.go`` ``generateAPIPodStatus``:
    ``v1qos.GetPodQOS(pod)``), and the field is immutable after that
    (``ValidatePodStatusUpdate``), so a stand-in keeps the stored one.
    """
    stored = (pod.get("status") or {}).get("qosClass")
    return {**status, "qosClass": stored} if stored else dict(status)
