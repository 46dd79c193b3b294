"""Which container's log ``GET …/pods/<name>/log`` serves, decided as Kubernetes 1.32 does.

Two places decide, and both answer ``400 BadRequest`` with their own words:

* the API server (kubernetes v1.32 ``pkg/registry/core/pod/strategy.go`` ``LogLocation``
  and ``validateContainer``): without ``container`` a pod with exactly one container
  serves that one, a pod with several is refused and the message lists every container
  name (init, then regular, then ephemeral: ``pkg/api/pod/util.go`` ``VisitContainers``);
  a ``container`` the pod does not have is refused too. A pod not bound to a node yet has
  no log location: the answer is ``204 No Content`` with an empty body
  (apiserver v0.32.9 ``pkg/registry/generic/rest/streamer.go`` ``InputStream`` returns no
  stream, ``pkg/endpoints/handlers/responsewriters/writers.go`` ``StreamObject`` then
  writes 204);
* the kubelet (kubernetes v1.32 ``pkg/kubelet/kubelet_pods.go``
  ``validateContainerLogStatus``), once the pod is on a node: a container without a
  status is "not available", one that is waiting has no log yet and the message names
  why (two image-pull reasons have their own wording).

Pure functions over the stored pod, so the emulator's ``_serve_log`` stays a thin wrapper
and every rule has a unit test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from headwater_dev.store import ApiError

_SPEC_LISTS = ("initContainers", "containers", "ephemeralContainers")
_STATUS_LISTS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")


def container_names(pod: Mapping[str, Any]) -> list[str]:
    """Every container name of the pod, in the order the API server lists them."""
    spec = pod.get("spec") or {}
    return [str(c.get("name")) for key in _SPEC_LISTS for c in spec.get(key) or ()]


def _go_string_slice(names: Sequence[str]) -> str:
    # Go's %s of a []string: the elements separated by spaces, in brackets.
    return "[" + " ".join(names) + "]"


def log_container(pod: Mapping[str, Any], requested: str | None) -> str:
    """The container whose log is served, or the API server's ``400`` (:class:`ApiError`)."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    if requested:
        if requested not in container_names(pod):
            raise ApiError(400, "BadRequest",
                           f"container {requested} is not valid for pod {name}")
        return requested
    regular = (pod.get("spec") or {}).get("containers") or []
    if len(regular) == 1:
        return str(regular[0].get("name"))
    if not regular:
        raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}")
    raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, "
                                      f"choose one of: {_go_string_slice(container_names(pod))}")


def has_log_location(pod: Mapping[str, Any]) -> bool:
    """Whether the pod is bound to a node (else the API server answers 204, no log)."""
    return bool((pod.get("spec") or {}).get("nodeName"))


def _container_status(pod: Mapping[str, Any], container: str) -> Mapping[str, Any] | None:
    status = pod.get("status") or {}
    for key in _STATUS_LISTS:
        for entry in status.get(key) or ():
            if entry.get("name") == container:
                return dict(entry)
    return None


def kubelet_log_refusal(pod: Mapping[str, Any], container: str) -> str | None:
    """Why the kubelet has no log of ``container`` to serve (its ``400`` message), or None."""
    name = str((pod.get("metadata") or {}).get("name") or "")
    status = _container_status(pod, container)
    if status is None:
        return f'container "{container}" in pod "{name}" is not available'
    state = status.get("state") or {}
    if state.get("running") or state.get("terminated") or \
            (status.get("lastState") or {}).get("terminated"):
        return None
    waiting = state.get("waiting")
    if waiting is None:
        return f'container "{container}" in pod "{name}" is waiting to start - no logs yet'
    reason = str(waiting.get("reason") or "")
    why = {"ErrImagePull": "image can't be pulled",
           "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
    return f'container "{container}" in pod "{name}" is waiting to start: {why}'
