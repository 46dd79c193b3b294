"""The informer's recovery logic against a scripted client, and the watch wire format.

A fake :class:`~headwater_operator.kube.Kube` answers each LIST and WATCH from a script
(results, events, errors), so Gone/relist, backoff and client-side filtering are checked
without a server and without waiting: the informer's ``sleep`` is injected. The same
scripts feed the :class:`SharedInformer` fan-out to several handlers, the :class:`Store`
and the :class:`InformerFactory`. The last tests put :meth:`Kube.watch` itself against a
small local aiohttp server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import aiohttp.web
import kubernetes.client
import pytest
from headwater_operator import kube as k
from headwater_operator.informer import (
    Informer,
    InformerFactory,
    SharedInformer,
    Store,
    label_matcher,
)

NS = "default"
ListAnswer = tuple[list[k.JsonObject], str] | BaseException
WatchAnswer = list[k.WatchEvent | BaseException] | BaseException


def _obj(name: str, version: str, uid: str | None = None,
         labels: dict[str, str] | None = None) -> k.JsonObject:
    return {"metadata": {"name": name, "namespace": NS, "uid": uid or f"uid-{name}",
                         "resourceVersion": version, "labels": labels or {}}}


def _bookmark(version: str) -> k.WatchEvent:
    return "BOOKMARK", {"metadata": {"resourceVersion": version}}


def _gone() -> k.Gone:
    return k.Gone(410, "Expired", "too old resource version: 1 (5)")


class ScriptedKube(k.Kube):
    """Answers LISTs and WATCHes from scripts; when both run out, sets ``idle`` and waits."""

    def __init__(self, lists: list[ListAnswer], watches: list[WatchAnswer]) -> None:
        super().__init__(kubernetes.client.ApiClient())
        self.lists = lists
        self.watches = watches
        self.calls: list[tuple[str, str | None]] = []
        self.selectors: list[str | Mapping[str, str] | None] = []
        self.idle = asyncio.Event()

    async def _exhausted(self) -> None:
        self.idle.set()
        await asyncio.Event().wait()  # until the test cancels the informer

    async def list_with_version(
        self, resource: k.Resource, *, namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | None = None, page_size: int | None = None,
    ) -> tuple[list[k.JsonObject], str]:
        self.calls.append(("list", None))
        self.selectors.append(label_selector)
        if not self.lists:
            await self._exhausted()
        answer = self.lists.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def list_pages(
        self, resource: k.Resource, *, namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | None = None, page_size: int | None = None,
    ) -> AsyncGenerator[tuple[list[k.JsonObject], str], None]:
        # The informer lists page by page: each scripted LIST answer is one page.
        yield await self.list_with_version(resource, namespace=namespace,
                                           label_selector=label_selector,
                                           field_selector=field_selector)

    async def watch(
        self, resource: k.Resource, *, namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        timeout_seconds: int = 300, allow_bookmarks: bool = True,
    ) -> AsyncGenerator[k.WatchEvent, None]:
        self.calls.append(("watch", resource_version))
        if not self.watches:
            await self._exhausted()
        answer = self.watches.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        for step in answer:
            if isinstance(step, BaseException):
                raise step
            yield step


class Run:
    """An informer on a scripted client: its deliveries, sleeps and task."""

    def __init__(self, client: ScriptedKube, **options: Any) -> None:
        self.client = client
        self.seen: list[tuple[str, k.JsonObject]] = []
        self.sleeps: list[float] = []
        self.informer = Informer(client, k.SCHEDULES, namespace=NS,
                                 on_event=lambda kind, obj: self.seen.append((kind, obj)),
                                 sleep=self.sleep, **options)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)  # a real suspension point, as asyncio.sleep has

    def names(self) -> list[tuple[str, str]]:
        return [(kind, obj["metadata"]["name"]) for kind, obj in self.seen]

    async def until_idle(self) -> None:
        """Run until the scripts are used up, then cancel the informer."""
        task = asyncio.create_task(self.informer.run())
        async with asyncio.timeout(10):
            await self.client.idle.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_relist_after_gone_diffs_against_what_was_delivered() -> None:
    client = ScriptedKube(
        lists=[([_obj("a", "1"), _obj("b", "2"), _obj("c", "3")], "10"),
               ([_obj("a", "1"), _obj("b", "12"), _obj("d", "13")], "20")],
        watches=[[_bookmark("11"), _gone()]])
    run = Run(client)
    await run.until_idle()
    assert run.names() == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c"),
                           ("MODIFIED", "b"), ("ADDED", "d"), ("DELETED", "c")]
    assert run.seen[-1][1] == {"metadata": {"name": "c", "namespace": NS, "uid": "uid-c",
                                            "resourceVersion": "3"}}
    assert client.calls == [("list", None), ("watch", "10"), ("list", None), ("watch", "20")]
    assert run.sleeps == []  # a Gone after a good watch relists at once
    assert run.informer.synced.is_set()


async def test_relist_reports_an_object_recreated_under_the_same_name() -> None:
    client = ScriptedKube(
        lists=[([_obj("a", "1", uid="old")], "10"), ([_obj("a", "15", uid="new")], "20")],
        watches=[[_bookmark("11"), _gone()]])
    run = Run(client)
    await run.until_idle()
    assert [(kind, obj["metadata"]["uid"]) for kind, obj in run.seen] == [
        ("ADDED", "old"), ("DELETED", "old"), ("ADDED", "new")]


async def test_gone_in_a_watch_and_in_stream_errors_are_recognised() -> None:
    assert isinstance(k.error_from_response(410, b'{"reason": "Expired"}'), k.Gone)
    line = (b'{"type": "ERROR", "object": {"kind": "Status", "code": 410, '
            b'"reason": "Expired", "message": "too old resource version: 5 (9)"}}')
    with pytest.raises(k.Gone, match="too old resource version: 5"):
        k.parse_watch_line(line)
    with pytest.raises(k.KubeError, match="etcd unavailable") as failed:
        k.parse_watch_line(b'{"type": "ERROR", "object": {"code": 500, '
                           b'"message": "etcd unavailable"}}')
    assert not isinstance(failed.value, k.Gone)
    assert k.parse_watch_line(b'{"type": "ADDED", "object": {"metadata": {"name": "x"}}}') == (
        "ADDED", {"metadata": {"name": "x"}})


async def test_gone_right_after_a_list_backs_off_instead_of_relisting_in_a_loop() -> None:
    client = ScriptedKube(lists=[([], "10"), ([], "10"), ([], "30")],
                          watches=[_gone(), _gone()])
    run = Run(client, backoff=(3, 7))
    await run.until_idle()
    assert run.sleeps == [3, 3]  # each LIST was a good answer: back to the first step
    assert [verb for verb, _ in client.calls] == ["list", "watch"] * 3


async def test_bookmarks_only_advance_the_version_and_an_ended_watch_resumes() -> None:
    client = ScriptedKube(
        lists=[([_obj("a", "1")], "10")],
        watches=[[_bookmark("15")], [("ADDED", _obj("x", "16"))], []])
    run = Run(client)
    await run.until_idle()
    assert run.names() == [("ADDED", "a"), ("ADDED", "x")]
    assert client.calls == [("list", None), ("watch", "10"), ("watch", "15"),
                            ("watch", "16"), ("watch", "16")]
    assert run.informer.resource_version == "16"


async def test_failures_back_off_step_by_step_and_reset_after_a_connect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedKube(
        lists=[aiohttp.ClientConnectionError("connection refused"), TimeoutError(),
               k.KubeError(503, "ServiceUnavailable", "apiserver is starting"),
               ([], "10")],
        watches=[aiohttp.ServerDisconnectedError(), aiohttp.ServerDisconnectedError(),
                 [("ADDED", _obj("x", "11")),
                  aiohttp.ClientPayloadError("connection reset mid-stream")]])
    run = Run(client, backoff=(1, 2, 4))
    with caplog.at_level(logging.WARNING, logger="headwater_operator.informer"):
        await run.until_idle()
    # Three failed LISTs (no version yet: each retry lists), a good one; two failed
    # watches; a connected one that broke; then a re-watch from the last version.
    assert run.sleeps == [1, 2, 4, 1, 2, 1]
    assert client.calls == [("list", None)] * 4 + [("watch", "10")] * 3 + [("watch", "11")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 6
    assert "schedules in namespace default" in warnings[2]
    assert "apiserver is starting" in warnings[2]
    assert run.names() == [("ADDED", "x")]


async def test_label_selector_is_also_applied_client_side() -> None:
    # A server (or proxy) that ignores labelSelector: every object comes through.
    client = ScriptedKube(
        lists=[([_obj("ours", "1", labels={"team": "a"}), _obj("theirs", "2")], "10")],
        watches=[[("MODIFIED", _obj("theirs", "11")),                      # still not ours
                  ("MODIFIED", _obj("joins", "12", labels={"team": "a"})),
                  ("MODIFIED", _obj("ours", "13", labels={"team": "b"})),   # leaves
                  ("DELETED", _obj("theirs", "14"))]])
    run = Run(client, label_selector={"team": "a"})
    await run.until_idle()
    assert run.names() == [("ADDED", "ours"), ("ADDED", "joins"), ("DELETED", "ours")]
    assert client.selectors == [{"team": "a"}]  # and it is still asked of the server
    assert len(run.informer) == 1


async def test_objects_remember_declines_are_delivered_but_not_kept() -> None:
    """Memory follows live objects: a finished one is forgotten, yet every event arrives."""
    def done(obj: k.JsonObject) -> bool:
        return bool(obj["metadata"]["labels"].get("phase") != "done")

    client = ScriptedKube(
        lists=[([_obj("live", "1"), _obj("old", "2", labels={"phase": "done"})], "10"),
               ([_obj("live", "11", labels={"phase": "done"}),
                 _obj("old", "2", labels={"phase": "done"})], "20")],
        watches=[[("MODIFIED", _obj("live", "11", labels={"phase": "done"})),
                  ("DELETED", _obj("old", "12", labels={"phase": "done"})),
                  _gone()]])
    run = Run(client, remember=done)
    await run.until_idle()
    assert run.names() == [
        ("ADDED", "live"), ("ADDED", "old"),       # the first list
        ("MODIFIED", "live"),                        # it finished: forgotten from here on
        ("DELETED", "old"),                          # a deletion on the watch still arrives
        # The relist after Gone: both declined, so both come again, as ADDED; and no
        # tombstone for "live", which the informer no longer knew.
        ("ADDED", "live"), ("ADDED", "old"),
    ]
    assert len(run.informer) == 0


@pytest.mark.parametrize(("selector", "matching"), [
    ("team=a", {"ours"}),
    ("team==a,tier", {"ours"}),
    ("team", {"ours", "b-team"}),
    ({"team": "b", "tier": "gold"}, {"b-team"}),
    ("", None),
    (None, None),
])
def test_label_matcher_takes_the_api_servers_selector_forms(
    selector: str | dict[str, str] | None, matching: set[str] | None,
) -> None:
    objects = [_obj("ours", "1", labels={"team": "a", "tier": "gold"}),
               _obj("b-team", "1", labels={"team": "b", "tier": "gold"}), _obj("none", "1")]
    matches = label_matcher(selector)
    if matching is None:
        assert matches is None  # no selector: no per-event check at all
    else:
        assert matches is not None
        assert {o["metadata"]["name"] for o in objects if matches(o)} == matching


async def test_a_raising_handler_neither_stops_the_list_nor_the_watch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedKube(lists=[([_obj("bad", "1"), _obj("good", "2")], "10")],
                          watches=[[("MODIFIED", _obj("bad", "11")),
                                    ("ADDED", _obj("later", "12"))]])
    delivered: list[str] = []

    def handler(kind: str, obj: k.JsonObject) -> None:
        if obj["metadata"]["name"] == "bad":
            raise ValueError("cannot parse spec.cron")
        delivered.append(obj["metadata"]["name"])

    run = Run(client)
    run.informer.on_event = handler
    with caplog.at_level(logging.ERROR, logger="headwater_operator.informer"):
        await run.until_idle()
    assert delivered == ["good", "later"]
    assert run.informer.synced.is_set()
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [("default/bad" in r.getMessage(), r.exc_info is not None) for r in failures] == [
        (True, True), (True, True)]
    assert client.calls[-1] == ("watch", "12")  # Failing handler: same version bookkeeping


async def test_objects_without_metadata_are_skipped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ScriptedKube(lists=[([{"kind": "Schedule"}, _obj("a", "1")], "10")],
                          watches=[[("MODIFIED", {"metadata": {"resourceVersion": "11"}}),
                                    ("ADDED", _obj("b", "12"))]])
    run = Run(client)
    with caplog.at_level(logging.ERROR, logger="headwater_operator.informer"):
        await run.until_idle()
    assert run.names() == [("ADDED", "a"), ("ADDED", "b")]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2
    assert "schedules in namespace default" in skipped[0]


def test_an_empty_backoff_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="backoff must have at least one step"):
        Informer(ScriptedKube([], []), k.SCHEDULES, namespace=NS,
                 on_event=lambda kind, obj: None, backoff=())


def test_a_selector_the_server_would_reject_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unable to parse selector requirement 'team in a'"):
        Informer(ScriptedKube([], []), k.SCHEDULES, namespace=NS,
                 on_event=lambda kind, obj: None, label_selector="team in a")


def test_lines_are_cut_however_the_stream_is_chunked() -> None:
    splitter = k.LineSplitter()
    assert splitter.feed(b'{"a": 1}\n{"b"') == [b'{"a": 1}']
    assert splitter.feed(b": 2") == []
    assert splitter.feed(b'}\n\n{"c": 3}\n{"d"') == [b'{"b": 2}', b'{"c": 3}']
    assert splitter.rest() == b'{"d"'
    assert splitter.rest() == b""


# --- SharedInformer, Store, InformerFactory -----------------------------------------------
class ByNamespace(k.Kube):
    """Answers each namespace's LISTs and WATCHes from its own :class:`ScriptedKube`;
    a namespace's LIST waits for its gate in ``held`` (if any) first."""

    def __init__(self, scripts: dict[str | None, ScriptedKube]) -> None:
        super().__init__(kubernetes.client.ApiClient())
        self.scripts = scripts
        self.held: dict[str | None, asyncio.Event] = {}

    async def list_pages(
        self, resource: k.Resource, *, namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | None = None, page_size: int | None = None,
    ) -> AsyncGenerator[tuple[list[k.JsonObject], str], None]:
        gate = self.held.get(namespace)
        if gate is not None:
            await gate.wait()
        async for page in self.scripts[namespace].list_pages(
                resource, namespace=namespace, label_selector=label_selector):
            yield page

    def watch(
        self, resource: k.Resource, *, namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        timeout_seconds: int = 300, allow_bookmarks: bool = True,
    ) -> AsyncGenerator[k.WatchEvent, None]:
        return self.scripts[namespace].watch(resource, namespace=namespace,
                                             resource_version=resource_version)

    async def idle(self) -> None:
        for script in self.scripts.values():
            await script.idle.wait()


