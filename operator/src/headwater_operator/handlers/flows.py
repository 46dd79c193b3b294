"""Flow status (``Ready`` + ``observedGeneration``) and the Deployments that depend on it.

A Flow's verdict (:func:`readiness.check_flow`) depends on its spec alone, so each
change is judged on the spot and written through the ``status`` subresource only when
the status would change. Deployments that reference the Flow (found through the
``deployments_by_flow`` index, never by listing) are re-evaluated after every Flow
change, including its deletion, so their ``Ready`` follows without delay.

As for Deployments, an ``@kopf.on.event`` handler is used so that kopf writes no
annotations and no finalizer on the user's Flow.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from headwater.contract import GROUP, VERSION

from headwater_operator import kube, metrics
from headwater_operator.handlers.deployments import (
    DeploymentState,
    Key,
    announce_ready_change,
    bind,
    evaluate,
    object_reference,
)
from headwater_operator.readiness import flow_status, status_patch

_log = logging.getLogger(__name__)


@kopf.index(GROUP, VERSION, "flows")
def flows_by_name(
    *, namespace: str | None, name: str, spec: Mapping[str, Any], **_: Any
) -> dict[Key, dict[str, Any]]:
    """Each Flow's spec by ``(namespace, name)`` (Deployments are judged against it)."""
    return {(namespace or "", name): copy.deepcopy(dict(spec))}


@kopf.on.event(GROUP, VERSION, "flows")
async def flow_changed(
    *, type: str, namespace: str | None, name: str, meta: Mapping[str, Any],
    spec: Mapping[str, Any], status: Mapping[str, Any], memo: Any, **kwargs: Any,
) -> None:
    """Judge the Flow, write its status if it changed, then re-evaluate its Deployments."""
    state = bind(memo, kwargs)
    namespace = namespace or ""
    if type != "DELETED":
        try:
            await write_flow_status(state, namespace, name, meta=meta, spec=spec, status=status)
        except Exception:
            # Logged and counted; the next event for this Flow (or an operator restart,
            # which replays every Flow) tries again.
            metrics.observe_reconcile_error("Flow")
            _log.exception("writing the status of Flow %s/%s failed", namespace, name)
    for deployment in list(kwargs["deployments_by_flow"].get((namespace, name), ())):
        await evaluate(state, (namespace, deployment), prune=False)


async def write_flow_status(
    state: DeploymentState, namespace: str, name: str, *, meta: Mapping[str, Any],
    spec: Mapping[str, Any], status: Mapping[str, Any],
) -> None:
    """Patch ``Flow.status`` when the desired status differs; post an Event on changes."""
    desired = flow_status(
        name, spec, generation=meta.get("generation"), current=status, now=state.clock()
    )
    patch = status_patch(status, desired)
    if not patch:
        return
    try:
        await state.client.patch_status(kube.FLOWS, name, {"status": patch}, namespace=namespace)
    except kube.NotFound:
        return  # deleted meanwhile
    body = object_reference(kube.FLOWS, "Flow", namespace, name, str(meta.get("uid")))
    announce_ready_change(body, status, desired)
