"""``kube.BlockingKube``, the CLI's client: ``Kube`` on a private loop, called by blocking code.

A small aiohttp server plays the API server on a loop thread of its own, so the test
(the blocking caller) runs in the main thread as the CLI does: Ctrl-C is a real SIGINT
to that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator

import aiohttp.web
import kubernetes.client
import pytest
from headwater_operator import kube

Handler = Callable[[aiohttp.web.Request], Awaitable[aiohttp.web.StreamResponse]]
WAIT = 5.0
"""Seconds any one thing may take before a test gives up on it."""


class FakeApi:
    """Answers each request with the next scripted handler (``{}`` when none is left),
    on a loop running in a thread of its own."""

    def __init__(self) -> None:
        self.handlers: list[Handler] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: aiohttp.web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        if self.handlers:
            return await self.handlers.pop(0)(request)
        return aiohttp.web.json_response({})

    async def _start(self) -> None:
        app = aiohttp.web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.1,
                                             handler_cancellation=True)
        await self._runner.setup()
        site = aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(WAIT)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(WAIT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT)
        self.loop.close()


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def client(api: FakeApi) -> Iterator[kube.BlockingKube]:
    settings = kubernetes.client.Configuration(host=api.url)
    with kube.BlockingKube(kubernetes.client.ApiClient(settings),
                           retry=kube.NO_RETRIES) as blocking:
        yield blocking


@pytest.fixture
def observed() -> Iterator[list[tuple[str, int]]]:
    seen: list[tuple[str, int]] = []

    def observer(verb: str, code: int) -> None:
        seen.append((verb, code))

    kube.add_request_observer(observer)
    yield seen
    kube.remove_request_observer(observer)


@contextlib.contextmanager
def observing(observer: kube.RequestObserver) -> Iterator[None]:
    kube.add_request_observer(observer)
    try:
        yield
    finally:
        kube.remove_request_observer(observer)


def _not_found(message: str) -> Handler:
    async def answer(_request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response({"kind": "Status", "status": "Failure",
                                          "reason": "NotFound", "message": message},
                                         status=404)
    return answer


def _log_stream(first: bytes, then: Callable[[aiohttp.web.StreamResponse],
                                             Awaitable[None]]) -> Handler:
    """A follow that writes ``first`` and then does what ``then`` does with the response."""
    async def answer(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(first)
        await then(response)
        return response
    return answer


async def _hold_until_hung_up(hung_up: threading.Event) -> None:
    try:
        await asyncio.Event().wait()  # until the server cancels the handler
    except asyncio.CancelledError:
        hung_up.set()  # the client closed the connection (handler_cancellation)
        raise


def _interrupt_main_thread_when(event: threading.Event) -> threading.Thread:
    """A SIGINT to the main thread once ``event`` is set, as a terminal's Ctrl-C."""
    def send() -> None:
        if event.wait(WAIT):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


# --- calls ------------------------------------------------------------------------------
def test_calls_answer_as_kube_does_with_its_typed_errors(
    api: FakeApi, client: kube.BlockingKube, observed: list[tuple[str, int]],
) -> None:
    api.handlers.append(_not_found('flowruns.headwater.dev "r9" not found'))
    with pytest.raises(kube.NotFound) as caught:
        client.get(kube.FLOWRUNS, "r9", namespace="ns")
    assert caught.value.message == 'flowruns.headwater.dev "r9" not found'
    assert client.list(kube.PODS, namespace="ns", label_selector={"a": "1"}) == []
    client.create(kube.FLOWRUNS, {"metadata": {"name": "r1"}}, namespace="ns")
    client.patch(kube.FLOWRUNS, "r1", {"spec": {"cancel": True}}, namespace="ns")
    client.patch_status(kube.FLOWRUNS, "r1", [kube.jp_test("/status/phase", "Running")],
                        namespace="ns")
    client.replace(kube.FLOWRUNS, {"metadata": {"name": "r1", "namespace": "ns"}})
    client.delete(kube.FLOWRUNS, "r1", namespace="ns", resource_version="7")
    run = "/apis/headwater.dev/v1alpha1/namespaces/ns/flowruns"
    assert [(method, path) for method, path, _ in api.requests] == [
        ("GET", f"{run}/r9"), ("GET", "/api/v1/namespaces/ns/pods"), ("POST", run),
        ("PATCH", f"{run}/r1"), ("PATCH", f"{run}/r1/status"), ("PUT", f"{run}/r1"),
        ("DELETE", f"{run}/r1")]
    assert api.requests[1][2] == {"labelSelector": "a=1"}
    assert observed == [("get", 404), ("list", 200), ("create", 200), ("patch", 200),
                        ("patch", 200), ("update", 200), ("delete", 200)]