async def _run_until_idle(shared: SharedInformer, client: ByNamespace) -> None:
    task = asyncio.create_task(shared.run())
    async with asyncio.timeout(10):  # a hang guard
        await client.idle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _one_namespace(lists: list[ListAnswer], watches: list[WatchAnswer]) -> ByNamespace:
    return ByNamespace({NS: ScriptedKube(lists, watches)})


async def test_every_handler_gets_every_event_in_registration_order() -> None:
    client = _one_namespace([([_obj("a", "1"), _obj("b", "2")], "10")],
                            [[("MODIFIED", _obj("a", "11")), ("DELETED", _obj("b", "12"))]])
    shared = SharedInformer(client, k.SCHEDULES, [NS])
    seen: list[tuple[str, str, str, int]] = []
    shared.add_handler(lambda kind, obj: seen.append(
        ("first", kind, obj["metadata"]["name"], id(obj))))
    shared.add_handler(lambda kind, obj: seen.append(
        ("second", kind, obj["metadata"]["name"], id(obj))))
    await _run_until_idle(shared, client)
    assert [(who, kind, name) for who, kind, name, _ in seen] == [
        ("first", "ADDED", "a"), ("second", "ADDED", "a"),
        ("first", "ADDED", "b"), ("second", "ADDED", "b"),
        ("first", "MODIFIED", "a"), ("second", "MODIFIED", "a"),
        ("first", "DELETED", "b"), ("second", "DELETED", "b")]
    # One parsed object per event, shared (read-only) by every handler: no copies.
    assert all(seen[i][3] == seen[i + 1][3] for i in range(0, len(seen), 2))
    assert client.scripts[NS].calls == [("list", None), ("watch", "10"), ("watch", "12")]


