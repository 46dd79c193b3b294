"""What a flow-run pod tells us, and what that means for the attempt it runs.

:func:`pod_facts` reads the handful of fields that matter from a raw core/v1 Pod;
:func:`observe_attempt` turns those facts into an :class:`AttemptObservation`: still
starting, running, or ended with a phase, a reason and a message that says what to do.

Both are pure: the caller passes the current time and the pending timeout, so the
"stuck Pending forever" and "stuck Running after the node died" cases are decided by
unit-testable code rather than by whatever the watch stream happened to deliver.

**A container the kubelet will not start.** The kubelet keeps a pod that cannot start
its container Pending and retries forever; which of its waiting reasons can heal decides
how long a run waits (:func:`start_blocker`):

* final — a new attempt would be refused the same way, so the run crashes at once and
  is not retried: ``InvalidImageName`` (kubernetes v1.32 ``pkg/kubelet/images/
  image_manager.go`` ``EnsureImageExists``: the image reference does not parse),
  ``ErrImageNeverPull`` (``imagePullPolicy: Never`` and the image is not on the node),
  and ``CreateContainerConfigError`` from the ``runAsNonRoot`` check (``pkg/kubelet/
  kuberuntime/security_context_others.go`` ``verifyRunAsNonRoot``, called by
  ``kuberuntime_container.go`` ``generateContainerConfig``: the image's user is root or
  not numeric, or ``runAsUser: 0``);
* healable — ``CreateContainerConfigError`` for a missing Secret or ConfigMap, or a
  missing key in one (``pkg/kubelet/kubelet_pods.go`` ``makeEnvironmentVariables``;
  ``secret "x" not found`` is the kubelet's secret manager's NotFound,
  ``pkg/kubelet/secret/secret_manager.go``): someone may still create it, and the
  kubelet retries the pod on its own, so the run waits ``configErrorGrace`` (operator
  setting, default 60 s, never past ``pendingTimeoutSeconds``) from the pod's creation;
* anything else (image pulls, unknown configuration errors, scheduling) waits the
  Deployment's ``pendingTimeoutSeconds``.

**Node loss, as Kubernetes ≥ 1.29 reports it** (:func:`node_loss`). No controller sets
a pod's ``status.reason`` to ``NodeLost`` any more (the node lifecycle controller's
``DeletePods``/``SetPodTerminationReason`` path went with the non-taint eviction mode).
What happens instead:

1. the node stops posting status: after the node monitor grace period the node
   lifecycle controller marks the node ``Ready=Unknown`` and each of its pods
   ``Ready=False`` while ``ContainersReady`` stays ``True`` (``pkg/controller/util/node/
   controller_utils.go`` ``MarkPodsNotReady``; only that controller produces this pair,
   the kubelet always moves both). Not terminal: the node may come back;
2. the node gets the ``node.kubernetes.io/unreachable:NoExecute`` taint; when the pod's
   toleration runs out (300 s by default) taint eviction sets the ``DisruptionTarget``
   condition, reason ``DeletionByTaintManager``, and deletes the pod gracefully
   (``pkg/controller/tainteviction/taint_eviction.go`` ``addConditionAndDeletePod``).
   The deletion never completes while the kubelet is gone;
3. if the Node object is deleted (the cloud's instance is gone), pod GC sets phase
   ``Failed`` and ``DisruptionTarget`` reason ``DeletionByPodGC`` and force-deletes the
   pod; on a node tainted ``node.kubernetes.io/out-of-service`` it force-deletes
   terminating pods after only setting phase ``Failed`` (``pkg/controller/podgc/
   gc_controller.go`` ``gcOrphaned``, ``gcTerminating``, ``markFailedAndDeletePod``);
4. a node that shuts down gracefully has its kubelet end the pod: phase ``Failed``,
   reason ``Terminated`` (``NodeShutdown`` for a pod it refused to admit) and
   ``DisruptionTarget`` reason ``TerminationByKubelet`` (``pkg/kubelet/nodeshutdown/``).

So a pod whose node is lost is recognised by a ``DisruptionTarget`` condition, by a
terminal phase no kubelet wrote (its container still shows ``running``), by the node
shutdown reasons, or — once it is gone — by what its last known state showed: the
caller passes the last body the watch delivered (:func:`gone_pod_facts`), since a pod
force-deleted by pod GC is usually gone before anyone reads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from headwater.contract import (
    EXIT_CANCELLED,
    POD_TERMINATION_MESSAGE_MAX_BYTES,
    SOURCE_CONTAINER_NAME,
    SUMMARY_REASON_INVALID_PARAMETERS,
    TERMINATION_MESSAGE_MAX_BYTES,
    RunSummary,
    decode_cut_summary,
    decode_summary,
)

from headwater_operator import reasons
from headwater_operator.api.enums import FlowRunPhase
from headwater_operator.flowruns.settings import DEFAULT_CONFIG_ERROR_GRACE
from headwater_operator.kubetime import parse_time

IMAGE_PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                                "ErrImageNeverPull"})
NODE_SHUTDOWN_REASONS = frozenset({"Terminated", "NodeShutdown"})
"""``Pod.status.reason`` the kubelet's graceful node shutdown sets (kubernetes v1.32
``pkg/kubelet/nodeshutdown/nodeshutdown_manager_linux.go``: a pod it stopped, a pod it
refused to admit)."""
TAINT_EVICTION = "DeletionByTaintManager"
POD_GC = "DeletionByPodGC"
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
    containers: int = 1
    """Containers and init containers of the pod as it runs (webhook-injected ones
    included): the kubelet gives each 12288 // containers bytes of termination message."""
    image: str | None = None
    """The flow container's image: what wrote the run summary."""
    disruption_message: str | None = None
    container_running: bool = False
    """The container's last reported state is ``running``."""
    node_stopped_reporting: bool = False
    """``Ready=False`` with ``ContainersReady=True``: the node lifecycle controller's mark
    on the pods of a node that stopped posting status (the kubelet moves both)."""
    source_exit_code: int | None = None
    """Exit code of the init container that fetched ``Flow.spec.source``, once it ended."""
    source_message: str | None = None
    """Its termination message: what it fetched (JSON), or why it could not."""


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
    final: bool = False
    """True when a new attempt would end the same way (a refused image or security
    context): the run is not retried, whatever ``retryOn`` says."""
    wake_at: datetime | None = None
    """While PENDING: when the pod's wait runs out (pending timeout or the grace for a
    missing Secret/ConfigMap), so the caller looks again then."""

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


