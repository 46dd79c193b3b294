"""The informer over HTTP: LIST + WATCH against the emulated API server.

What a controller built on :class:`headwater_operator.informer.Informer` relies on: the
initial list arrives before ``synced``, later changes arrive in order, label selectors
hold, a watch the server ends is resumed without duplicates or losses, a failing handler
does not stop the feed, and cancelling leaves no task or connection behind.
The paged LIST (``page_size``) is checked here end to end: every object once, the watch
from the list's version, a relist after Gone, and a continue token expiring mid-list.
(Gone/relist and retry behaviour are in tests/unit/operator/test_informer_unit.py.)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from headwater_dev.emulator import BackgroundEmulator
from headwater_operator import kube as k
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
    transport = k.transport(kube.client)
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


# --- paged LIST ----------------------------------------------------------------------------
def _schedules_spec(emulator: BackgroundEmulator) -> Any:
    store = emulator.emulator.store
    return emulator.call(store.resource, "headwater.dev", "v1alpha1", "schedules")


async def test_a_paged_list_delivers_every_object_once_then_watches_from_its_version(
    kube: k.Kube, emulator: BackgroundEmulator, feeds: Callable[..., Feed],
    wait_for: WaitFor,
) -> None:
    names = [f"s{index}" for index in range(7)]
    for name in names:
        await kube.create(k.SCHEDULES, _schedule(name), namespace=NS)
    feed = await feeds(page_size=2).start()
    assert emulator.requests.count(verb="list") == 4  # 2 + 2 + 2 + 1
    assert sorted((kind, name) for kind, name, _ in feed.seen) == [
        ("ADDED", name) for name in names]
    assert len(feed.informer) == 7
    await kube.patch(k.SCHEDULES, "s3", {"spec": {"suspend": True}}, namespace=NS)
    await kube.create(k.SCHEDULES, _schedule("later"), namespace=NS)
    await wait_for(lambda: feed.of("later"), timeout=10)
    # Had the watch not started from the list's version, it would replay every object.
    assert feed.of("s3") == ["ADDED", "MODIFIED"]
    assert collections.Counter(name for _, name, _ in feed.seen) == {
        **dict.fromkeys(names, 1), "s3": 2, "later": 1}


async def test_a_paged_relist_after_gone_reports_what_changed_while_away(
    kube: k.Kube, emulator: BackgroundEmulator, feeds: Callable[..., Feed],
    wait_for: WaitFor,
) -> None:
    for index in range(5):
        await kube.create(k.SCHEDULES, _schedule(f"s{index}"), namespace=NS)
    feed = await feeds(page_size=2).start()
    await kube.create(k.SCHEDULES, _schedule("fence"), namespace=NS)
    await wait_for(lambda: feed.of("fence"), timeout=10)  # the watch is connected
    await feed.stop()
    # Away: changes the informer does not see, then compaction past its version.
    emulator.call(setattr, emulator.emulator.store, "_history_limit", 1)
    await kube.delete(k.SCHEDULES, "s1", namespace=NS)
    await kube.patch(k.SCHEDULES, "s3", {"spec": {"suspend": True}}, namespace=NS)
    await kube.create(k.SCHEDULES, _schedule("s9"), namespace=NS)
    lists, seen_before = emulator.requests.count(verb="list"), len(feed.seen)
    mark = emulator.requests.mark()
    feed.task = asyncio.create_task(feed.informer.run())  # same informer: resumes (Gone)
    await wait_for(lambda: feed.of("s1") == ["ADDED", "DELETED"], timeout=10)
    relisted = [(kind, name) for kind, name, _ in feed.seen[seen_before:]]
    # fence s0 | s2 s3 | s4 s9: the deletion is reported after the last page.
    assert relisted == [("MODIFIED", "s3"), ("ADDED", "s9"), ("DELETED", "s1")]
    assert emulator.requests.count(verb="list") - lists == 3
    # The resume was a watch, answered with an in-stream 410 ERROR event; then the relist.
    assert [record.verb for record in emulator.requests.since(mark)][:2] == ["watch", "list"]
    assert len(feed.informer) == 6  # fence s0 s2 s3 s4 s9


async def test_a_continue_token_that_expires_mid_list_restarts_the_list_once(
    kube: k.Kube, emulator: BackgroundEmulator, feeds: Callable[..., Feed],
) -> None:
    for index in range(5):
        await kube.create(k.SCHEDULES, _schedule(f"s{index}"), namespace=NS)
    spec = _schedules_spec(emulator)
    store = emulator.emulator.store
    sleeps: list[float] = []

    async def no_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    feed = feeds(page_size=2, sleep=no_sleep)
    record = feed.record

    def compact_after_first_page(kind: str, obj: dict[str, Any]) -> None:
        record(kind, obj)
        if len(feed.seen) == 2:  # page one (s0, s1) delivered; the next is a continue
            # Between pages: s0 (delivered) goes, s1 (delivered) changes, history shrinks.
            emulator.call(setattr, store, "_history_limit", 1)
            emulator.call(store.delete, spec, NS, "s0")
            emulator.call(store.patch, spec, NS, "s1", "merge", {"spec": {"suspend": True}})

    feed.informer.on_event = compact_after_first_page
    await feed.start()
    assert [(kind, name) for kind, name, _ in feed.seen] == [
        ("ADDED", "s0"), ("ADDED", "s1"),  # the first attempt's page one
        ("MODIFIED", "s1"), ("ADDED", "s2"), ("ADDED", "s3"), ("ADDED", "s4"),  # restart
        ("DELETED", "s0")]
    assert emulator.requests.count(verb="list", code=410) == 1
    assert emulator.requests.count(verb="list", code=200) == 1 + 2  # then s1 s2 | s3 s4
    assert sleeps == []  # restarted at once by the client, not retried by the informer
    assert len(feed.informer) == 4


async def test_the_clients_paged_list_restarts_once_on_an_expired_token_then_fails(
    kube: k.Kube, emulator: BackgroundEmulator,
) -> None:
    for index in range(5):
        await kube.create(k.SCHEDULES, _schedule(f"s{index}"), namespace=NS)
    items, version = await kube.list_with_version(k.SCHEDULES, namespace=NS, page_size=2)
    assert [item["metadata"]["name"] for item in items] == [f"s{i}" for i in range(5)]
    assert version == str(emulator.emulator.store.resource_version)
    emulator.call(setattr, emulator.emulator.store, "_history_limit", 1)

    async def compact() -> None:  # two writes: the history no longer reaches the token
        for value in (True, False):
            await kube.patch(k.SCHEDULES, "s4", {"spec": {"suspend": value}}, namespace=NS)

    pages = kube.list_pages(k.SCHEDULES, namespace=NS, page_size=2)
    async with contextlib.aclosing(pages):
        first, first_version = await anext(pages)
        await compact()
        again, again_version = await anext(pages)  # the list started over
        assert [o["metadata"]["name"] for o in again] == [o["metadata"]["name"] for o in first]
        assert int(again_version) > int(first_version)
        await compact()
        with pytest.raises(k.Gone):
            await anext(pages)
    assert emulator.requests.count(verb="list", code=410) == 2