async def test_a_raising_handler_does_not_keep_the_event_from_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = _one_namespace([([_obj("bad", "1"), _obj("good", "2")], "10")],
                            [[("MODIFIED", _obj("bad", "11")), ("ADDED", _obj("later", "12"))]])
    shared = SharedInformer(client, k.SCHEDULES, [NS])
    before: list[str] = []
    after: list[str] = []

    def fragile(kind: str, obj: k.JsonObject) -> None:
        if obj["metadata"]["name"] == "bad":
            raise ValueError("cannot parse spec.cron")
        before.append(obj["metadata"]["name"])

    shared.add_handler(fragile)
    shared.add_handler(lambda kind, obj: after.append(obj["metadata"]["name"]))
    with caplog.at_level(logging.ERROR, logger="headwater_operator.informer"):
        await _run_until_idle(shared, client)
    assert after == ["bad", "good", "bad", "later"]
    assert before == ["good", "later"]
    assert shared.synced
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2
    assert "fragile" in failures[0].getMessage()
    assert "ADDED default/bad" in failures[0].getMessage()
    assert failures[0].exc_info is not None


async def test_handlers_cannot_be_added_once_the_informer_runs() -> None:
    client = _one_namespace([([_obj("a", "1")], "10")], [])
    shared = SharedInformer(client, k.SCHEDULES, [NS])
    early: list[str] = []
    shared.add_handler(lambda kind, obj: early.append(obj["metadata"]["name"]))
    task = asyncio.create_task(shared.run())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="the schedules informer is running already: "
                                           "register handlers before it starts"):
        shared.add_handler(lambda kind, obj: None)
    async with asyncio.timeout(10):
        await client.idle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert early == ["a"]
    assert len(shared.handlers) == 1