def _source_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """The last termination of the source init container (``lastState`` too: under a
    restart policy other than Never the kubelet restarts a failed init container)."""
    for status in pod.get("status", {}).get("initContainerStatuses") or []:
        if status.get("name") == SOURCE_CONTAINER_NAME:
            state = status.get("state") or {}
            return dict(state.get("terminated")
                        or (status.get("lastState") or {}).get("terminated") or {})
    return {}


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
    source = _source_status(pod)
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    running = state.get("running") or {}
    scheduled = _condition(pod, "PodScheduled")
    ready = _condition(pod, "Ready")
    containers_ready = _condition(pod, "ContainersReady")
    disruption = _condition(pod, "DisruptionTarget")
    disrupted = disruption.get("status") == "True"
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
        disruption_reason=disruption.get("reason") if disrupted else None,
        disruption_message=disruption.get("message") if disrupted else None,
        container_running=bool(state.get("running") is not None and not terminated),
        node_stopped_reporting=(ready.get("status") == "False"
                                and containers_ready.get("status") == "True"
                                and ready.get("reason") != "ReadinessGatesNotReady"),
        containers=_container_count(pod),
        image=container.get("image") or _spec_image(pod, container.get("name")),
        source_exit_code=source.get("exitCode"),
        source_message=source.get("message"),
    )



def _spec_image(pod: Mapping[str, Any], name: Any) -> str | None:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == name:
            return str(spec.get("image") or "") or None
    return None


