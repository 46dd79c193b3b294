"""The client's request gate (:class:`kube.RequestGate`): at most so many requests in
flight, and of those waiting, deferred ones (a Schedule's status write, its Events) only
after every other.

The gate is driven directly: a task per request, the gate's one slot held by the test
until the requests queue, then released; each task records when it got through.
"""

from __future__ import annotations

import asyncio

import pytest
from headwater_operator import kube


async def settle() -> None:
    """Let every ready task run up to its next wait (here: the gate)."""
    for _ in range(5):
        await asyncio.sleep(0)


def request(gate: kube.RequestGate, name: str, through: list[str], *,
            deferred: bool = False) -> asyncio.Task[None]:
    async def send() -> None:
        async with gate:
            through.append(name)
            await asyncio.sleep(0)  # the request in flight

    if not deferred:
        return asyncio.ensure_future(send())
    with kube.deferred_requests():  # the task inherits the context it is started in
        return asyncio.ensure_future(send())


async def test_waiting_requests_go_in_arrival_order_deferred_ones_last() -> None:
    gate = kube.RequestGate(1)
    await gate.acquire()
    through: list[str] = []
    tasks = [request(gate, "status a", through, deferred=True),
             request(gate, "create a", through),
             request(gate, "status b", through, deferred=True),
             request(gate, "create b", through)]
    await settle()
    assert through == []  # all wait for the slot

    gate.release()
    await asyncio.gather(*tasks)

    assert through == ["create a", "create b", "status a", "status b"]
    assert gate.free == 1


async def test_a_deferred_request_goes_at_once_when_a_slot_is_free() -> None:
    gate = kube.RequestGate(2)
    through: list[str] = []
    await gate.acquire()
    await request(gate, "status", through, deferred=True)
    assert through == ["status"]


async def test_a_cancelled_waiter_loses_no_slot_and_holds_up_no_one() -> None:
    gate = kube.RequestGate(1)
    await gate.acquire()
    through: list[str] = []
    gone = request(gate, "cancelled while waiting", through)
    handed = request(gate, "cancelled as it was handed the slot", through)
    last = request(gate, "last", through, deferred=True)
    await settle()
    gone.cancel()
    await settle()

    gate.release()  # the slot goes to `handed`, which is cancelled before it runs
    handed.cancel()
    await settle()

    assert through == ["last"]
    await last
    for task in (gone, handed):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert gate.free == 1  # every slot back
