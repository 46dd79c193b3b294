"""kopf wiring of Schedules: start the Schedule controller with the operator, stop it after.

The controller (:mod:`headwater_operator.scheduling.controller`) is not a set of kopf
handlers: it runs one task per Schedule fed by its own watches, because kopf's
per-event processing of the two watch events each tick causes was the largest share of
the operator's CPU with many frequent Schedules (see that module). kopf still runs
everything else, and this module starts and stops the controller with it.

Which namespaces it watches, and whether it must win a Lease first, come from the
operator's scope, which :func:`headwater_operator.runner.run_operator` puts in kopf's memo
(:data:`SCOPE_KEY`). A single replica (``standalone``) schedules at once; with kopf
peering (more than one replica), only the holder of the Lease ``<peering>-scheduler``
schedules, so a standby replica never writes a Schedule's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from typing import Any

import kopf

from headwater_operator import kube
from headwater_operator.leader import LeaderElection, default_identity
from headwater_operator.runner import SCOPE_KEY, OperatorScope
from headwater_operator.scheduling.controller import ScheduleController

TASK_KEY = "schedule_controller_task"
CONTROLLER_KEY = "schedule_controller"
LEASE_SUFFIX = "-scheduler"


@kopf.on.startup()
async def start_schedule_controller(*, memo: Any, **_: Any) -> None:
    """Start the controller (behind a Lease when peering) as a task of the operator."""
    scope = memo.get(SCOPE_KEY)
    if not isinstance(scope, OperatorScope):
        raise kopf.PermanentError(
            "the Schedule controller needs the operator's scope in kopf's memo; start the "
            "operator with headwater_operator.runner.run_operator (python -m "
            "headwater_operator), not with `kopf run`")
    client = kube.get_client()
    controller = ScheduleController(client, scope.namespaces)
    work: Coroutine[Any, Any, None]
    if scope.peering is None:
        work = controller.run()
    else:
        election = LeaderElection(
            client, namespace=lease_namespace(scope), name=scope.peering + LEASE_SUFFIX,
            identity=default_identity())
        work = election.run(controller.run)  # a fresh run each time it leads
    memo[CONTROLLER_KEY] = controller
    memo[TASK_KEY] = asyncio.create_task(work, name="schedule controller")


@kopf.on.cleanup()
async def stop_schedule_controller(*, memo: Any, **_: Any) -> None:
    """Stop the controller: each Schedule's task ends, the Lease (if any) is released."""
    task = memo.get(TASK_KEY)
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def lease_namespace(scope: OperatorScope) -> str:
    """Where the scheduler's Lease lives: the operator's own namespace if known.

    The chart sets ``POD_NAMESPACE`` from the downward API; otherwise the first watched
    namespace (a namespaced operator may only write there).
    """
    found = os.environ.get("POD_NAMESPACE")
    if found:
        return found
    if scope.namespaces:
        return scope.namespaces[0]
    raise kopf.PermanentError(
        "a cluster-wide operator with peering needs POD_NAMESPACE set (the namespace for "
        "the scheduler's Lease); the Helm chart sets it from the pod's namespace")
