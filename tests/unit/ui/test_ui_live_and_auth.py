"""Server-sent changes from the watches, the client-auth sign-in, and who writes."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import kubernetes.client
from headwater_operator import kube
from headwater_operator.ui import auth
from headwater_operator.ui import state as ui_state
from headwater_operator.ui.state import ChangeHub, UiState
from uifixtures import FakeKube, fill, flowrun, ui_client


async def test_events_stream_a_change_per_watched_change() -> None:
    state = UiState()
    async with ui_client(state) as client:
        response = await client.get("/events")
        assert response.headers["Content-Type"] == "text/event-stream"
        assert await response.content.readuntil(b"\n\n") == b": connected\n\n"
        state.apply("FlowRun", "ADDED", flowrun("nightly-1"))
        state.apply("Event", "ADDED", {
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "FlowRun", "name": "nightly-1"}})
        first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        second = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert len(state.hub) == 1
        response.close()
    assert first == (b'event: change\ndata: {"kind": "FlowRun", "namespace": "default", '
                     b'"name": "nightly-1"}\n\n')
    assert json.loads(second.split(b"data: ", 1)[1]) == {
        "kind": "Event", "namespace": "default", "name": "e1", "involvedKind": "FlowRun",
        "involvedName": "nightly-1"}
    assert state.flowruns.get("default", "nightly-1") is not None


def test_a_subscriber_that_falls_behind_is_dropped() -> None:
    hub = ChangeHub()
    slow, fast = hub.subscribe(), hub.subscribe()
    for index in range(ui_state.SUBSCRIBER_QUEUE):
        hub.publish({"kind": "FlowRun", "namespace": "a", "name": str(index)})
        fast.queue.get_nowait()
    assert len(hub) == 2
    hub.publish({"kind": "FlowRun", "namespace": "a", "name": "one too many"})
    assert slow.closed
    assert not fast.closed
    assert len(hub) == 1


async def test_client_mode_signs_in_with_an_httponly_strict_cookie_and_writes_with_it(
        tmp_path: Path) -> None:
    state = fill(UiState(), ("FlowRun", flowrun("nightly-1", phase="Running")))
    service_account = FakeKube()
    async with ui_client(state, mode="client", reader=service_account) as client:
        page = await (await client.get("/runs/default/nightly-1")).text()
        assert 'data-testid="cancel"' not in page
        assert "Sign in to make changes" in page
        login = await (await client.get("/login?next=/runs/default/nightly-1")).text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert token is not None
        origin = f"http://{client.host}:{client.port}"
        signed_in = await client.post("/login", data={
            "csrf_token": token.group(1), "token": "user-token-1",
            "next": "/runs/default/nightly-1"}, headers={"Origin": origin},
            allow_redirects=False)
        cookie = signed_in.headers["Set-Cookie"]
        after = await (await client.get("/runs/default/nightly-1")).text()
        assert 'data-testid="cancel"' in after
        assert "user-token-1" not in after
    assert signed_in.status == 303
    assert signed_in.headers["Location"] == "/runs/default/nightly-1"
    assert cookie.startswith(f"{auth.TOKEN_COOKIE}=user-token-1;")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


async def test_the_writer_of_client_mode_carries_only_the_browsers_token() -> None:
    base = kubernetes.client.Configuration()
    base.host = "https://kubernetes.default.svc"
    base.ssl_ca_cert = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    base.api_key = {"authorization": "Bearer service-account-token"}
    base.cert_file = "/client.crt"
    access = auth.Access("client", FakeKube(), base)

    class Request:
        def __init__(self) -> None:
            self.cookies = {auth.TOKEN_COOKIE: "user-token-1"}

    async with access.writer(Request()) as writer:  # type: ignore[arg-type]
        config = writer.client.configuration
        assert config.host == base.host
        assert config.ssl_ca_cert == base.ssl_ca_cert
        assert config.cert_file is None
        assert config.get_api_key_with_prefix("BearerToken", alias="authorization") == (
            "Bearer user-token-1")
        assert writer is not access.reader


def test_client_for_token_refuses_a_malformed_token() -> None:
    base = kubernetes.client.Configuration()
    base.host = "https://k"
    for bad in ("", "two words", "line\nbreak"):
        try:
            kube.client_for_token(bad, base)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
