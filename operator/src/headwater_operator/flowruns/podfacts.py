"""What a flow-run pod tells us, and what that means for the attempt it runs.

:func:`pod_facts` reads the handful of fields that matter from a raw core/v1 Pod;
:func:`observe_attempt` turns those facts into an :class:`AttemptObservation`: still
starting, running, or ended with a phase, a reason and a message that says what to do.

Both are pure: the caller passes the current time and the pending timeout, so the
"stuck Pending forever" and "stuck Running after the node died" cases are decided by
unit-testable code rather than by whatever the watch stream happened to deliver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from headwater.contract import (
    EXIT_CANCELLED,
    POD_TERMINATION_MESSAGE_MAX_BYTES,
    SUMMARY_REASON_INVALID_PARAMETERS,
    TERMINATION_MESSAGE_MAX_BYTES,
    RunSummary,
    decode_cut_summary,
    decode_summary,
)

from headwater_operator import reasons
from headwater_operator.api.enums import FlowRunPhase
from headwater_operator.api.validation import status_errors
from headwater_operator.flowruns.timeutil import parse_time

IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                "ErrImageNeverPull"})
HOPELESS_WAITING_REASONS = frozenset({"InvalidImageName", "ErrImageNeverPull"})
"""Waiting reasons the kubelet will never recover from: crash at once, not after a timeout."""
NODE_LOST_REASONS = frozenset({"NodeLost", "NodeShutdown", "Terminated"})
"""``Pod.status.reason`` values set when the node went away under the pod."""
NODE_LOST_DISRUPTIONS = frozenset({"DeletionByTaintManager", "TerminationByKubelet"})
"""``DisruptionTarget`` condition reasons that mean the node, not a user, ended the pod."""
LOG_TAIL_CHARS = 400
"""How much of a container's log tail (FallbackToLogsOnError) goes into a status message."""


@dataclass(frozen=True)
class PodFacts:
    """The facts about one attempt's pod that decide the attempt's phase."""

    exists: bool
    phase: str | None = None
    created: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    deleting: bool = False
    pod_reason: str | None = None
    pod_message: str | None = None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    terminated_reason: str | None = None
    exit_code: int | None = None
    termination_message: str | None = None
    unschedulable_message: str | None = None
    disruption_reason: str | None = None
    node_not_ready: bool = False
    containers: int = 1
    """Containers and init containers of the pod as it runs (webhook-injected ones
    included): the kubelet gives each 12288 // containers bytes of termination message."""
    image: str | None = None
    """The flow container's image: what wrote the run summary."""


@dataclass(frozen=True)
class AttemptObservation:
    """What the attempt is doing, as far as its pod shows."""

    phase: FlowRunPhase
    """PENDING (starting), RUNNING, or a terminal phase."""
    reason: str | None = None
    message: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    summary: RunSummary | None = None
    delete_pod: bool = False
    """True when the pod must be removed (stuck Pending): the kubelet would keep trying."""

    @property
    def ended(self) -> bool:
        """True when the attempt is over (its pod will not make further progress)."""
        return self.phase.terminal


def _container_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    for status in statuses:
        if status.get("name") == "flow":
            return dict(status)
    return dict(statuses[0]) if statuses else {}


def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for cond in pod.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def pod_facts(pod: Mapping[str, Any] | None) -> PodFacts:
    """Extract :class:`PodFacts` from a raw pod, or ``exists=False`` for ``None`` (404)."""
    if pod is None:
        return PodFacts(exists=False)
    meta = pod.get("metadata", {})
    status = pod.get("status", {})
    container = _container_status(pod)
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    running = state.get("running") or {}
    scheduled = _condition(pod, "PodScheduled")
    ready = _condition(pod, "Ready")
    disruption = _condition(pod, "DisruptionTarget")
    unschedulable = (
        scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
    )
    return PodFacts(
        exists=True,
        phase=status.get("phase"),
        created=parse_time(meta.get("creationTimestamp")),
        started=parse_time(running.get("startedAt") or terminated.get("startedAt")),
        finished=parse_time(terminated.get("finishedAt")),
        deleting=bool(meta.get("deletionTimestamp")),
        pod_reason=status.get("reason"),
        pod_message=status.get("message"),
        waiting_reason=waiting.get("reason"),
        waiting_message=waiting.get("message"),
        terminated_reason=terminated.get("reason"),
        exit_code=terminated.get("exitCode"),
        termination_message=terminated.get("message"),
        unschedulable_message=scheduled.get("message") if unschedulable else None,
        disruption_reason=disruption.get("reason") if disruption.get("status") == "True" else None,
        node_not_ready=ready.get("reason") == "NodeLost",
        containers=_container_count(pod),
        image=container.get("image") or _spec_image(pod, container.get("name")),
    )


