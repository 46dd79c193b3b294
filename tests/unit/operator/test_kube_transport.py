"""The async client's aiohttp transport: credentials, retries, errors, wire format, sessions.

A small aiohttp server on a random local port plays the API server, so the requests
are real HTTP; the clock of the credential cache is injected.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import kubernetes.client
import pytest
from headwater_operator import kube

Handler = Callable[[aiohttp.web.Request], Any]


class FakeApi:
    """Records each request and answers it with the next scripted response."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[aiohttp.web.StreamResponse | Handler] = []
        self.peers: set[Any] = set()

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        self.peers.add(request.transport.get_extra_info("peername") if request.transport
                       else None)
        self.requests.append({
            "method": request.method, "path": request.path, "query": dict(request.query),
            "headers": dict(request.headers), "body": await request.read()})
        answer = self.answers.pop(0) if self.answers else aiohttp.web.json_response({})
        if callable(answer):
            result: aiohttp.web.StreamResponse = await answer(request)
            return result
        return answer


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, str]]:
    fake = FakeApi()
    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await kube.aclose_transports()
        await runner.cleanup()


def _client(server: str, token: str | None = "t1") -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration(host=server)
    if token:
        config.api_key["authorization"] = f"Bearer {token}"
    return kubernetes.client.ApiClient(config)


