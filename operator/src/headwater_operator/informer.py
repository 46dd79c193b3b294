"""A feed of one resource kind's changes: LIST, then WATCH, then again — cheaply.

Per event it does one ``json.loads`` of the watch line (in
:meth:`headwater_operator.kube.Kube.watch`), a few dict lookups and one call of a
synchronous callback with the parsed object — no copies, no per-object tasks. What a
controller does with the event (wake a key, update its own small index) is its business,
and must be as cheap. Why informers of our own rather than kopf's watches, with the
measurements: ``docs/decisions.md`` ("Watching").

What it guarantees (the semantics of client-go's informers, minus their object cache):

* **Latest state, at least once.** Every change reaches ``on_event`` as ``ADDED`` (an
  object not known before), ``MODIFIED`` (a known one) or ``DELETED`` (a known one that
  is gone, or no longer matches the label selector). Events are delivered in the
  server's order; after a reconnect, a relist or a replayed stream the same state may be
  delivered again, so handlers must be idempotent (Headwater's are by construction).
  Intermediate states may be skipped after a relist, never the latest one.
* **Relist semantics.** The first LIST, and every LIST after a ``410 Gone`` (the watch's
  resourceVersion was compacted away), is diffed against what the informer knows:
  ``ADDED`` for new objects, ``MODIFIED`` for known ones whose resourceVersion changed
  (nothing for unchanged ones), ``DELETED`` for known ones missing from the list —
  carrying only ``metadata`` (``name``, ``namespace``, ``uid``, ``resourceVersion``),
  the last the informer saw, since it keeps no objects. An object replaced under the
  same name (a new uid) is ``DELETED`` then ``ADDED``. :attr:`Informer.synced` is set
  once the first LIST has been delivered: from then on a controller's view is complete.
  The LIST is paged (:data:`DEFAULT_PAGE_SIZE`), each page diffed as it arrives; the
  ``DELETED`` ones follow the last page, and the watch starts from the list's version.
* **Resumption.** A watch the server ends (``timeoutSeconds``) is re-opened from the
  last resourceVersion seen (``BOOKMARK`` events only advance it), so nothing is
  listed again and nothing is lost. Connection errors, timeouts and error responses
  are retried after the next :data:`DEFAULT_BACKOFF` step (back to the first after a
  successful connect), each logged at WARNING.
* **Small memory.** It keeps only ``(namespace, name) → (uid, resourceVersion)``, for the
  relist diff: about 200 bytes per object (36,000 FlowRuns ≈ 7 MB), not the objects.
  A consumer that needs nothing more of an object once it reached a final state (a
  finished FlowRun) passes ``remember``: objects it rejects are delivered but not
  remembered, so memory follows the live objects, not the history. The price, for those
  objects only: a relist delivers them again as ``ADDED``, a watch event as ``ADDED``
  rather than ``MODIFIED``, and a deletion while the watch was away goes unreported
  (a deletion seen on the watch is always delivered).

The label selector is sent to the server and also applied here (not every server, nor
every proxy, filters watches): an object that stops matching is ``DELETED``, one that
starts matching is ``ADDED``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiohttp

from headwater_operator import kube, selectors

logger = logging.getLogger(__name__)

EventHandler = Callable[[str, kube.JsonObject], None]
"""``on_event(type, object)``: synchronous, called on the event loop; must be cheap."""

Sleep = Callable[[float], Awaitable[None]]
ObjectKey = tuple[str, str]
"""(namespace, name); the namespace is ``""`` for cluster-scoped kinds."""
Known = tuple[str, str]
"""(uid, resourceVersion) of an object the informer has delivered."""

DEFAULT_BACKOFF: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30)
"""Seconds to wait before successive retries; the last step repeats."""

DEFAULT_PAGE_SIZE = 500
"""Objects per LIST page (``limit``), as client-go's reflector asks: a relist of 100,000
FlowRuns then never needs one response (and one parsed list) of them all in memory, and
the server answers each page quickly. ``page_size=None`` lists in one request."""

RETRIED_ERRORS: tuple[type[BaseException], ...] = (
    kube.KubeError, aiohttp.ClientError, TimeoutError, OSError, ValueError)
"""What a LIST or WATCH may raise that the informer waits out and retries: connection
trouble, timeouts, error responses (5xx, 429, but also 403 until RBAC is fixed or 404
until the CRD is installed) and a garbled line (ValueError from ``json.loads``)."""

MALFORMED: tuple[type[Exception], ...] = (KeyError, TypeError, AttributeError)
"""What reading ``metadata.name`` and friends of an object without them raises."""


def label_matcher(
    selector: str | Mapping[str, str] | None,
) -> Callable[[kube.JsonObject], bool] | None:
    """A predicate on objects for a label selector (``k=v,k2`` or a dict); None for none.

    The grammar is the API server's (:mod:`headwater_operator.selectors`, the
    emulator's own parser: a pure module that needs none of the ``dev`` extra), so
    client-side filtering agrees with the server's. A selector the server would reject
    raises :class:`~headwater_operator.selectors.SelectorError` here, at once.
    """
    if isinstance(selector, Mapping):
        selector = selectors.format_label_selector(selector)
    requirements = selectors.parse_label_selector(selector)
    if not requirements:
        return None

    def matches(obj: kube.JsonObject) -> bool:
        return selectors.labels_match(requirements, obj["metadata"].get("labels"))

    return matches


def _key(meta: kube.JsonObject) -> ObjectKey:
    return meta.get("namespace") or "", meta["name"]


def _tombstone(key: ObjectKey, known: Known) -> kube.JsonObject:
    """The minimal object a relist delivers as DELETED: all the informer remembers."""
    namespace, name = key
    meta: kube.JsonObject = {"name": name, "uid": known[0]}
    if namespace:
        meta["namespace"] = namespace
    if known[1]:
        meta["resourceVersion"] = known[1]
    return {"metadata": meta}


class Informer:
    """LIST + WATCH of one resource kind, delivered to ``on_event`` (see the module).

    ``namespace`` None watches every namespace. ``label_selector`` restricts the objects
    (server- and client-side). ``watch_timeout_seconds`` is how long each watch request
    lasts before the server ends it and the informer re-watches. ``page_size`` is the
    LIST's page size (None: unpaged). ``sleep`` is injectable so tests need not wait out
    the ``backoff``.
    """

    def __init__(self, client: kube.Kube, resource: kube.Resource, *,
                 namespace: str | None, on_event: EventHandler,
                 label_selector: str | Mapping[str, str] | None = None,
                 watch_timeout_seconds: int = 300,
                 page_size: int | None = DEFAULT_PAGE_SIZE,
                 backoff: Sequence[float] = DEFAULT_BACKOFF,
                 sleep: Sleep = asyncio.sleep,
                 remember: Callable[[kube.JsonObject], bool] | None = None) -> None:
        if not backoff:
            raise ValueError("Informer backoff must have at least one step (seconds)")
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.on_event = on_event
        self.label_selector = label_selector
        self.watch_timeout_seconds = watch_timeout_seconds
        self.page_size = page_size
        self.backoff = tuple(backoff)
        self.synced = asyncio.Event()
        """Set once the first LIST has been delivered through ``on_event``."""
        self._sleep = sleep
        self._remember = remember
        self._matches = label_matcher(label_selector)
        self._known: dict[ObjectKey, Known] = {}
        self._resource_version: str | None = None
        self._failures = 0
        self._watched_since_list = False
        """Whether a watch connected since the last LIST (see :meth:`run` on Gone)."""

    @property
    def resource_version(self) -> str | None:
        """Where the next watch starts (None: the next step is a LIST)."""
        return self._resource_version

    def __len__(self) -> int:
        """How many objects the informer currently knows (delivered and not deleted)."""
        return len(self._known)

    async def run(self) -> None:
        """LIST, WATCH and recover, until cancelled (see the module docstring)."""
        while True:
            try:
                if self._resource_version is None:
                    await self._relist()
                await self._watch()
            except kube.Gone as exc:
                # The watch's version was compacted away: only a fresh LIST can resume.
                # At once, unless not even the version of the LIST just made was accepted
                # (then back off rather than list in a tight loop).
                self._resource_version = None
                if self._watched_since_list:
                    logger.info("watching %s: %s; listing again", self._what(), exc)
                else:
                    await self._retry_later(exc)
            except RETRIED_ERRORS as exc:
                await self._retry_later(exc)

    # --- steps ----------------------------------------------------------------------------
    async def _relist(self) -> None:
        """LIST page by page, diffing each page against what was known (see the module)."""
        previous, self._known = self._known, {}
        version: str | None = None
        pages = self.client.list_pages(
            self.resource, namespace=self.namespace, label_selector=self.label_selector,
            page_size=self.page_size)
        try:
            async with contextlib.aclosing(pages):
                async for items, page_version in pages:
                    if version is not None and page_version != version:
                        # The list restarted (its continue token expired): what this relist
                        # delivered so far is what is known; diff the new pages against it.
                        previous.update(self._known)
                        self._known = {}
                    version = page_version
                    for obj in items:
                        try:
                            self._relist_one(obj, previous)
                        except MALFORMED as exc:
                            self._skip_malformed("listed", obj, exc)
        except BaseException:
            # Interrupted between pages: keep knowing the objects not listed again yet, so
            # the next relist still reports their deletion.
            previous.update(self._known)
            self._known = previous
            raise
        self._failures = 0  # a good answer: the next failure waits the first step again
        self._watched_since_list = False
        for key, before in previous.items():
            self._deliver("DELETED", _tombstone(key, before))
        self._resource_version = version or None
        self.synced.set()

    def _relist_one(self, obj: kube.JsonObject, previous: dict[ObjectKey, Known]) -> None:
        """Diff one listed object against what was known (``previous``, consumed)."""
        if self._matches is not None and not self._matches(obj):
            return
        meta = obj["metadata"]
        key = _key(meta)
        now: Known = (meta.get("uid") or "", str(meta.get("resourceVersion") or ""))
        if self._remember is None or self._remember(obj):
            self._known[key] = now
        before = previous.pop(key, None)
        if before is None:
            self._deliver("ADDED", obj)
        elif before[0] != now[0]:
            self._deliver("DELETED", _tombstone(key, before))
            self._deliver("ADDED", obj)
        elif before[1] != now[1]:
            self._deliver("MODIFIED", obj)

    async def _watch(self) -> None:
        """One watch request, from the last resourceVersion, until the server ends it."""
        stream = self.client.watch(
            self.resource, namespace=self.namespace, resource_version=self._resource_version,
            label_selector=self.label_selector, timeout_seconds=self.watch_timeout_seconds)
        async with contextlib.aclosing(stream):
            async for kind, obj in stream:
                self._connected()
                try:
                    self._apply(kind, obj)
                except MALFORMED as exc:
                    self._skip_malformed(kind, obj, exc)
        self._connected()  # a quiet watch that the server ended was a good connection too

    def _connected(self) -> None:
        # The next failure waits the first backoff step again.
        self._failures = 0
        self._watched_since_list = True

    def _apply(self, kind: str, obj: kube.JsonObject) -> None:
        """Bookkeeping and delivery of one watch event: the per-event hot path."""
        meta = obj["metadata"]
        version = meta.get("resourceVersion")
        if version:
            self._resource_version = version
        if kind == "BOOKMARK":
            return
        key = _key(meta)
        known = self._known
        if kind == "DELETED":
            # Unknown, it may still be one ``remember`` declined: the consumer decides.
            if known.pop(key, None) is not None or self._remember is not None:
                self._deliver(kind, obj)
            return
        if self._matches is not None and not self._matches(obj):
            if known.pop(key, None) is not None:
                self._deliver("DELETED", obj)  # it left the selection
            return
        before = known.get(key)
        if self._remember is None or self._remember(obj):
            known[key] = (meta.get("uid") or "", version or "")
        elif before is not None:
            del known[key]
        self._deliver("ADDED" if before is None else "MODIFIED", obj)

    def _deliver(self, kind: str, obj: kube.JsonObject) -> None:
        try:
            self.on_event(kind, obj)
        except Exception:
            # One bad object (or a handler bug) must not blind the controller to the rest.
            meta = obj.get("metadata") or {}
            logger.exception("the %s handler failed on %s %s/%s", self.resource.plural, kind,
                             meta.get("namespace") or "", meta.get("name"))

    def _skip_malformed(self, kind: str, obj: object, error: Exception) -> None:
        # Retrying would read the same object again: skip it, loudly, and go on.
        logger.error("watching %s: skipped a %s object without the usual metadata (%s: %s): "
                     "%.200r", self._what(), kind, type(error).__name__, error, obj)

    async def _retry_later(self, error: BaseException) -> None:
        delay = self.backoff[min(self._failures, len(self.backoff) - 1)]
        self._failures += 1
        logger.warning("watching %s failed (%s: %s); retrying in %s s", self._what(),
                       type(error).__name__, error, delay)
        await self._sleep(delay)

    def _what(self) -> str:
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        selector = f", selector {self.label_selector}" if self.label_selector else ""
        return f"{self.resource.plural} in {where}{selector}"


class SharedInformer:
    """One kind's :class:`Informer` per watched namespace, fanned out to many handlers.

    Every controller that needs a kind registers its callback here (:meth:`add_handler`,
    before :meth:`run`), so each kind is listed and watched once per process however many
    controllers read it — the shape of client-go's shared informers. Handlers are called
    in registration order with the *same* object: they must treat it as read-only (a
    consumer that keeps a trimmed copy makes its own). A handler that raises is logged
    and does not keep the event from the others.
    """

    def __init__(self, client: kube.Kube, resource: kube.Resource,
                 namespaces: Sequence[str | None], *,
                 label_selector: str | Mapping[str, str] | None = None,
                 watch_timeout_seconds: int = 300) -> None:
        self.resource = resource
        self.label_selector = label_selector
        self.handlers: list[EventHandler] = []
        self._informers = [
            Informer(client, resource, namespace=namespace, on_event=self._fan_out,
                     label_selector=label_selector,
                     watch_timeout_seconds=watch_timeout_seconds)
            for namespace in namespaces]
        self._started = False

    def add_handler(self, handler: EventHandler) -> None:
        """Deliver every event of this kind to ``handler`` too (only before :meth:`run`)."""
        if self._started:
            raise RuntimeError(f"the {self.resource.plural} informer is running already: "
                               "register handlers before it starts")
        self.handlers.append(handler)

    @property
    def synced(self) -> bool:
        """Whether every namespace's first LIST has been delivered."""
        return all(informer.synced.is_set() for informer in self._informers)

    async def wait_synced(self) -> None:
        """Return once every namespace's first LIST has been delivered."""
        await asyncio.gather(*(informer.synced.wait() for informer in self._informers))

    def __len__(self) -> int:
        return sum(len(informer) for informer in self._informers)

    async def run(self) -> None:
        """List and watch every namespace until cancelled."""
        self._started = True
        await asyncio.gather(*(informer.run() for informer in self._informers))

    def _fan_out(self, kind: str, obj: kube.JsonObject) -> None:
        for handler in self.handlers:
            try:
                handler(kind, obj)
            except Exception:
                meta = obj.get("metadata") or {}
                logger.exception("a %s handler (%s) failed on %s %s/%s",
                                 self.resource.plural, getattr(handler, "__qualname__", handler),
                                 kind, meta.get("namespace") or "", meta.get("name"))


