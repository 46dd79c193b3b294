"""A node for api tests that only need every flow-run pod to run and succeed.

Shared by the api tests that kill or fault the operator (``test_ha_replicas.py``,
``test_fault_storm.py``): what they check is the operator, so the pods simply succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube

MANAGED = "app.kubernetes.io/managed-by=headwater"
"""The label of every pod the operator creates."""


@contextlib.asynccontextmanager
async def kubelet_running_every_pod(kubelet: Kubelet, emulator: BackgroundEmulator,
                                    namespace: str) -> AsyncIterator[set[str]]:
    """While open, run each flow-run pod of ``namespace`` once and let it succeed; yields
    the names of the pods it ran."""
    seen: set[str] = set()

    async def node() -> None:
        while True:
            for pod in emulator.objects("pods", namespace, label_selector=MANAGED):
                name = pod["metadata"]["name"]
                if name not in seen and not pod["metadata"].get("deletionTimestamp"):
                    seen.add(name)
                    with contextlib.suppress(kube.NotFound):
                        await kubelet.run(pod)
                        await kubelet.succeed(pod)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(node())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
