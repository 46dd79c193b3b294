"""The emulator's fault plan over HTTP: answers that apply nothing, delays, resets, and
watches cut mid-stream or expired on resume — what a client sees from a real API server.

Requests here are raw ``aiohttp`` calls, not Headwater's client: what is tested is the
server side (the client's reaction is tests/api/test_retries_client.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from headwater_dev import faults
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.faults import FaultPlan

NS = "default"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def _configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"k": "v"}}


async def _create(session: aiohttp.ClientSession, emulator: BackgroundEmulator,
                  name: str) -> tuple[int, Any, Mapping[str, str]]:
    async with session.post(emulator.url + CONFIGMAPS, json=_configmap(name)) as response:
        text = await response.text()
        body = json.loads(text) if response.content_type == "application/json" else text
        return response.status, body, response.headers


@pytest.mark.parametrize("fault", [
    faults.throttled(), faults.too_many_requests(), faults.internal_error(),
    faults.service_unavailable(), faults.gateway_timeout()])
async def test_an_injected_error_answers_instead_and_applies_nothing(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
    fault: faults.StatusAnswer | faults.TextAnswer,
) -> None:
    emulator.install_faults(FaultPlan()).add(fault, verb="create", resource="configmaps")
    code, body, headers = await _create(session, emulator, "c1")
    assert code == fault.code
    if isinstance(fault, faults.StatusAnswer):
        assert body == fault.status()
    else:
        assert body == "Too many requests, please try again later.\n"
    if fault.retry_after:
        assert headers["Retry-After"] == str(fault.retry_after)
    assert emulator.object("configmaps", "c1") is None
    assert emulator.requests.count(verb="create", resource="configmaps", code=code) == 1
    # times=1: the next one is served.
    assert (await _create(session, emulator, "c1"))[0] == 201
    assert emulator.object("configmaps", "c1") is not None


async def test_an_injected_error_on_a_patch_leaves_the_object_unchanged(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    await _create(session, emulator, "c1")
    before = emulator.object("configmaps", "c1")
    emulator.install_faults(FaultPlan()).add(
        faults.internal_error(), verb="patch", name="c1")
    async with session.patch(
            f"{emulator.url}{CONFIGMAPS}/c1", json={"data": {"k": "changed"}},
            headers={"Content-Type": "application/merge-patch+json"}) as response:
        assert response.status == 500
    assert emulator.object("configmaps", "c1") == before


async def test_a_delay_serves_the_request_late(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    emulator.install_faults(FaultPlan()).add(
        faults.Delay(0.4), verb="create")
    started = time.monotonic()
    assert (await _create(session, emulator, "c1"))[0] == 201
    assert time.monotonic() - started >= 0.4
    assert emulator.object("configmaps", "c1") is not None


async def test_a_reset_before_serving_drops_the_connection_and_applies_nothing(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    emulator.install_faults(FaultPlan()).add(
        faults.Reset(), verb="create")
    with pytest.raises(aiohttp.ClientOSError, match="reset by peer"):
        await _create(session, emulator, "c1")
    assert emulator.object("configmaps", "c1") is None
    assert emulator.requests.count(verb="create", code=0) == 1


async def test_a_reset_after_serving_applies_the_write_and_loses_the_answer(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    emulator.install_faults(FaultPlan()).add(
        faults.Reset(after_serving=True), verb="create")
    with pytest.raises(aiohttp.ClientError):
        await _create(session, emulator, "c1")
    assert emulator.object("configmaps", "c1") is not None
    code, body, _ = await _create(session, emulator, "c1")
    assert (code, body["reason"]) == (409, "AlreadyExists")


async def _watch_lines(session: aiohttp.ClientSession, url: str) -> tuple[list[Any], str]:
    """The watch events read before the stream ended, and how it ended."""
    events: list[Any] = []
    try:
        async with session.get(url) as response:
            assert response.status == 200
            async for line in response.content:
                events.append(json.loads(line))
    except aiohttp.ClientPayloadError:
        return events, "cut"
    return events, "ended"


async def test_a_watch_is_cut_after_some_events(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    for name in ("c1", "c2", "c3"):
        await _create(session, emulator, name)
    emulator.install_faults(FaultPlan()).add(
        faults.CutWatch(after_events=2), resource="configmaps")
    url = f"{emulator.url}{CONFIGMAPS}?watch=true&timeoutSeconds=5"
    events, ending = await _watch_lines(session, url)
    assert ending == "cut"
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "c1"), ("ADDED", "c2")]
    # The plan fired once: the next watch sees everything and ends at timeoutSeconds.
    events, ending = await _watch_lines(
        session, f"{emulator.url}{CONFIGMAPS}?watch=true&timeoutSeconds=1")
    assert (len(events), ending) == (3, "ended")


def _create_in_one_step(emulator: BackgroundEmulator, names: list[str]) -> None:
    """Store the ConfigMaps in one step of the emulator's loop: their watch events are
    all queued before any watch sends one (a burst of writes)."""
    store = emulator.emulator.store
    spec = store.resource("", "v1", "configmaps")

    def create_all() -> None:
        for name in names:
            store.create(spec, NS, _configmap(name))
    emulator.call(create_all)


async def _live_watch(session: aiohttp.ClientSession, emulator: BackgroundEmulator,
                      names: list[str]) -> tuple[list[Any], str]:
    """A watch from now (after an existing object's version), and the events it reads
    while ``names`` are created together."""
    await _create(session, emulator, "before")
    stored = emulator.object("configmaps", "before")
    assert stored is not None
    url = (f"{emulator.url}{CONFIGMAPS}?watch=true&timeoutSeconds=2"
           f"&resourceVersion={stored['metadata']['resourceVersion']}")
    reading = asyncio.ensure_future(_watch_lines(session, url))
    await asyncio.sleep(0.5)  # the watch is open and waiting for events
    _create_in_one_step(emulator, names)
    return await reading


async def test_events_queued_together_all_arrive_in_order(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    names = [f"c{index}" for index in range(5)]
    events, ending = await _live_watch(session, emulator, names)
    assert ending == "ended"
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", name) for name in names]


async def test_a_cut_falls_after_its_events_even_when_more_are_queued(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    emulator.install_faults(FaultPlan()).add(
        faults.CutWatch(after_events=2), verb="watch", resource="configmaps")
    events, ending = await _live_watch(session, emulator, ["c1", "c2", "c3", "c4"])
    assert ending == "cut"
    assert [e["object"]["metadata"]["name"] for e in events] == ["c1", "c2"]


async def test_a_watch_resume_can_be_expired_as_after_compaction(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    await _create(session, emulator, "c1")
    stored = emulator.object("configmaps", "c1")
    assert stored is not None
    version = stored["metadata"]["resourceVersion"]
    emulator.install_faults(FaultPlan()).add(
        faults.ExpireWatch(), resource="configmaps")
    # A watch without a resourceVersion is no resume: not expired, the rule does not fire.
    events, _ = await _watch_lines(
        session, f"{emulator.url}{CONFIGMAPS}?watch=true&timeoutSeconds=1")
    assert [e["type"] for e in events] == ["ADDED"]
    events, ending = await _watch_lines(
        session, f"{emulator.url}{CONFIGMAPS}?watch=true&resourceVersion={version}")
    assert ending == "ended"
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith(f"too old resource version: {version} (")


async def test_a_seeded_probability_picks_the_same_requests_every_time(
    emulator: BackgroundEmulator, session: aiohttp.ClientSession,
) -> None:
    failed: list[list[int]] = []
    for _ in range(2):
        emulator.install_faults(FaultPlan(seed=42)).add(
            faults.service_unavailable(), verb="get", probability=0.5, times=None)
        codes = []
        for _ in range(20):
            async with session.get(f"{emulator.url}{CONFIGMAPS}/missing") as response:
                codes.append(response.status)
        failed.append([index for index, code in enumerate(codes) if code == 503])
        assert set(codes) == {404, 503}
    assert failed[0] == failed[1]
    emulator.remove_faults()
    async with session.get(f"{emulator.url}{CONFIGMAPS}/missing") as response:
        assert response.status == 404
