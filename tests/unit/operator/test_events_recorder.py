"""The controllers' Event poster keeps the promises of :mod:`headwater_operator.events`.

Events are core/v1 Events as client-go's recorder writes them, with a message cut to the
API server's 1,024 *bytes* on a character boundary; posting never waits, never raises,
runs a bounded number of requests at once and drops (with one warning per burst) what
does not fit in the bounded backlog. The client is a stand-in that records creates and
holds them until the test lets them through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from headwater_operator import kube
from headwater_operator.events import (
    COMPONENT,
    EVENT_MESSAGE_MAX_BYTES,
    EventRecorder,
    event_body,
    event_message,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=UTC)
SCHEDULE = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": "hourly", "namespace": "team-a", "uid": "s1",
                         "resourceVersion": "7", "labels": {"x": "y"}},
            "spec": {"interval": "1h"}, "status": {"active": []}}


class HoldingKube(kube.Kube):
    """Records Event creates; each waits for ``gate`` (open unless a test closes it) and
    then raises the error set for its reason in ``errors``, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[tuple[str, dict[str, Any], str | None]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.errors: dict[str, Exception] = {}
        self.attempts: list[str] = []
        """The reason of every Event whose create was sent."""

    async def create(self, resource: kube.Resource, body: Mapping[str, Any], *,
                     namespace: str | None = None) -> kube.JsonObject:
        self.attempts.append(body["reason"])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            if body["reason"] in self.errors:
                raise self.errors[body["reason"]]
            self.created.append((resource.plural, dict(body), namespace))
            return dict(body)
        finally:
            self.in_flight -= 1


def recorder(client: HoldingKube, **options: Any) -> EventRecorder:
    return EventRecorder(client, now=lambda: NOW, **options)


async def spin(turns: int = 20) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


# --- the Event -------------------------------------------------------------------------------
def test_an_event_is_a_core_v1_event_about_the_object() -> None:
    body = event_body(SCHEDULE, "Warning", "MissedTicks", "3 ticks were missed", NOW)
    assert body == {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "hourly.", "namespace": "team-a"},
        "involvedObject": {"apiVersion": "headwater.dev/v1alpha1", "kind": "Schedule",
                           "name": "hourly", "namespace": "team-a", "uid": "s1"},
        "type": "Warning",
        "reason": "MissedTicks",
        "message": "3 ticks were missed",
        "source": {"component": COMPONENT},
        "reportingComponent": "headwater-operator",
        "firstTimestamp": "2026-03-01T12:00:00Z",
        "lastTimestamp": "2026-03-01T12:00:00Z",
        "count": 1,
    }


