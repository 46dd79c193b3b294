"""kopf wiring of the FlowRun lifecycle; the decisions live in :mod:`headwater_operator.flowruns`.

Only ``@kopf.on.event`` handlers: kopf then keeps no progress annotations and adds no
finalizer on FlowRuns, so the operator's only writes to a FlowRun are its status.
Each handler does one thing: make sure the run's tracker is running, or ring its doorbell.
They also hand the tracker what the watch delivered, so it reads nothing it already has:
each run's latest body (its :class:`~headwater_operator.flowruns.reconciler.RunView`) and
kopf's ``deployments_by_name``/``flows_by_name`` indexes (``Lifecycle.lookup``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from headwater.contract import GROUP, VERSION

from headwater_operator import kube
from headwater_operator.api import FlowRunPhase
from headwater_operator.flowruns.reconciler import JsonObject, Lifecycle, Lookup, is_active
from headwater_operator.flowruns.settings import DEFAULT_CONFIG_ERROR_GRACE
from headwater_operator.handlers.deployments import DeploymentFacts, Key, first
from headwater_operator.runner import CONFIG_ERROR_GRACE_KEY

MEMO_KEY = "flowrun_lifecycle"


@kopf.on.startup()
def create_lifecycle(*, memo: Any, **_: Any) -> None:
    """Create the operator's :class:`Lifecycle` in the operator-wide memo.

    It must exist before any object is seen: kopf hands each object a *shallow copy* of
    the memo, so only something created here is shared by every handler call.
    """
    grace = memo.get(CONFIG_ERROR_GRACE_KEY, DEFAULT_CONFIG_ERROR_GRACE)
    memo[MEMO_KEY] = Lifecycle(client=kube.get_client(), config_error_grace=grace)


def get_lifecycle(memo: Any) -> Lifecycle:
    """The operator's :class:`Lifecycle` (created by :func:`create_lifecycle`)."""
    lifecycle = memo[MEMO_KEY]
    assert isinstance(lifecycle, Lifecycle)
    return lifecycle


@kopf.on.cleanup()
async def stop_trackers(*, memo: Any, **_: Any) -> None:
    """Stop the trackers on shutdown; the next operator resumes every run."""
    lifecycle = memo.get(MEMO_KEY)
    if isinstance(lifecycle, Lifecycle):
        await lifecycle.stop()


def index_lookup(indexes: Mapping[str, Any]) -> Lookup:
    """A :data:`Lookup` over kopf's Deployment and Flow indexes (from handler kwargs).

    kopf's index objects are live: the lookup always sees the latest body kopf saw.
    """
    deployments: Mapping[Key, Any] = indexes["deployments_by_name"]
    flows: Mapping[Key, Any] = indexes["flows_by_name"]

    def lookup(resource: kube.Resource, namespace: str, name: str) -> JsonObject | None:
        if resource == kube.DEPLOYMENTS:
            facts: DeploymentFacts | None = first(deployments.get((namespace, name)))
            if facts is None:
                return None
            return _body("Deployment", namespace, name, facts.spec,
                         uid=facts.uid, generation=facts.generation)
        if resource == kube.FLOWS:
            spec = first(flows.get((namespace, name)))
            return None if spec is None else _body("Flow", namespace, name, spec)
        return None

    return lookup


def _body(kind: str, namespace: str, name: str, spec: Mapping[str, Any],
          **meta: Any) -> JsonObject:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
            "metadata": {"name": name, "namespace": namespace,
                         **{k: v for k, v in meta.items() if v is not None}},
            "spec": dict(spec)}


def _cancel_pending(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return bool(spec.get("cancel")) and status.get("phase") != FlowRunPhase.CANCELLING


@kopf.on.event(GROUP, VERSION, "flowruns")
async def flowrun_event(*, type: str | None, namespace: str | None, name: str,
                        body: Mapping[str, Any], spec: Mapping[str, Any],
                        status: Mapping[str, Any], memo: Any, **kwargs: Any) -> None:
    """Start the tracker of a non-terminal run; wake it when the user requests a cancel.

    The run's own status echoes need no wake-up: its tracker wrote them.
    """
    lifecycle = get_lifecycle(memo)
    lifecycle.lookup = index_lookup(kwargs)
    key = (namespace or "", name)
    if type == "DELETED" or not is_active(status):
        # Watch events arrive in order: after this one no older body of the run can come.
        lifecycle.forget(key)
        lifecycle.wakeups.wake(key)
        return
    lifecycle.saw(key, body)
    if key not in lifecycle.trackers or _cancel_pending(spec, status):
        lifecycle.ensure_tracker(*key)


@kopf.on.event(GROUP, VERSION, "deployments")
async def deployment_event(*, type: str | None, namespace: str | None, name: str,
                           meta: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """A Deployment's spec changed (paused, concurrency, …) or it was deleted: its runs
    look again. Its status churn (run counts, written for every run's phase) wakes nobody.
    """
    lifecycle = get_lifecycle(memo)
    key = (namespace or "", name)
    generation = meta.get("generation")
    if type == "DELETED":
        lifecycle.deployment_generations.pop(key, None)
    elif lifecycle.deployment_generations.get(key) == generation:
        return
    else:
        lifecycle.deployment_generations[key] = generation
    lifecycle.wakeups.wake_deployment(*key)