async def test_synced_once_every_namespace_has_delivered_its_first_list() -> None:
    client = ByNamespace({
        "team-a": ScriptedKube([([_obj("a", "1")], "10")], []),
        "team-b": ScriptedKube([([_obj("b1", "1"), _obj("b2", "2")], "10")], []),
    })
    client.held["team-b"] = asyncio.Event()
    shared = SharedInformer(client, k.SCHEDULES, ["team-a", "team-b"])
    seen: list[str] = []
    shared.add_handler(lambda kind, obj: seen.append(obj["metadata"]["name"]))
    task = asyncio.create_task(shared.run())
    waiter = asyncio.create_task(shared.wait_synced())
    async with asyncio.timeout(10):
        await client.scripts["team-a"].idle.wait()
    assert seen == ["a"]
    assert not bool(shared.synced)  # bool(): mypy would take the property for a constant
    assert not waiter.done()
    client.held["team-b"].set()
    async with asyncio.timeout(10):
        await waiter
    assert shared.synced
    assert sorted(seen) == ["a", "b1", "b2"]
    assert len(shared) == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_store_keeps_the_latest_body_and_forgets_deleted_objects() -> None:
    store = Store()
    first, second = _obj("a", "1"), _obj("a", "2")
    store.on_event("ADDED", first)
    store.on_event("ADDED", _obj("b", "3"))
    store.on_event("MODIFIED", second)
    assert store.get(NS, "a") is second
    assert store.get("other", "a") is None
    assert len(store) == 2
    # A relist's tombstone carries metadata only: enough to forget the object.
    store.on_event("DELETED", {"metadata": {"name": "a", "namespace": NS, "uid": "uid-a"}})
    assert store.get(NS, "a") is None
    assert [key for key, _ in store.items()] == [(NS, "b")]
    store.on_event("DELETED", {"metadata": {"name": "never-seen", "namespace": NS}})
    assert len(store) == 1
    cluster = {"metadata": {"name": "c"}}
    store.on_event("ADDED", cluster)
    assert store.get("", "c") is cluster