def _container_count(pod: Mapping[str, Any]) -> int:
    spec = pod.get("spec") or {}
    return max(len(spec.get("containers") or []) + len(spec.get("initContainers") or []), 1)



def gone_pod_facts(last_seen: Mapping[str, Any] | None) -> PodFacts:
    """Facts of a pod the API server no longer has (404), from its last known body.

    The body of the watch's ``DELETED`` event (or the last ``MODIFIED``) still shows why
    it went, e.g. pod GC's ``DisruptionTarget`` before its force-deletion.
    """
    if last_seen is None:
        return PodFacts(exists=False)
    return replace(pod_facts(last_seen), exists=False)


def _crashed(reason: str, message: str, *, finished: datetime | None = None,
             started: datetime | None = None, delete_pod: bool = False,
             final: bool = False) -> AttemptObservation:
    return AttemptObservation(FlowRunPhase.CRASHED, reason, message, started=started,
                              finished=finished, delete_pod=delete_pod, final=final)


# --- node loss ---------------------------------------------------------------------------
def node_loss(facts: PodFacts) -> str | None:
    """What Kubernetes reported about the pod's node going away (a phrase), or None.

    Only facts that end the pod count: a node that merely stopped reporting may come
    back, and Kubernetes itself waits for the pod's toleration before evicting it; that
    mark counts once the pod is being deleted or is gone (deleted on a dead node).
    """
    if facts.disruption_reason == TAINT_EVICTION:
        return ("had a NoExecute taint the pod does not tolerate (usually node.kubernetes.io/"
                "unreachable: the node stopped responding), so Kubernetes evicted the pod "
                "(DisruptionTarget: DeletionByTaintManager)")
    if facts.disruption_reason == POD_GC:
        return ("no longer exists, so Kubernetes' pod garbage collector force-deleted the pod "
                f"(DisruptionTarget: DeletionByPodGC: {facts.disruption_message or 'PodGC'})")
    if facts.pod_reason in NODE_SHUTDOWN_REASONS:
        return (f"shut down ({facts.pod_message or 'graceful node shutdown'}), and its kubelet "
                "stopped the pod")
    if facts.phase in ("Failed", "Succeeded") and facts.container_running:
        # Only the kubelet ends a container; a terminal phase over a running container
        # was written by pod GC for a node that is out of service or gone.
        return ("is out of service, so Kubernetes' pod garbage collector marked the pod "
                "Failed and force-deleted it")
    if facts.phase == "Unknown":
        return "stopped reporting the pod's state (phase Unknown)"
    if facts.node_stopped_reporting and (facts.deleting or not facts.exists):
        return ("stopped reporting (the node controller marked the pod not Ready), and the "
                "pod was deleted before it could finish there")
    return None


def _node_lost(facts: PodFacts, pod_name: str, what: str) -> AttemptObservation:
    return _crashed(
        reasons.NODE_LOST,
        f"the node running pod {pod_name} {what}; the work in progress was lost. Nothing is "
        "wrong with the flow: with retries (Deployment.spec.retries, retryOn: [Crashed]) "
        "another attempt runs it on a healthy node",
        started=facts.started, finished=facts.finished,
    )


def _observe_lost(facts: PodFacts, pod_name: str) -> AttemptObservation:
    """The pod is gone or going, not by Headwater's hand: its node, or someone else."""
    what = node_loss(facts)
    if what is not None:
        return _node_lost(facts, pod_name, what)
    return _crashed(
        reasons.POD_DELETED,
        f"pod {pod_name} was deleted outside Headwater; to stop a run set spec.cancel: true "
        "(or `headwater cancel`) so it is recorded as Cancelled",
        started=facts.started, finished=facts.finished,
    )


# --- a container the kubelet does not start ----------------------------------------------
@dataclass(frozen=True)
class StartBlocker:
    """Why the kubelet does not start the container, and whether waiting can help."""

    reason: str
    """The Headwater reason the run crashes with."""
    advice: str
    """What the user does about it (appended to the kubelet's own message)."""
    final: bool
    """True: crash at once and never retry. False: wait the config-error grace."""


