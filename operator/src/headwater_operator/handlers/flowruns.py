"""kopf wiring of the FlowRun lifecycle; the decisions live in :mod:`headwater_operator.flowruns`.

Only ``@kopf.on.event`` handlers: kopf then keeps no progress annotations and adds no
finalizer on FlowRuns, so the operator's only writes to a FlowRun are its status.
Each handler does one thing: make sure the run's tracker is running, or ring its doorbell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
from headwater.contract import GROUP, VERSION

from headwater_operator import kube
from headwater_operator.api import FlowRunPhase
from headwater_operator.flowruns.reconciler import Lifecycle, is_active

MEMO_KEY = "flowrun_lifecycle"


@kopf.on.startup()
def create_lifecycle(*, memo: Any, **_: Any) -> None:
    """Create the operator's :class:`Lifecycle` in the operator-wide memo.

    It must exist before any object is seen: kopf hands each object a *shallow copy* of
    the memo, so only something created here is shared by every handler call.
    """
    memo[MEMO_KEY] = Lifecycle(client=kube.get_client())


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


def _cancel_pending(spec: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    return bool(spec.get("cancel")) and status.get("phase") != FlowRunPhase.CANCELLING


@kopf.on.event(GROUP, VERSION, "flowruns")
async def flowrun_event(*, type: str | None, namespace: str | None, name: str,
                        spec: Mapping[str, Any], status: Mapping[str, Any], memo: Any,
                        **_: Any) -> None:
    """Start the tracker of a non-terminal run; wake it when the user requests a cancel.

    The run's own status echoes need no wake-up: its tracker wrote them.
    """
    lifecycle = get_lifecycle(memo)
    key = (namespace or "", name)
    if type == "DELETED" or not is_active(status):
        lifecycle.wakeups.wake(key)
        return
    if key not in lifecycle.trackers or _cancel_pending(spec, status):
        lifecycle.ensure_tracker(*key)


@kopf.on.event(GROUP, VERSION, "deployments")
async def deployment_event(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """A Deployment changed (paused, concurrency, …): its waiting runs look again."""
    get_lifecycle(memo).wakeups.wake_deployment(namespace or "", name)