async def test_a_store_registered_first_is_current_when_later_handlers_run() -> None:
    client = _one_namespace([([_obj("a", "1")], "10")],
                            [[("MODIFIED", _obj("a", "11")), ("DELETED", _obj("a", "12"))]])
    shared = SharedInformer(client, k.DEPLOYMENTS, [NS])
    store = Store()
    shared.add_handler(store.on_event)
    read: list[tuple[str, str | None]] = []

    def controller(kind: str, obj: k.JsonObject) -> None:
        found = store.get(NS, obj["metadata"]["name"])
        read.append((kind, found["metadata"]["resourceVersion"] if found else None))

    shared.add_handler(controller)
    await _run_until_idle(shared, client)
    assert read == [("ADDED", "1"), ("MODIFIED", "11"), ("DELETED", None)]


async def test_the_factory_makes_one_shared_informer_per_kind_and_selector() -> None:
    client = ByNamespace({None: ScriptedKube([([_obj("a", "1")], "10"),
                                              ([_obj("p", "1")], "10")], [])})
    factory = InformerFactory(client, None)
    schedules = factory.informer(k.SCHEDULES)
    assert factory.informer(k.SCHEDULES) is schedules
    pods = factory.informer(k.PODS, "app=headwater")
    assert factory.informer(k.PODS, "app=headwater") is pods
    assert factory.informer(k.PODS) is not pods
    assert factory.informers == [schedules, pods, factory.informer(k.PODS)]
    assert pods.label_selector == "app=headwater"
    assert InformerFactory(client, ["team-a", "team-b"]).namespaces == ["team-a", "team-b"]