def _spec_image(pod: Mapping[str, Any], name: Any) -> str | None:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == name:
            return str(spec.get("image") or "") or None
    return None


def _container_count(pod: Mapping[str, Any]) -> int:
    spec = pod.get("spec") or {}
    return max(len(spec.get("containers") or []) + len(spec.get("initContainers") or []), 1)


def _crashed(reason: str, message: str, *, finished: datetime | None = None,
             started: datetime | None = None, delete_pod: bool = False) -> AttemptObservation:
    return AttemptObservation(FlowRunPhase.CRASHED, reason, message, started=started,
                              finished=finished, delete_pod=delete_pod)


def _node_lost(facts: PodFacts) -> bool:
    return (
        facts.pod_reason in NODE_LOST_REASONS
        or facts.disruption_reason in NODE_LOST_DISRUPTIONS
        or facts.node_not_ready
    )


def _pending_crash(facts: PodFacts, pod_name: str) -> AttemptObservation:
    """The specific Crashed outcome of a pod that never started."""
    if facts.waiting_reason in IMAGE_PULL_REASONS:
        return _crashed(
            reasons.IMAGE_PULL_FAILED,
            f"pod {pod_name} could not pull its image ({facts.waiting_reason}: "
            f"{facts.waiting_message or 'no detail'}); check Flow.spec.image for a typo and "
            "that runTemplate.imagePullSecrets grant access to the registry",
            delete_pod=True,
        )
    if facts.waiting_reason == "CreateContainerConfigError":
        return _crashed(
            reasons.CREATE_CONTAINER_CONFIG_ERROR,
            f"pod {pod_name} could not start its container: "
            f"{facts.waiting_message or 'configuration error'}; create the missing Secret or "
            "ConfigMap, or fix runTemplate.env/envFrom/volumes",
            delete_pod=True,
        )
    if facts.unschedulable_message is not None:
        return _crashed(
            reasons.UNSCHEDULABLE,
            f"pod {pod_name} could not be scheduled: {facts.unschedulable_message}; lower "
            "runTemplate.resources requests, or fix nodeSelector/tolerations/affinity, or add "
            "capacity",
            delete_pod=True,
        )
    return _crashed(
        reasons.PENDING_TIMEOUT,
        f"pod {pod_name} did not start within pendingTimeoutSeconds "
        f"(waiting: {facts.waiting_reason or 'unknown'}); run `kubectl describe pod {pod_name}` "
        "to see why and raise Deployment.spec.pendingTimeoutSeconds if start-up is just slow",
        delete_pod=True,
    )


def _observe_pending(facts: PodFacts, pod_name: str, now: datetime,
                     pending_timeout: timedelta) -> AttemptObservation:
    if facts.waiting_reason in HOPELESS_WAITING_REASONS:
        return _pending_crash(facts, pod_name)
    if facts.deleting or _node_lost(facts):
        return _observe_lost(facts, pod_name)
    created = facts.created or now
    if now - created >= pending_timeout:
        return _pending_crash(facts, pod_name)
    return AttemptObservation(FlowRunPhase.PENDING)


def _observe_lost(facts: PodFacts, pod_name: str) -> AttemptObservation:
    if _node_lost(facts):
        return _crashed(
            reasons.NODE_LOST,
            f"the node running pod {pod_name} stopped responding or shut down; the work "
            "in progress was lost. Retries (Deployment.spec.retryOn: [Crashed]) rerun it",
            started=facts.started, finished=facts.finished, delete_pod=not facts.deleting,
        )
    return _crashed(
        reasons.POD_DELETED,
        f"pod {pod_name} was deleted outside Headwater; to stop a run set spec.cancel: true "
        "(or `headwater cancel`) so it is recorded as Cancelled",
        started=facts.started, finished=facts.finished,
    )