_RUN_AS_ROOT = "container has runAsNonRoot and image will run as root"
_NON_NUMERIC_USER = "container has runAsNonRoot and image has non-numeric user"
_INVALID_USER_ID = "container has runAsNonRoot and image has an invalid user id"
_ROOT_RUN_AS_USER = "container's runAsUser breaks non-root policy"
_MISSING_KEY = re.compile(r"couldn't find key (?P<key>.+) in (?P<kind>Secret|ConfigMap) "
                          r"(?P<namespace>[^/]+)/(?P<name>.+)")
_MISSING_OBJECT = re.compile(r'(?P<kind>secret|configmap) "(?P<name>[^"]+)" not found')


def _image_user_advice() -> str:
    return ("Flow-run pods run with runAsNonRoot: true; build the image with a numeric "
            "non-root USER (e.g. `USER 1000`), or set Deployment.spec.runTemplate."
            "securityContext.runAsUser to a non-zero UID")


def _config_blocker(message: str) -> StartBlocker | None:
    if message.startswith((_RUN_AS_ROOT, _NON_NUMERIC_USER, _INVALID_USER_ID)):
        return StartBlocker(reasons.CREATE_CONTAINER_CONFIG_ERROR, _image_user_advice(), True)
    if message.startswith(_ROOT_RUN_AS_USER):
        return StartBlocker(
            reasons.CREATE_CONTAINER_CONFIG_ERROR,
            "runAsUser: 0 contradicts runAsNonRoot: true; remove runAsUser: 0 from "
            "Deployment.spec.runTemplate.securityContext/podSecurityContext or set a "
            "non-zero UID", True)
    if (found := _MISSING_KEY.search(message)) is not None:
        return StartBlocker(
            reasons.CREATE_CONTAINER_CONFIG_ERROR,
            f"add key {found['key']} to {found['kind']} {found['namespace']}/{found['name']}, "
            "or fix the valueFrom reference in Deployment.spec.runTemplate.env (or Flow."
            "spec.env), or mark it optional: true", False)
    if (found := _MISSING_OBJECT.search(message)) is not None:
        kind = "Secret" if found["kind"] == "secret" else "ConfigMap"
        return StartBlocker(
            reasons.CREATE_CONTAINER_CONFIG_ERROR,
            f"create {kind} {found['name']} in the run's namespace, or fix the reference "
            "in Deployment.spec.runTemplate.env/envFrom (or Flow.spec.env), or mark it "
            "optional: true", False)
    return None


def start_blocker(waiting_reason: str | None, waiting_message: str | None) -> StartBlocker | None:
    """Classify a waiting container (see the module docstring); None: just wait."""
    if waiting_reason == "InvalidImageName":
        return StartBlocker(
            reasons.IMAGE_PULL_FAILED,
            "Flow.spec.image is not a valid image reference; fix it (a lowercase "
            "repository, then :tag or @sha256:digest)", True)
    if waiting_reason == "ErrImageNeverPull":
        return StartBlocker(
            reasons.IMAGE_PULL_FAILED,
            "the image is not on the node and imagePullPolicy is Never; load the image "
            "onto the nodes or set Flow.spec.imagePullPolicy to IfNotPresent", True)
    if waiting_reason == "CreateContainerConfigError" and waiting_message:
        return _config_blocker(waiting_message)
    return None