def test_an_object_without_a_namespace_gets_its_event_in_default() -> None:
    body = event_body({"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}},
                      "Normal", "Seen", "hello", NOW)
    assert body["metadata"]["namespace"] == "default"
    assert body["involvedObject"]["namespace"] == "default"


def test_a_message_within_1024_bytes_is_kept_whole() -> None:
    assert event_message("") == ""
    assert event_message("x" * EVENT_MESSAGE_MAX_BYTES) == "x" * 1024
    exactly = "é" * 512  # 1,024 bytes
    assert event_message(exactly) == exactly


@pytest.mark.parametrize(("text", "kept"), [
    ("x" * 5000, "x" * 1024),
    ("é" * 1000, "é" * 512),                 # two bytes each: 512 fit
    ("a" + "é" * 600, "a" + "é" * 511),      # the 512th would straddle byte 1,024
    ("ab" + "€" * 400, "ab" + "€" * 340),    # three bytes each: 341 would need 1,025
    ("🙂" * 300, "🙂" * 256),                 # four bytes each
    ("abc" + "🙂" * 300, "abc" + "🙂" * 255),
])
def test_a_longer_message_is_cut_to_1024_bytes_on_a_character_boundary(
        text: str, kept: str) -> None:
    # The API server counts bytes (Go's len), so 1,024 characters of "é" are refused.
    cut = event_message(text)
    assert cut == kept
    assert len(cut.encode()) <= EVENT_MESSAGE_MAX_BYTES
    assert len(text[:len(cut) + 1].encode()) > EVENT_MESSAGE_MAX_BYTES, "the longest that fits"
    assert event_body(SCHEDULE, "Warning", "R", text, NOW)["message"] == kept


# --- posting ---------------------------------------------------------------------------------
async def test_post_returns_at_once_and_the_event_is_created_in_the_background() -> None:
    client = HoldingKube()
    client.gate.clear()
    events = recorder(client)
    events.post(SCHEDULE, "Normal", "RunCreated", "created run hourly-1")
    assert client.created == []  # nothing awaited by post()
    await spin()
    assert client.in_flight == 1
    client.gate.set()
    await spin()
    assert client.created == [("events", event_body(SCHEDULE, "Normal", "RunCreated",
                                                    "created run hourly-1", NOW), "team-a")]
    assert events.posted == 1


async def test_at_most_max_concurrent_events_are_posted_at_once() -> None:
    client = HoldingKube()
    client.gate.clear()
    events = recorder(client, max_concurrent=2)
    for n in range(6):
        events.post(SCHEDULE, "Normal", "RunCreated", f"run {n}")
    await spin()
    assert client.in_flight == 2
    client.gate.set()
    await events.close(grace=5)
    assert client.most_in_flight == 2
    assert [body["message"] for _, body, _ in client.created] == [f"run {n}" for n in range(6)]


async def test_beyond_the_pending_bound_events_are_dropped_with_one_warning_per_burst(
        caplog: pytest.LogCaptureFixture) -> None:
    client = HoldingKube()
    client.gate.clear()
    events = recorder(client, max_pending=3)
    with caplog.at_level(logging.WARNING, "headwater_operator.events"):
        for n in range(10):
            events.post(SCHEDULE, "Normal", "RunCreated", f"run {n}")
        assert events.dropped == 7
        first_burst = [r.getMessage() for r in caplog.records]
        assert len(first_burst) == 1
        assert "3 Events are waiting to be posted; dropping new ones" in first_burst[0]

        client.gate.set()
        await spin()
        assert [body["message"] for _, body, _ in client.created] == [
            "run 0", "run 1", "run 2"]
        client.gate.clear()
        for n in range(10, 20):  # a second burst: accepted until full, then one warning
            events.post(SCHEDULE, "Normal", "RunCreated", f"run {n}")
        client.gate.set()
        await events.close(grace=5)
    assert events.dropped == 14
    assert len(caplog.records) == 2
    assert events.posted == 6


async def test_a_failed_post_is_logged_not_raised_nor_retried(
        caplog: pytest.LogCaptureFixture) -> None:
    client = HoldingKube()
    client.errors["MissedTicks"] = kube.KubeError(
        403, "Forbidden",
        'events is forbidden: User "system:serviceaccount:headwater:operator" cannot create')
    events = recorder(client)
    with caplog.at_level(logging.WARNING, "headwater_operator.events"):
        events.post(SCHEDULE, "Warning", "MissedTicks", "3 ticks were missed")
        events.post(SCHEDULE, "Normal", "RunCreated", "created run hourly-1")
        await events.close(grace=5)
    assert [body["reason"] for _, body, _ in client.created] == ["RunCreated"]
    assert client.attempts == ["MissedTicks", "RunCreated"], "sent once, not retried"
    assert events.posted == 1
    [warning] = caplog.records
    message = warning.getMessage()
    assert "could not post Event MissedTicks on Schedule hourly" in message
    assert "cannot create" in message


async def test_any_failure_of_a_post_is_logged_not_raised(
        caplog: pytest.LogCaptureFixture) -> None:
    client = HoldingKube()
    client.errors["RunCreated"] = ConnectionResetError("connection reset by peer")
    events = recorder(client)
    with caplog.at_level(logging.WARNING, "headwater_operator.events"):
        events.post(SCHEDULE, "Normal", "RunCreated", "created run hourly-1")
        await events.close(grace=5)
    assert "connection reset by peer" in caplog.records[0].getMessage()
    assert events.posted == 0


async def test_close_waits_for_pending_events_then_drops_the_rest() -> None:
    client = HoldingKube()
    client.gate.clear()
    events = recorder(client)
    events.post(SCHEDULE, "Normal", "RunCreated", "created run hourly-1")
    await spin()
    await events.close(grace=0.01)  # the API server does not answer in time
    assert client.in_flight == 0, "the late post was cancelled"
    assert client.created == []
    await events.close(grace=0.01)  # nothing left: at once
