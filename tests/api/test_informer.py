"""The informer over HTTP: LIST + WATCH against the emulated API server.

What a controller built on :class:`headwater_operator.informer.Informer` relies on: the
initial list arrives before ``synced``, later changes arrive in order, label selectors
hold, a watch the server ends is resumed without duplicates or losses, a failing handler
does not stop the feed, and cancelling leaves no task or connection behind.
(Gone/relist and retry behaviour are in tests/unit/operator/test_informer_unit.py.)
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from headwater_operator import kube as k
from headwater_operator.devcluster.emulator import BackgroundEmulator
from headwater_operator.informer import Informer

NS = "default"
WaitFor = Callable[..., Awaitable[Any]]
Seen = list[tuple[str, str, str]]
"""(type, name, resourceVersion) per delivered event."""


def _schedule(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"deploymentRef": {"name": "d"}, "cron": "*/5 * * * *"}}


class Feed:
    """An informer on Schedules running as a task, recording what it delivers."""

    def __init__(self, kube: k.Kube, **options: Any) -> None:
        self.seen: Seen = []
        self.informer = Informer(kube, k.SCHEDULES, namespace=NS, on_event=self.record,
                                 **options)
        self.task: asyncio.Task[None] | None = None
        self.before: set[asyncio.Task[Any]] = set()

    def record(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.seen.append((kind, meta["name"], meta.get("resourceVersion", "")))

    def of(self, name: str) -> list[str]:
        """The event types delivered for ``name``, in order."""
        return [kind for kind, seen_name, _ in self.seen if seen_name == name]

    async def start(self) -> Feed:
        self.before = asyncio.all_tasks()
        self.task = asyncio.create_task(self.informer.run(), name="informer")
        async with asyncio.timeout(10):
            await self.informer.synced.wait()
        return self

    async def stop(self) -> None:
        assert self.task is not None
        assert not self.task.done(), "the informer stopped by itself"
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def feeds(kube: k.Kube) -> AsyncIterator[Callable[..., Feed]]:
    """``feeds(**Informer options)``: a Feed, cancelled at the end of the test."""
    made: list[Feed] = []

    def make(**options: Any) -> Feed:
        made.append(feed := Feed(kube, **options))
        return feed

    yield make
    for feed in made:
        if feed.task is not None and not feed.task.done():
            await feed.stop()
    # Close pooled connections on this loop, before it ends (no unclosed-socket warnings).
    await k.aclose_transports()


async def test_initial_list_is_delivered_as_added_before_synced(
    kube: k.Kube, feeds: Callable[..., Feed],
) -> None:
    for name in ("a", "b", "c"):
        await kube.create(k.SCHEDULES, _schedule(name), namespace=NS)
    feed = feeds()
    delivered_when_synced: list[Seen] = []
    feed.informer.synced.clear()
    waiter = asyncio.create_task(feed.informer.synced.wait())
    waiter.add_done_callback(lambda _: delivered_when_synced.append(list(feed.seen)))
    await feed.start()
    await waiter
    assert sorted((kind, name) for kind, name, _ in delivered_when_synced[0]) == [
        ("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]
    assert len(feed.informer) == 3


async def test_changes_after_sync_are_delivered_in_order(
    kube: k.Kube, feeds: Callable[..., Feed], wait_for: WaitFor,
) -> None:
    feed = await feeds().start()
    created = await kube.create(k.SCHEDULES, _schedule("s1"), namespace=NS)
    patched = await kube.patch(k.SCHEDULES, "s1", {"spec": {"suspend": True}}, namespace=NS)
    status = await kube.patch_status(k.SCHEDULES, "s1", {"status": {"active": []}},
                                     namespace=NS)
    await kube.delete(k.SCHEDULES, "s1", namespace=NS)
    await wait_for(lambda: "DELETED" in feed.of("s1"), timeout=10)
    assert feed.seen[:3] == [
        ("ADDED", "s1", created["metadata"]["resourceVersion"]),
        ("MODIFIED", "s1", patched["metadata"]["resourceVersion"]),
        ("MODIFIED", "s1", status["metadata"]["resourceVersion"]),
    ]
    assert feed.of("s1") == ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]
    assert len(feed.informer) == 0


async def test_label_selector_limits_the_feed_and_tracks_objects_entering_and_leaving(
    kube: k.Kube, feeds: Callable[..., Feed], wait_for: WaitFor,
) -> None:
    await kube.create(k.SCHEDULES, _schedule("ours", {"team": "a"}), namespace=NS)
    await kube.create(k.SCHEDULES, _schedule("theirs", {"team": "b"}), namespace=NS)
    feed = await feeds(label_selector={"team": "a"}).start()
    assert feed.of("ours") == ["ADDED"]
    await kube.create(k.SCHEDULES, _schedule("later", {"team": "a"}), namespace=NS)
    await kube.patch(k.SCHEDULES, "theirs", {"metadata": {"labels": {"team": "a"}}},
                     namespace=NS)
    await kube.patch(k.SCHEDULES, "ours", {"metadata": {"labels": {"team": "b"}}},
                     namespace=NS)
    await kube.patch(k.SCHEDULES, "ours", {"spec": {"suspend": True}}, namespace=NS)
    # A change of an object outside the selection, then one inside as a fence.
    await kube.create(k.SCHEDULES, _schedule("fence", {"team": "a"}), namespace=NS)
    await wait_for(lambda: feed.of("fence"), timeout=10)
    assert feed.of("later") == ["ADDED"]
    assert feed.of("theirs") == ["ADDED"]  # entered the selection
    assert feed.of("ours") == ["ADDED", "DELETED"]  # left it; later changes are not ours
    assert len(feed.informer) == 3


async def test_a_watch_the_server_ends_is_resumed_without_duplicates_or_losses(
    kube: k.Kube, emulator: BackgroundEmulator, feeds: Callable[..., Feed],
    wait_for: WaitFor,
) -> None:
    await kube.create(k.SCHEDULES, _schedule("before"), namespace=NS)
    feed = await feeds(watch_timeout_seconds=1).start()
    names = ["before"]
    for round_ in range(2):
        watches = emulator.requests.count(verb="watch")
        # Wait until the server has ended the current watch and the informer re-watched.
        await wait_for(lambda n=watches: emulator.requests.count(verb="watch") > n,
                       timeout=10)
        names.append(f"after-{round_}")
        await kube.create(k.SCHEDULES, _schedule(names[-1]), namespace=NS)
        await kube.patch(k.SCHEDULES, names[-1], {"spec": {"suspend": True}}, namespace=NS)
    await wait_for(lambda: feed.of(names[-1]) == ["ADDED", "MODIFIED"], timeout=10)
    assert collections.Counter(name for _, name, _ in feed.seen) == {
        "before": 1, "after-0": 2, "after-1": 2}
    assert emulator.requests.count(verb="list") == 1  # resumed from versions, never relisted
    assert [kind for kind, _, _ in feed.seen] == ["ADDED"] + ["ADDED", "MODIFIED"] * 2


async def test_a_failing_handler_is_logged_and_the_feed_goes_on(
    kube: k.Kube, feeds: Callable[..., Feed], wait_for: WaitFor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = feeds()
    record = feed.record

    def fragile(kind: str, obj: dict[str, Any]) -> None:
        record(kind, obj)
        if obj["metadata"]["name"] == "poison":
            raise RuntimeError("handler bug")

    feed.informer.on_event = fragile
    await feed.start()
    with caplog.at_level(logging.ERROR, logger="headwater_operator.informer"):
        await kube.create(k.SCHEDULES, _schedule("poison"), namespace=NS)
        await kube.create(k.SCHEDULES, _schedule("fine"), namespace=NS)
        await wait_for(lambda: feed.of("fine") == ["ADDED"], timeout=10)
    assert feed.of("poison") == ["ADDED"]
    assert any("default/poison" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_cancel_stops_the_informer_and_closes_its_watch(
    kube: k.Kube, feeds: Callable[..., Feed], wait_for: WaitFor,
    emulator: BackgroundEmulator, monkeypatch: pytest.MonkeyPatch,
) -> None:
    responses: list[aiohttp.ClientResponse] = []
    transport = k.transport(kube.sync.client)
    send = transport.request

    async def recording(*args: Any, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await send(*args, **kwargs)
        responses.append(response)
        return response

    monkeypatch.setattr(transport, "request", recording)
    feed = await feeds().start()
    await kube.create(k.SCHEDULES, _schedule("s1"), namespace=NS)
    await wait_for(lambda: feed.of("s1"), timeout=10)
    await feed.stop()
    assert responses, "the informer made no requests through the transport"
    assert all(response.closed for response in responses)
    leftover = {task for task in asyncio.all_tasks() - feed.before
                if task is not asyncio.current_task() and not task.done()}
    assert not leftover