def test_a_call_carries_the_callers_context_and_runs_on_the_loop_thread(
    client: kube.BlockingKube,
) -> None:
    actor: contextvars.ContextVar[str] = contextvars.ContextVar("actor", default="nobody")
    seen: list[tuple[str, threading.Thread, set[int]]] = []

    def observer(_verb: str, _code: int) -> None:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        seen.append((actor.get(), threading.current_thread(), blocked))

    actor.set("cli")
    with observing(observer):
        client.get(kube.FLOWRUNS, "r1", namespace="ns")
    [(who, thread, blocked)] = seen
    assert who == "cli"  # e.g. the api tests' RBAC audit names the CLI by a context variable
    assert thread is not threading.current_thread()
    # Ctrl-C must reach the caller's wait, not the loop thread.
    assert {signal.SIGINT, signal.SIGTERM} <= blocked


def test_a_call_from_a_coroutine_on_its_own_loop_is_refused(
    client: kube.BlockingKube,
) -> None:
    refusals: list[str] = []

    def observer(_verb: str, _code: int) -> None:
        try:
            client.get(kube.FLOWRUNS, "r2", namespace="ns")
        except RuntimeError as exc:
            refusals.append(str(exc))

    with observing(observer):
        client.get(kube.FLOWRUNS, "r1", namespace="ns")
    assert refusals == ["a BlockingKube call from a coroutine on its own loop would wait "
                        "for itself; await BlockingKube.kube's method instead"]


# --- streams ----------------------------------------------------------------------------
def test_follow_pod_log_hands_over_each_piece_as_it_arrives(
    api: FakeApi, client: kube.BlockingKube,
) -> None:
    release = threading.Event()

    async def rest(response: aiohttp.web.StreamResponse) -> None:
        await asyncio.to_thread(release.wait, WAIT)
        await response.write("naïve\n".encode())
        await response.write_eof()

    api.handlers.append(_log_stream(b"one\n", rest))
    chunks = client.follow_pod_log("p1", namespace="ns", container="flow", tail_lines=5)
    assert next(chunks) == "one\n"  # while the server still holds back the rest
    release.set()
    assert list(chunks) == ["naïve\n"]
    assert api.requests[0][2] == {"container": "flow", "tailLines": "5", "follow": "true"}


def test_closing_a_follow_early_closes_its_connection(
    api: FakeApi, client: kube.BlockingKube,
) -> None:
    hung_up = threading.Event()
    api.handlers.append(_log_stream(b"one\n", lambda _: _hold_until_hung_up(hung_up)))
    chunks = client.follow_pod_log("p1", namespace="ns")
    assert next(chunks) == "one\n"
    assert not hung_up.is_set()
    chunks.close()
    assert hung_up.wait(WAIT)


@pytest.mark.parametrize("call", ["get", "follow"])
def test_ctrl_c_while_waiting_propagates_and_hangs_up(
    api: FakeApi, client: kube.BlockingKube, call: str,
) -> None:
    arrived, hung_up = threading.Event(), threading.Event()

    async def hold() -> None:
        arrived.set()
        await _hold_until_hung_up(hung_up)

    async def get(_request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        await hold()
        return aiohttp.web.json_response({})

    api.handlers.append(get if call == "get" else _log_stream(b"one\n", lambda _: hold()))
    sender = _interrupt_main_thread_when(arrived)
    with pytest.raises(KeyboardInterrupt):
        _wait_for(client, call)
    sender.join(WAIT)
    assert hung_up.wait(WAIT)
    # The client is still usable afterwards.
    assert client.get(kube.FLOWRUNS, "r1", namespace="ns") == {}


def _wait_for(client: kube.BlockingKube, call: str) -> None:
    if call == "get":
        client.get(kube.FLOWRUNS, "r1", namespace="ns")
    else:
        # As the CLI does (cli/follow.py): the generator is closed however the loop ends,
        # so a Ctrl-C that lands between two chunks (in this body, not in the wait) hangs
        # up too; without it the generator, kept alive by the traceback, would not.
        with contextlib.closing(client.follow_pod_log("p1", namespace="ns")) as chunks:
            for _ in chunks:
                pass


# --- the loop thread --------------------------------------------------------------------
def _loop_thread_of(client: kube.BlockingKube) -> threading.Thread:
    threads: list[threading.Thread] = []
    with observing(lambda _verb, _code: threads.append(threading.current_thread())):
        client.get(kube.FLOWRUNS, "r1", namespace="ns")
    return threads[0]


def test_close_ends_the_loop_thread_and_a_later_call_starts_another(
    client: kube.BlockingKube,
) -> None:
    first = _loop_thread_of(client)
    client.close()
    assert not first.is_alive()
    second = _loop_thread_of(client)
    assert second is not first
    assert second.is_alive()


def test_a_client_dropped_unclosed_takes_its_thread_along(api: FakeApi) -> None:
    dropped = kube.BlockingKube(kubernetes.client.ApiClient(
        kubernetes.client.Configuration(host=api.url)))
    thread = _loop_thread_of(dropped)
    del dropped
    gc.collect()
    thread.join(WAIT)
    assert not thread.is_alive()


def test_nothing_starts_before_the_first_call(api: FakeApi) -> None:
    before = set(threading.enumerate())
    with kube.BlockingKube(kubernetes.client.ApiClient(
            kubernetes.client.Configuration(host=api.url))) as idle:
        assert idle.kube.retry == kube.DEFAULT_RETRY_POLICY
        assert set(threading.enumerate()) == before