def _observe_summary(facts: PodFacts, pod_name: str) -> AttemptObservation:
    """The outcome of a pod whose container terminated, from its run summary."""
    text = (facts.termination_message or "").strip()
    if not text:
        return _crashed(
            reasons.MISSING_RUN_SUMMARY,
            f"pod {pod_name} exited with code {facts.exit_code} without writing a run summary; "
            "make sure Flow.spec.command runs `headwater execute` and the image has the "
            "Headwater SDK installed",
            started=facts.started, finished=facts.finished,
        )
    try:
        summary = decode_summary(text)
    except ValueError as exc:
        return _observe_unreadable(facts, pod_name, text, exc)
    return _from_summary(summary, pod_name, facts)


def kubelet_cut(message: str, containers: int) -> str | None:
    """How the kubelet shortened a termination message, if it visibly did.

    ``"end"``: the message fills its container's share of the pod's 12 KiB, whose *first*
    bytes the kubelet keeps (kubernetes pkg/kubelet/status/status_manager.go
    ``normalizeStatus``); a share of a few bytes more allows for a character split at
    the cut, which Go's JSON encoding turns into U+FFFD. ``"start"``: it is 4096 bytes and
    not a JSON object, the *last* 4096 bytes of a longer file (kuberuntime
    ``getTerminationMessage``, pkg/util/tail ``ReadAtMost``). None otherwise.
    """
    size = len(message.encode())
    share = POD_TERMINATION_MESSAGE_MAX_BYTES // max(containers, 1)
    if share < TERMINATION_MESSAGE_MAX_BYTES and size >= share - 3:
        return "end"
    if size == TERMINATION_MESSAGE_MAX_BYTES and not message.lstrip().startswith("{"):
        return "start"
    return None


def _observe_unreadable(facts: PodFacts, pod_name: str, text: str,
                        error: ValueError) -> AttemptObservation:
    """A termination message ``decode_summary`` refused: cut by the kubelet, or not a
    summary at all. A summary cut at its end still says how the run ended."""
    message = facts.termination_message or ""
    cut = kubelet_cut(message, facts.containers)
    share = POD_TERMINATION_MESSAGE_MAX_BYTES // facts.containers
    if cut == "end":
        why = (f"the kubelet cut pod {pod_name}'s run summary to its first {share} bytes "
               f"(the pod has {facts.containers} containers and init containers, which "
               "share 12 KiB of termination messages)")
        try:
            summary = decode_cut_summary(text)
        except ValueError as exc:
            return _crashed(
                reasons.INVALID_RUN_SUMMARY,
                f"{why}, and {exc}, so how the run ended is unknown; run fewer containers "
                "in the pod (runTemplate.podOverrides, injected sidecars) or write a "
                f"shorter summary. Start of the message: {text[:LOG_TAIL_CHARS]}",
                started=facts.started, finished=facts.finished,
            )
        observed = _from_summary(summary, pod_name, facts)
        note = (f" ({why}; task-run counts, assets or artifacts may be missing from the "
                "status)")
        return replace(observed, message=f"{observed.message or ''}{note}".lstrip())
    if cut == "start":
        return _crashed(
            reasons.INVALID_RUN_SUMMARY,
            f"pod {pod_name} exited with code {facts.exit_code} and wrote a termination "
            "message longer than 4096 bytes, of which the kubelet keeps only the last 4096, "
            "so it is not a run summary (the engine never writes more than 4096). Make sure "
            "Flow.spec.command runs `headwater execute` and nothing else writes "
            f"/dev/termination-log. End of the message: {text[-LOG_TAIL_CHARS:]}",
            started=facts.started, finished=facts.finished,
        )
    return _crashed(
        reasons.INVALID_RUN_SUMMARY,
        f"pod {pod_name} exited with code {facts.exit_code} and its termination message is "
        f"not a run summary ({error}); the flow probably failed before the engine started. "
        f"Last output: {text[-LOG_TAIL_CHARS:]}",
        started=facts.started, finished=facts.finished,
    )


def summary_status(summary: RunSummary) -> dict[str, Any]:
    """The ``FlowRun.status`` fields a run summary fills in (besides phase and reason)."""
    return {
        "taskRuns": summary.get("taskRuns", {}),
        "assets": list(summary.get("assets", [])),
        "artifacts": list(summary.get("artifacts", [])),
    }