def _blocked_crash(blocker: StartBlocker, facts: PodFacts,
                   pod_name: str) -> AttemptObservation:
    waited = "" if blocker.final else " and it did not appear within the grace period"
    never = "; not retried: a new pod would be refused the same way" if blocker.final else ""
    return _crashed(
        blocker.reason,
        f"pod {pod_name} cannot start its container: the kubelet reports "
        f"{facts.waiting_reason}: {facts.waiting_message or 'no detail'}{waited}. "
        f"{blocker.advice}{never}",
        delete_pod=True, final=blocker.final,
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
                     pending_timeout: timedelta,
                     config_error_grace: timedelta) -> AttemptObservation:
    blocker = start_blocker(facts.waiting_reason, facts.waiting_message)
    if blocker is not None and blocker.final:
        return _blocked_crash(blocker, facts, pod_name)
    if facts.deleting or node_loss(facts) is not None:
        return _observe_lost(facts, pod_name)
    limit = pending_timeout if blocker is None else min(config_error_grace, pending_timeout)
    deadline = (facts.created or now) + limit
    if now < deadline:
        return AttemptObservation(FlowRunPhase.PENDING, wake_at=deadline)
    if blocker is not None:
        return _blocked_crash(blocker, facts, pod_name)
    return _pending_crash(facts, pod_name)


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


def summary_validator() -> Callable[[str, Mapping[str, Any]], list[str]]:
    """The check of a run summary against the FlowRun status schema
    (:func:`headwater_operator.api.validation.status_errors`), imported on first use.

    Its module brings cel-python and lark (a CEL parser; ~70 ms of imports, more on a
    busy machine), which importing this module or the CLI should not pay. The operator
    does need it, at every run's end: the FlowRun controller calls this when it is built,
    so that the first run to end does not hold the event loop (and every other run's
    step) while it is imported.
    """
    from headwater_operator.api.validation import status_errors

    return status_errors


def _from_summary(summary: RunSummary, pod_name: str, facts: PodFacts) -> AttemptObservation:
    # What the API server would refuse in the status write must not reach it: a 422 there
    # would come back on every try. A summary of the wrong types (not written by the SDK)
    # ends the attempt here, naming the field and the image that wrote it.
    problems = summary_validator()("FlowRun", {"message": summary["message"],
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


def _source_failed(facts: PodFacts, pod_name: str) -> AttemptObservation:
    """The init container could not fetch the code. Under ``restartPolicy: Never`` the
    kubelet fails the pod at once (kubernetes pkg/kubelet/kubelet_pods.go ``getPhase``:
    a failed init container with no restart ends the pod); under another policy it is
    restarted, and the run ends all the same: the cause is in the Flow, not the node."""
    detail = (facts.source_message or "").strip()[-LOG_TAIL_CHARS:] or "no message"
    return _crashed(
        reasons.SOURCE_FETCH_FAILED,
        f"pod {pod_name} could not fetch the flow's code (init container "
        f"{SOURCE_CONTAINER_NAME!r} exited {facts.source_exit_code}): {detail}. Fix "
        "Flow.spec.source (url, ref, path) or the Secret its credentials.secretRef names",
        delete_pod=facts.phase not in ("Succeeded", "Failed"),
    )


def observe_attempt(pod: PodFacts, pod_name: str, now: datetime,
                    pending_timeout: timedelta,
                    config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE,
                    ) -> AttemptObservation:
    """Decide what the attempt running in ``pod`` is doing at ``now``.

    Called for attempts Headwater is *not* cancelling; cancellation has its own rules
    (:func:`headwater_operator.flowruns.machine.decide`). ``config_error_grace`` bounds
    the wait for a missing Secret/ConfigMap (see :func:`start_blocker`).
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
    lost = node_loss(pod)
    if lost is not None and pod.phase != "Succeeded":
        # A container that exited 0 finished its work before the node went.
        return _node_lost(pod, pod_name, lost)
    if pod.source_exit_code not in (None, 0) and pod.terminated_reason is None:
        return _source_failed(pod, pod_name)
    if pod.phase in ("Succeeded", "Failed") or pod.terminated_reason is not None:
        return _observe_terminated(pod, pod_name)
    if pod.phase == "Running":
        if pod.deleting:
            return _observe_lost(pod, pod_name)
        return AttemptObservation(FlowRunPhase.RUNNING, started=pod.started)
    return _observe_pending(pod, pod_name, now, pending_timeout, config_error_grace)