class InformerFactory:
    """The process's shared informers: one per kind (and label selector), created on
    first request, started together (see :class:`SharedInformer`)."""

    def __init__(self, client: kube.Kube, namespaces: Sequence[str] | None, *,
                 watch_timeout_seconds: int = 300) -> None:
        self.client = client
        self.namespaces: list[str | None] = (
            list(namespaces) if namespaces is not None else [None])
        self.watch_timeout_seconds = watch_timeout_seconds
        self._informers: dict[tuple[str, str, str, bool], SharedInformer] = {}

    def informer(self, resource: kube.Resource,
                 label_selector: str | None = None) -> SharedInformer:
        """The shared informer of ``resource`` (created on first request)."""
        # Metadata-only reads of a kind are another feed than whole objects.
        key = (resource.api_version, resource.plural, label_selector or "",
               resource.metadata_only)
        found = self._informers.get(key)
        if found is None:
            found = self._informers[key] = SharedInformer(
                self.client, resource, self.namespaces, label_selector=label_selector,
                watch_timeout_seconds=self.watch_timeout_seconds)
        return found

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    async def run(self) -> None:
        """Run every informer until cancelled."""
        await asyncio.gather(*(informer.run() for informer in self._informers.values()))

    async def wait_synced(self) -> None:
        """Return once every informer has delivered its first LIST."""
        await asyncio.gather(*(informer.wait_synced()
                               for informer in self._informers.values()))


class Store:
    """The latest body of every object of one kind, kept from its informer's events.

    For kinds whose objects a controller reads whole and often but which are few
    (Deployments, Flows): a FlowRun step then reads its Deployment from memory. Register
    :meth:`on_event` on the kind's :class:`SharedInformer` *before* the controllers'
    handlers, so they see the store already updated. Objects are kept as delivered and
    shared: read-only for everyone.
    """

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, kube.JsonObject] = {}

    def on_event(self, kind: str, obj: kube.JsonObject) -> None:
        """Keep (or drop, on ``DELETED``) the object."""
        key = _key(obj["metadata"])
        if kind == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj

    def get(self, namespace: str, name: str) -> kube.JsonObject | None:
        """The latest body of ``namespace/name``, or None if the watch does not know it."""
        return self._objects.get((namespace, name))

    def items(self) -> list[tuple[ObjectKey, kube.JsonObject]]:
        return list(self._objects.items())

    def __len__(self) -> int:
        return len(self._objects)