def _from_summary(summary: RunSummary, pod_name: str, facts: PodFacts) -> AttemptObservation:
    # What the API server would refuse in the status write must not reach it: a 422 there
    # would come back on every try. A summary of the wrong types (not written by the SDK)
    # ends the attempt here, naming the field and the image that wrote it.
    problems = status_errors("FlowRun", {"message": summary["message"],
                                         **summary_status(summary)})
    if problems:
        return _crashed(
            reasons.INVALID_RUN_SUMMARY,
            f"pod {pod_name}'s run summary does not fit FlowRun.status: "
            f"{'; '.join(problems[:3])}. Image {facts.image or '(unknown)'} wrote it: run "
            "`headwater execute` (the Headwater SDK), or write the fields with the types "
            "the summary contract gives (taskRuns: counts by state, assets: "
            "[{key, version, upstream}], artifacts: [keys])",
            started=facts.started, finished=facts.finished,
        )
    state = summary["state"]
    message = summary["message"]
    phase, reason = {
        "Completed": (FlowRunPhase.COMPLETED, reasons.COMPLETED),
        "Failed": (FlowRunPhase.FAILED, reasons.FLOW_FAILED),
        "TimedOut": (FlowRunPhase.FAILED, reasons.TIMED_OUT),
        "Crashed": (FlowRunPhase.CRASHED, reasons.ENGINE_CRASHED),
        "Cancelled": (FlowRunPhase.CANCELLED, reasons.CANCELLED),
    }[state]
    if state == "Failed" and summary["reason"] == SUMMARY_REASON_INVALID_PARAMETERS:
        # The engine checked the parameters against the flow function's signature (a
        # Flow without parametersSchema cannot be checked before the pod): final, since a
        # retry would get the same parameters.
        reason = reasons.INVALID_PARAMETERS
    if phase == FlowRunPhase.CANCELLED:
        # Headwater never cancels outside the Cancelling phase (the caller handles that),
        # so a SIGTERM seen here came from something else: a deletion or a node shutdown.
        phase = FlowRunPhase.CRASHED
        reason = reasons.POD_TERMINATED
        message = (f"pod {pod_name} was stopped by a signal Headwater did not send "
                   f"({message}); check the node's events around the end time")
    return AttemptObservation(phase, reason, message, started=facts.started,
                              finished=facts.finished, summary=summary)


def _observe_terminated(facts: PodFacts, pod_name: str) -> AttemptObservation:
    if facts.terminated_reason == "OOMKilled":
        return _crashed(
            reasons.OOM_KILLED,
            f"pod {pod_name} ran out of memory (OOMKilled, exit {facts.exit_code}); raise "
            "runTemplate.resources.limits.memory (or Flow.spec.resources) or process less "
            "data per task",
            started=facts.started, finished=facts.finished,
        )
    if facts.pod_reason == "DeadlineExceeded":
        return AttemptObservation(
            FlowRunPhase.FAILED, reasons.TIMED_OUT,
            f"pod {pod_name} ran longer than timeoutSeconds and was stopped; raise "
            "timeoutSeconds on the FlowRun, Deployment or Flow if the run needs longer",
            started=facts.started, finished=facts.finished,
        )
    if facts.exit_code == EXIT_CANCELLED and not facts.termination_message:
        return _observe_lost(facts, pod_name)
    return _observe_summary(facts, pod_name)


def observe_attempt(pod: PodFacts, pod_name: str, now: datetime,
                    pending_timeout: timedelta) -> AttemptObservation:
    """Decide what the attempt running in ``pod`` is doing at ``now``.

    Called for attempts Headwater is *not* cancelling; cancellation has its own rules
    (:func:`headwater_operator.flowruns.machine.decide`).
    """
    if not pod.exists:
        return _observe_lost(pod, pod_name)
    if pod.pod_reason == "Evicted":
        return _crashed(
            reasons.EVICTED,
            f"pod {pod_name} was evicted by the kubelet ({pod.pod_message or 'node pressure'}); "
            "set runTemplate.resources requests close to real use so the pod is not the "
            "first to go, or use a priorityClassName",
            started=pod.started, finished=pod.finished,
        )
    if _node_lost(pod) and pod.terminated_reason is None:
        return _observe_lost(pod, pod_name)
    if pod.phase in ("Succeeded", "Failed") or pod.terminated_reason is not None:
        return _observe_terminated(pod, pod_name)
    if pod.phase == "Running":
        if pod.deleting or _node_lost(pod):
            return _observe_lost(pod, pod_name)
        return AttemptObservation(FlowRunPhase.RUNNING, started=pod.started)
    if pod.phase == "Unknown":
        return _observe_lost(PodFacts(exists=True, pod_reason="NodeLost", started=pod.started),
                             pod_name)
    return _observe_pending(pod, pod_name, now, pending_timeout)