async def test_the_factory_runs_every_informer_and_waits_for_all_first_lists() -> None:
    client = ByNamespace({None: ScriptedKube([([_obj("a", "1")], "10"),
                                              ([_obj("f", "1")], "10")], [])})
    factory = InformerFactory(client, None)
    seen: list[tuple[str, str]] = []
    factory.informer(k.SCHEDULES).add_handler(
        lambda kind, obj: seen.append(("schedule", obj["metadata"]["name"])))
    factory.informer(k.FLOWS).add_handler(
        lambda kind, obj: seen.append(("flow", obj["metadata"]["name"])))
    task = asyncio.create_task(factory.run())
    async with asyncio.timeout(10):
        await factory.wait_synced()
    assert sorted(seen) == [("flow", "f"), ("schedule", "a")]
    assert all(informer.synced for informer in factory.informers)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- Kube.watch over HTTP -------------------------------------------------------------
Handler = Callable[[aiohttp.web.Request], Any]


@pytest.fixture
async def server() -> AsyncIterator[tuple[list[aiohttp.web.Request], list[Handler], str]]:
    """A local HTTP server answering each request with the next handler; its URL."""
    seen: list[aiohttp.web.Request] = []
    handlers: list[Handler] = []

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        seen.append(request)
        response: aiohttp.web.StreamResponse = await handlers.pop(0)(request)
        return response

    app = aiohttp.web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield seen, handlers, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await k.aclose_transports()
        await runner.cleanup()


def _streaming(*chunks: bytes) -> Handler:
    async def handler(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response
    return handler


def _client(url: str) -> k.Kube:
    """A client of the local test server at ``url``."""
    return k.Kube(kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url)))


async def test_watch_sends_the_watch_query_and_parses_split_lines_and_in_stream_gone(
    server: tuple[list[aiohttp.web.Request], list[Handler], str],
) -> None:
    seen, handlers, url = server
    client = _client(url)
    handlers.append(_streaming(
        b'{"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "7"}}}\n'
        b'{"type": "MODIFIED", "object": {"metadata": ',
        b'{"name": "a", "resourceVersion": "8"}}}\n',
        b'{"type": "ERROR", "object": {"code": 410, "reason": "Expired", '
        b'"message": "too old resource version: 8 (20)"}}\n'))
    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for kind, obj in client.watch(k.SCHEDULES, namespace=NS, resource_version="6",
                                            label_selector={"team": "a"}, timeout_seconds=60):
            events.append((kind, obj["metadata"]["resourceVersion"]))

    with pytest.raises(k.Gone, match="too old resource version"):
        await consume()
    assert events == [("ADDED", "7"), ("MODIFIED", "8")]
    assert seen[0].path == "/apis/headwater.dev/v1alpha1/namespaces/default/schedules"
    assert dict(seen[0].query) == {
        "watch": "1", "resourceVersion": "6", "allowWatchBookmarks": "true",
        "timeoutSeconds": "60", "labelSelector": "team=a"}


async def test_watch_of_a_compacted_version_raises_gone_and_list_reports_its_version(
    server: tuple[list[aiohttp.web.Request], list[Handler], str],
) -> None:
    _, handlers, url = server
    client = _client(url)

    async def gone(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response(
            {"kind": "Status", "code": 410, "reason": "Expired",
             "message": "too old resource version: 1 (40)"}, status=410)

    async def listing(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        return aiohttp.web.json_response({"metadata": {"resourceVersion": "41"},
                                          "items": [{"metadata": {"name": "a"}}]})

    handlers += [gone, listing]
    with pytest.raises(k.Gone, match=r"too old resource version: 1 \(40\)"):
        await anext(client.watch(k.SCHEDULES, namespace=NS, resource_version="1"))
    assert await client.list_with_version(k.SCHEDULES, namespace=NS) == (
        [{"metadata": {"name": "a"}}], "41")