@pytest.fixture
def observed() -> Iterator[list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []

    def observer(verb: str, code: int) -> None:
        seen.append((verb, code))

    kube.add_request_observer(observer)
    yield seen
    kube.remove_request_observer(observer)


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response(
        {"kind": "Status", "status": "Failure", "reason": reason, "message": message},
        status=code)


async def test_requests_carry_token_user_agent_and_patch_content_types(
    api: tuple[FakeApi, str],
) -> None:
    fake, server = api
    client = _client(server)
    client.user_agent = "headwater-test/1"
    k = kube.Kube(client)
    await k.patch(kube.FLOWRUNS, "r1", {"spec": {"cancel": True}}, namespace="ns")
    await k.patch_status(kube.FLOWRUNS, "r1", [kube.jp_test("/status/phase", "Running")],
                         namespace="ns")
    await k.list(kube.PODS, namespace="ns", label_selector={"b": "2", "a": "1"})
    merge, json_patch, listing = fake.requests
    assert merge["headers"]["Authorization"] == "Bearer t1"
    assert merge["headers"]["User-Agent"] == "headwater-test/1"
    assert merge["headers"]["Content-Type"] == "application/merge-patch+json"
    assert merge["path"] == "/apis/headwater.dev/v1alpha1/namespaces/ns/flowruns/r1"
    assert json_patch["headers"]["Content-Type"] == "application/json-patch+json"
    assert json_patch["path"].endswith("/flowruns/r1/status")
    assert listing["query"] == {"labelSelector": "a=1,b=2"}


@pytest.mark.parametrize(("code", "reason", "error"), [
    (404, "NotFound", kube.NotFound),
    (409, "AlreadyExists", kube.AlreadyExists),
    (409, "Conflict", kube.Conflict),
    (422, "Invalid", kube.Invalid),
    (500, "InternalError", kube.KubeError),
])
async def test_failures_raise_typed_errors_with_the_server_message(
    api: tuple[FakeApi, str], observed: list[tuple[str, int]], code: int, reason: str,
    error: type[kube.KubeError],
) -> None:
    fake, server = api
    fake.answers.append(_status(code, reason, f"flowruns \"r1\" says {reason}"))
    with pytest.raises(error, match=f'flowruns "r1" says {reason}') as caught:
        # No retries: a 500 is retried otherwise (test_retries_client.py).
        await kube.Kube(_client(server), retry=kube.NO_RETRIES).create(
            kube.FLOWRUNS, {"metadata": {"name": "r1"}}, namespace="ns")
    assert type(caught.value) is error
    assert caught.value.status == code
    assert observed == [("create", code)]


async def test_a_401_is_retried_once_with_a_rotated_token(
    api: tuple[FakeApi, str], observed: list[tuple[str, int]],
) -> None:
    fake, server = api
    client = _client(server, token="old")
    fake.answers.append(_status(401, "Unauthorized", "token expired"))

    # The token file was rotated after the header was cached.
    k = kube.Kube(client)
    await kube.transport(client).credentials.header()
    client.configuration.api_key["authorization"] = "Bearer new"
    assert await k.get(kube.FLOWRUNS, "r1", namespace="ns") == {}
    assert [r["headers"]["Authorization"] for r in fake.requests] == ["Bearer old",
                                                                      "Bearer new"]
    assert observed == [("get", 401), ("get", 200)]


async def test_a_second_401_is_the_callers_error(api: tuple[FakeApi, str]) -> None:
    fake, server = api
    fake.answers += [_status(401, "Unauthorized", "bad token") for _ in range(2)]
    with pytest.raises(kube.KubeError, match="bad token") as caught:
        await kube.Kube(_client(server)).get(kube.FLOWRUNS, "r1", namespace="ns")
    assert caught.value.status == 401
    assert len(fake.requests) == 2


async def test_credentials_are_re_read_only_after_the_refresh_interval() -> None:
    config = kubernetes.client.Configuration(host="http://unused")
    reads: list[int] = []

    def refresh(cfg: kubernetes.client.Configuration) -> None:
        # As the in-cluster loader's hook: re-reads the token file when asked.
        reads.append(1)
        cfg.api_key["authorization"] = f"Bearer t{len(reads)}"

    config.refresh_api_key_hook = refresh  # type: ignore[assignment]  # typed as None
    now = [100.0]
    credentials = kube.Credentials(config, clock=lambda: now[0], ttl=10.0)
    assert await credentials.header() == "Bearer t1"
    now[0] += 9.9
    assert await credentials.header() == "Bearer t1"
    now[0] += 0.2
    assert await credentials.header() == "Bearer t2"
    credentials.invalidate()
    assert await credentials.header() == "Bearer t3"
    assert len(reads) == 3


async def test_requests_share_one_session_and_connection(api: tuple[FakeApi, str]) -> None:
    fake, server = api
    client = _client(server)
    first, second = kube.Kube(client), kube.Kube(client)
    for _ in range(3):
        await first.get(kube.FLOWRUNS, "r1", namespace="ns")
        await second.get(kube.FLOWRUNS, "r1", namespace="ns")
    assert kube.transport(client) is kube.transport(client)
    assert len(fake.peers) == 1  # keep-alive: one TCP connection for all six requests


async def test_follow_pod_log_keeps_characters_split_across_chunks(
    api: tuple[FakeApi, str],
) -> None:
    fake, server = api
    text = "naïve → done\n".encode()

    async def stream(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for index in range(len(text)):  # one byte at a time: every split happens
            await response.write(text[index:index + 1])
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    fake.answers.append(stream)
    k = kube.Kube(_client(server))
    chunks = [chunk async for chunk in k.follow_pod_log("p1", namespace="ns")]
    assert "".join(chunks) == "naïve → done\n"
    assert "\ufffd" not in "".join(chunks)
    assert fake.requests[0]["query"] == {"follow": "true"}


def test_close_transports_after_the_loop_ended_closes_the_session() -> None:
    async def use(server_client: kubernetes.client.ApiClient) -> kube.Transport:
        return kube.transport(server_client)

    client = _client("http://127.0.0.1:9")
    found = asyncio.run(use(client))  # the loop is closed when run() returns
    kube.close_transports(client)
    assert found.session.closed


async def test_bodies_are_utf8_json_with_json_dumps_rules_for_keys_and_types(
    api: tuple[FakeApi, str],
) -> None:
    fake, server = api
    k = kube.Kube(_client(server))
    fake.answers.append(aiohttp.web.json_response({"metadata": {"name": "r1"},
                                                   "note": "café", "n": 2**62}))
    answer = await k.patch(kube.FLOWRUNS, "r1", {"metadata": {"annotations": {
        "note": "café ✓", 7: "seven"}}}, namespace="ns")
    assert answer == {"metadata": {"name": "r1"}, "note": "café", "n": 2**62}
    sent = json.loads(fake.requests[0]["body"].decode("utf-8"))
    # Non-string keys become strings, as json.dumps makes them.
    assert sent == {"metadata": {"annotations": {"note": "café ✓", "7": "seven"}}}
    # What JSON cannot hold is refused before anything is sent, as json.dumps refuses it.
    for unserializable in (datetime.now(UTC), {1, 2}):
        with pytest.raises(TypeError):
            await k.patch(kube.FLOWRUNS, "r1", {"spec": {"at": unserializable}},
                          namespace="ns")
    assert len(fake.requests) == 1


def test_a_watch_line_that_is_not_json_is_a_value_error() -> None:
    # The informer retries on ValueError (a garbled line): NaN and lone surrogates are
    # not JSON, and a truncated line is not either.
    assert kube.parse_watch_line(
        b'{"type":"ADDED","object":{"metadata":{"name":"\xc3\xa9"}}}') == (
        "ADDED", {"metadata": {"name": "é"}})
    for line in (b'{"type":"ADDED","object":{"x":NaN}}', b'{"type":"ADDED","object":{',
                 b'{"type":"ADDED","object":{"x":"\\ud800"}}', b"\xff"):
        with pytest.raises(ValueError, match=r"."):
            kube.parse_watch_line(line)
