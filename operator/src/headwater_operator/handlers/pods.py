"""Watch flow-run pods, and only those, and wake the tracker of the run that owns each.

Only Headwater's pods are watched, filtered by the API server: ``runner.build_settings``
sets kopf's ``settings.watching.label_selectors`` for ``v1/pods`` to
``app.kubernetes.io/managed-by=headwater`` (kopf ≥ 1.44), and kopf passes it as
``labelSelector`` on the initial list and on every watch request. Unrelated pods are
therefore never sent to the operator, so its memory and API traffic do not grow with
them. The ``labels=`` filter on the handler below is only a second line of defence: on
its own it would be client-side, and kopf would still receive and parse every pod of
the cluster.

The handler reads nothing from the API: the pod's owner reference names the FlowRun, and
the FlowRun's tracker re-reads the pod itself when it wakes. It keeps the body it was
given (:meth:`Lifecycle.saw_pod`), the last one too (a ``DELETED`` event's): a pod that
pod GC force-deleted after its node went away is gone when the tracker looks, and only
that body still says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from headwater import contract

from headwater_operator.handlers.flowruns import get_lifecycle


def owning_flowrun(meta: Mapping[str, Any]) -> str | None:
    """Name of the FlowRun that controls a pod, from its owner references."""
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "FlowRun" and owner.get("apiVersion") == contract.API_VERSION:
            name = owner.get("name")
            return str(name) if name else None
    return None


@kopf.on.event("v1", "pods", labels={contract.LABEL_MANAGED_BY: contract.MANAGED_BY_VALUE})
async def pod_event(*, namespace: str | None, meta: Mapping[str, Any],
                    body: Mapping[str, Any], memo: Any, **_: Any) -> None:
    """Something happened to a flow-run pod: its FlowRun's tracker looks again."""
    flowrun = owning_flowrun(meta)
    if flowrun is not None:
        lifecycle = get_lifecycle(memo)
        key = (namespace or "", flowrun)
        if key in lifecycle.trackers:  # only runs still tracked: memory stays bounded
            lifecycle.saw_pod(key, body)
        lifecycle.wakeups.wake(key)
