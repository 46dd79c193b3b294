"""The web UI's cache of the cluster: watch-backed stores and the change hub.

One :class:`~headwater_operator.informer.SharedInformer` per kind (FlowRuns,
Deployments, Schedules, Flows, Automations, Events) lists and then watches the namespaces the UI
serves, and keeps every object in an :class:`~headwater_operator.informer.Store`; pages
read those stores, never the API server, so a page costs no request however many runs
there are. Every change is also published on the :class:`ChangeHub`, which the
``/events`` endpoint streams to browsers as server-sent events.

What it must respect: no polling (the stores follow watches); objects in the stores are
shared and read-only for every reader; a slow browser never holds the watches back —
each subscriber has a bounded queue, and one that falls behind is dropped (its
``EventSource`` reconnects and reloads what it shows).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from headwater_operator import informer, kube

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 1000
"""Changes a browser may have pending before it is dropped as too slow."""

KINDS: dict[str, kube.Resource] = {
    "FlowRun": kube.FLOWRUNS,
    "Deployment": kube.DEPLOYMENTS,
    "Schedule": kube.SCHEDULES,
    "Flow": kube.FLOWS,
    "Automation": kube.AUTOMATIONS,
    "Event": kube.EVENTS,
}
"""The kinds the UI watches, by kind name (the ``kind`` of a change)."""


@dataclass(eq=False)
class Subscription:
    """One browser's stream of changes: a bounded queue; ``closed`` once dropped."""

    queue: asyncio.Queue[dict[str, str] | None] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE))
    closed: bool = False


class ChangeHub:
    """Fans each change out to every subscriber's queue, without ever waiting."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        subscription = Subscription()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription.closed = True

    def publish(self, change: dict[str, str]) -> None:
        """Queue ``change`` for every subscriber; one whose queue is full is dropped."""
        for subscription in list(self._subscribers):
            try:
                subscription.queue.put_nowait(change)
            except asyncio.QueueFull:
                logger.info("dropping a browser's event stream: %d changes pending",
                            subscription.queue.qsize())
                self.unsubscribe(subscription)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)
            with contextlib.suppress(asyncio.QueueFull):
                subscription.queue.put_nowait(None)


def change_of(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The ``{kind, namespace, name}`` a browser is told about (an Event also names the
    object it is about, as ``involvedKind``/``involvedName``)."""
    meta = obj.get("metadata") or {}
    change = {"kind": kind, "namespace": str(meta.get("namespace") or ""),
              "name": str(meta.get("name") or "")}
    if kind == "Event":
        involved = obj.get("involvedObject") or {}
        change["involvedKind"] = str(involved.get("kind") or "")
        change["involvedName"] = str(involved.get("name") or "")
    return change


class UiState:
    """The stores the pages read (``flowruns``, ``deployments``, ``schedules``, ``flows``,
    ``automations``, ``events``) and the :class:`ChangeHub`.

    Built empty (tests feed it with :meth:`apply`), or by :meth:`watching`, whose
    informers fill it once :meth:`start` runs them.
    """

    def __init__(self) -> None:
        self.flowruns = informer.Store()
        self.deployments = informer.Store()
        self.schedules = informer.Store()
        self.flows = informer.Store()
        self.automations = informer.Store()
        self.events = informer.Store()
        self.hub = ChangeHub()
        self.revisions: dict[str, int] = dict.fromkeys(KINDS, 0)
        """Per kind, how many changes were applied: a page's cache is valid while the
        revisions it was computed at hold."""
        self.factory: informer.InformerFactory | None = None
        self._task: asyncio.Task[None] | None = None

    def store(self, kind: str) -> informer.Store:
        """The store of ``kind`` (a key of :data:`KINDS`)."""
        stores = {"FlowRun": self.flowruns, "Deployment": self.deployments,
                  "Schedule": self.schedules, "Flow": self.flows,
                  "Automation": self.automations, "Event": self.events}
        return stores[kind]

    def apply(self, kind: str, event: str, obj: kube.JsonObject) -> None:
        """One watch event of ``kind``: update the store, then tell the browsers."""
        self.store(kind).on_event(event, obj)
        self.revisions[kind] = self.revisions.get(kind, 0) + 1
        self.hub.publish(change_of(kind, obj))

    @classmethod
    def watching(cls, client: kube.Kube, namespaces: Sequence[str] | None) -> UiState:
        """A state fed by informers over ``namespaces`` (None: all namespaces)."""
        state = cls()
        state.factory = informer.InformerFactory(client, namespaces)
        for kind, resource in KINDS.items():
            state.factory.informer(resource).add_handler(state.handler(kind))
        return state

    def handler(self, kind: str) -> informer.EventHandler:
        """The informer callback of ``kind``."""

        def on_event(event: str, obj: kube.JsonObject) -> None:
            self.apply(kind, event, obj)

        return on_event

    @property
    def synced(self) -> bool:
        """Whether every informer has delivered its first LIST (True without informers)."""
        return self.factory is None or all(i.synced for i in self.factory.informers)

    def start(self) -> None:
        """Run the informers in the background (nothing without them)."""
        if self.factory is not None and self._task is None:
            self._task = asyncio.create_task(self.factory.run(), name="headwater-ui-informers")

    async def stop(self) -> None:
        """Stop the informers and end every browser's stream."""
        self.hub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
