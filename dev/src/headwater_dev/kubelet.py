"""A scriptable kubelet stand-in: tests say what happens to a pod, it reports it.

No container runs. Each helper writes, through the API like a kubelet does (status
subresource), the status :mod:`.podstatus` builds for that situation; the scheduler's
binding (``pods/binding``, which sets ``spec.nodeName``) and what the control plane does
to the pods of a lost node (node lifecycle controller, taint eviction, pod GC) are
emulated too::

    pod = await kubelet.wait_for_pod("app.kubernetes.io/managed-by=headwater")
    await kubelet.run(pod)
    await kubelet.succeed(pod, summary={"state": "Completed", ...})
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from headwater.contract import EXIT_CANCELLED, SUMMARY_VERSION, RunSummary, encode_summary
from headwater_operator import kube

from headwater_dev import podstatus

JsonObject = dict[str, Any]
PodRef = str | Mapping[str, Any]


class EmulatorAccess(Protocol):
    """What the kubelet needs beyond the API: ``Emulator`` and ``BackgroundEmulator``."""

    def append_log(self, namespace: str, pod: str, text: str) -> None:
        """Append container output to a pod's log."""

    def mark_deleting(self, plural: str, name: str, namespace: str | None = "default",
                      grace_period_seconds: int = 30) -> JsonObject:
        """Set deletionTimestamp without deleting."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def default_summary(state: str = "Completed", reason: str | None = None,
                    message: str | None = None) -> str:
    """A minimal valid run summary, as ``headwater execute`` would write it."""
    summary: RunSummary = {"version": SUMMARY_VERSION, "state": state,  # type: ignore[typeddict-item]
                           "reason": reason or state,
                           "message": message or f"the flow run finished: {state}"}
    return encode_summary(summary)


class Kubelet:
    """Drives pods in one namespace (or the pod's own) the way a kubelet would."""

    def __init__(self, client: kube.Kube, emulator: EmulatorAccess | None = None, *,
                 namespace: str = "default", node: str = "node-1",
                 clock: Callable[[], datetime.datetime] = _now,
                 poll_interval: float = 0.02) -> None:
        self.kube = client
        self.emulator = emulator
        self.namespace = namespace
        self.node = node
        self.clock = clock
        self.poll_interval = poll_interval

    # --- finding pods ------------------------------------------------------------------
    def _ref(self, pod: PodRef) -> tuple[str, str]:
        if isinstance(pod, str):
            return pod, self.namespace
        meta = pod.get("metadata") or {}
        return str(meta["name"]), str(meta.get("namespace") or self.namespace)

    async def get(self, pod: PodRef) -> JsonObject:
        """The pod as stored now."""
        name, namespace = self._ref(pod)
        return await self.kube.get(kube.PODS, name, namespace=namespace)

    async def wait_for_pod(
        self, name_or_selector: str, timeout: float = 10.0,  # noqa: ASYNC109 - promised API
    ) -> JsonObject:
        """The pod with that name, or the first matching a label selector (``k=v,...``).

        Raises ``TimeoutError`` naming what was awaited and which pods exist.
        """
        deadline = time.monotonic() + timeout
        is_selector = "=" in name_or_selector or "," in name_or_selector
        while True:
            if is_selector:
                pods = await self.kube.list(kube.PODS, namespace=self.namespace,
                                            label_selector=name_or_selector)
                if pods:
                    return pods[0]
            else:
                try:
                    return await self.kube.get(kube.PODS, name_or_selector,
                                               namespace=self.namespace)
                except kube.NotFound:
                    pass
            if time.monotonic() >= deadline:
                existing = [p["metadata"]["name"] for p in
                            await self.kube.list(kube.PODS, namespace=self.namespace)]
                raise TimeoutError(f"no pod {name_or_selector!r} in namespace "
                                   f"{self.namespace!r} after {timeout}s; pods: {existing}")
            await asyncio.sleep(self.poll_interval)

    # --- reporting ---------------------------------------------------------------------
    async def _container(self, pod: PodRef) -> tuple[str, str]:
        obj = await self.get(pod) if isinstance(pod, str) else dict(pod)
        containers = (obj.get("spec") or {}).get("containers") or [{}]
        first = containers[0]
        return (first.get("name") or podstatus.DEFAULT_CONTAINER,
                first.get("image") or podstatus.DEFAULT_IMAGE)

    async def _exited(self, pod: PodRef, exit_code: int, message: str) -> JsonObject:
        """Report the first container exited, having written ``message`` to its
        termination-message file; the kubelet's caps apply (see :mod:`.podstatus`)."""
        obj = await self.get(pod)
        container, image = await self._container(obj)
        return await self.report(pod, podstatus.terminated(
            self.clock(), exit_code=exit_code, reason="Completed" if exit_code == 0
            else "Error", message=podstatus.read_termination_file(message),
            container=container, image=image, containers=podstatus.container_count(obj)))

    async def report(self, pod: PodRef, status: JsonObject) -> JsonObject:
        """Write a whole pod status through the status subresource."""
        name, namespace = self._ref(pod)
        # Replace rather than merge: a kubelet reports the complete status every time.
        current = await self.kube.get(kube.PODS, name, namespace=namespace)
        current["status"] = podstatus.with_qos_class_of(status, current)
        # Unconditional, as the kubelet's own status updates: the operator may label or
        # annotate the pod meanwhile, which must not make the report fail with 409.
        current["metadata"].pop("resourceVersion", None)
        return await self.kube.replace(kube.PODS, current, namespace=namespace,
                                       subresource="status")

    async def schedule(self, pod: PodRef) -> JsonObject:
        """Bind the pod to the node (as the scheduler) and start creating its container."""
        name, namespace = self._ref(pod)
        await self.kube.create_subresource(kube.PODS, name, "binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node}},
            namespace=namespace)
        container, image = await self._container(pod)
        return await self.report(pod, podstatus.scheduled(self.clock(), container=container,
                                                          image=image))

    async def run(self, pod: PodRef) -> JsonObject:
        """Scheduled (if not yet) and Running."""
        obj = await self.get(pod)
        if not (obj.get("spec") or {}).get("nodeName"):
            await self.schedule(pod)
        container, image = await self._container(obj)
        return await self.report(pod, podstatus.running(self.clock(), container=container,
                                                        image=image))

    async def succeed(self, pod: PodRef, summary: str | RunSummary | None = None
                      ) -> JsonObject:
        """Exit 0 with a termination message (default: a minimal Completed summary)."""
        return await self._exited(pod, 0, _summary_text(summary, "Completed"))

    async def fail(self, pod: PodRef, exit_code: int = 1,
                   summary: str | RunSummary | None = None) -> JsonObject:
        """A non-zero exit with a termination message (default: a Failed summary)."""
        return await self._exited(pod, exit_code, _summary_text(summary, "Failed"))

    async def oom_kill(self, pod: PodRef) -> JsonObject:
        """Exit 137, reason OOMKilled, no termination message."""
        container, image = await self._container(pod)
        return await self.report(pod, podstatus.oom_killed(self.clock(), container=container,
                                                           image=image))

    async def evict(self, pod: PodRef, message: str | None = None) -> JsonObject:
        """Phase Failed, reason Evicted (node pressure)."""
        container, image = await self._container(pod)
        now = self.clock()
        status = (podstatus.evicted(now, message, container=container, image=image) if message
                  else podstatus.evicted(now, container=container, image=image))
        return await self.report(pod, status)

    async def image_pull_error(self, pod: PodRef, *, backoff: bool = False) -> JsonObject:
        """Waiting with ErrImagePull (or ImagePullBackOff when ``backoff``)."""
        container, image = await self._container(pod)
        return await self.report(pod, podstatus.image_pull_error(
            self.clock(), backoff=backoff, container=container, image=image))

    async def config_error(self, pod: PodRef, message: str = (
            'couldn\'t find key password in Secret default/db')) -> JsonObject:
        """Waiting with CreateContainerConfigError (the message is the kubelet's)."""
        container, image = await self._container(pod)
        return await self.report(pod, podstatus.create_container_config_error(
            self.clock(), message, container=container, image=image))

    async def missing_secret(self, pod: PodRef, name: str = "db",
                             key: str | None = None) -> JsonObject:
        """CreateContainerConfigError for a missing Secret (or a missing ``key`` in it)."""
        _, namespace = self._ref(pod)
        return await self.config_error(pod, podstatus.missing_key_message(
            "Secret", namespace, name, key) if key else podstatus.missing_object_message(
            "Secret", name))

    async def run_as_root(self, pod: PodRef, image_user: str = "0") -> JsonObject:
        """CreateContainerConfigError: ``runAsNonRoot`` and an image that runs as root
        (``image_user`` 0) or as a user name that cannot be verified."""
        obj = await self.get(pod)
        meta = obj["metadata"]
        container, _ = await self._container(obj)
        described = podstatus.pod_desc(meta["name"], meta["namespace"], meta.get("uid", ""))
        return await self.config_error(pod, podstatus.run_as_non_root_message(
            described, container, image_user))

    async def invalid_image(self, pod: PodRef) -> JsonObject:
        """Waiting with InvalidImageName (the pod's image, or one with an upper-case path)."""
        container, image = await self._container(pod)
        now = self.clock()
        try:
            status = podstatus.invalid_image_name(now, container=container, image=image)
        except ValueError:
            status = podstatus.invalid_image_name(now, container=container)
        return await self.report(pod, status)

    async def unschedulable(self, pod: PodRef, message: str | None = None) -> JsonObject:
        """Pending with PodScheduled=False, reason Unschedulable (as the scheduler)."""
        now = self.clock()
        return await self.report(pod, podstatus.unschedulable(now, message) if message
                                 else podstatus.unschedulable(now))

    # --- a lost node, as the control plane handles it (see podstatus) ------------------
    async def node_not_ready(self, pod: PodRef) -> JsonObject:
        """The node stopped reporting: the node lifecycle controller marks the pod not Ready."""
        obj = await self.get(pod)
        return await self.report(pod, podstatus.node_not_ready(self.clock(),
                                                               obj.get("status") or {}))

    async def taint_evict(self, pod: PodRef) -> JsonObject:
        """Taint eviction: DisruptionTarget, then a graceful delete no kubelet confirms."""
        obj = await self.get(pod)
        await self.report(pod, podstatus.taint_evicted(self.clock(), obj.get("status") or {}))
        if self.emulator is None:
            raise RuntimeError("taint_evict needs the emulator to set deletionTimestamp")
        name, namespace = self._ref(pod)
        grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
        return self.emulator.mark_deleting("pods", name, namespace,
                                           grace if isinstance(grace, int) else 30)

    async def pod_gc(self, pod: PodRef) -> None:
        """The Node object is gone: pod GC fails the pod, marks it, and force-deletes it."""
        obj = await self.get(pod)
        await self.report(pod, podstatus.pod_gc_orphaned(self.clock(), obj.get("status") or {}))
        name, namespace = self._ref(pod)
        # The emulator's store removes a deleting pod without finalizers on any write (the
        # API server would keep it until a grace-0 delete: apiserver ShouldDeleteDuringUpdate
        # also wants deletionGracePeriodSeconds 0), so a taint-evicted pod is gone already.
        with contextlib.suppress(kube.NotFound):
            await self.kube.delete(kube.PODS, name, namespace=namespace, grace_period_seconds=0)

    async def node_lost(self, pod: PodRef, *, node_deleted: bool = False) -> JsonObject | None:
        """The sequence for a node that stops responding: :meth:`node_not_ready`, then
        :meth:`taint_evict` once the pod's toleration runs out (300 s by default).

        ``node_deleted``: the Node object is deleted before that (the cloud's instance is
        gone and its node controller removes the Node), so :meth:`pod_gc` ends the pod
        instead, and it is gone (None).
        """
        await self.node_not_ready(pod)
        if not node_deleted:
            return await self.taint_evict(pod)
        await self.pod_gc(pod)
        return None

    async def node_shutdown(self, pod: PodRef, summary: str | RunSummary | None = None,
                            ) -> JsonObject:
        """Graceful node shutdown: the kubelet stops the container (the engine, on SIGTERM,
        writes a Cancelled summary) and fails the pod with reason Terminated."""
        message = _summary_text(summary, "Cancelled")
        container, image = await self._container(pod)
        return await self.report(pod, podstatus.node_shutdown(
            self.clock(), exit_code=EXIT_CANCELLED, message=message, container=container,
            image=image))

    def write_log(self, pod: PodRef, text: str) -> None:
        """Append container output (what ``kubectl logs`` and the CLI show)."""
        if self.emulator is None:
            raise RuntimeError("write_log needs the emulator")
        name, namespace = self._ref(pod)
        self.emulator.append_log(namespace, name, text)


def _summary_text(summary: str | RunSummary | None, state: str) -> str:
    if summary is None:
        return default_summary(state)
    if isinstance(summary, str):
        return summary
    return encode_summary(summary)
