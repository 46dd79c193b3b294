"""Post Kubernetes Events (what ``kubectl describe`` lists) in the background.

The controllers' one way to tell users what happened to an object. Why our own poster and
not kopf's: kopf's ``kopf.event()`` works only inside kopf's per-object handlers (it
reads a queue from a context variable that kopf sets there), and Headwater's controllers
are not kopf handlers.

What it must respect:

* **Never in the way.** :meth:`EventRecorder.post` returns at once; the Event is created
  by a background task, at most :data:`MAX_CONCURRENT_POSTS` at a time, so a reconcile
  never waits for an Event and a burst (5,000 Schedules ticking on the same minute) does
  not open thousands of connections.
* **Bounded.** At most :data:`MAX_PENDING` Events wait; beyond that new ones are dropped
  with one WARNING per burst (the objects' status and the metrics still say everything
  an Event says).
* **Never raises.** A failed post is logged at WARNING and not retried (the client has
  already retried what is safe to retry).
* **Events are core/v1 Events** as kubectl and client-go's recorder write them: a
  ``generateName`` of the object's name, ``involvedObject`` with its uid, ``source`` and
  ``reportingComponent`` ``headwater-operator``, and a message of at most 1,024 bytes
  (:func:`event_message`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from headwater_operator import kube
from headwater_operator.kubetime import format_time

logger = logging.getLogger(__name__)

COMPONENT = "headwater-operator"
MAX_CONCURRENT_POSTS = 8
MAX_PENDING = 10_000
EVENT_MESSAGE_MAX_BYTES = 1024
"""The longest Event message the API server takes: 1024 *bytes* (Go's ``len``;
``pkg/apis/core/validation/events.go``: "can have at most 1024 characters"), so a
non-ASCII message cut at 1024 characters would still be refused."""


def event_message(text: str) -> str:
    """``text`` cut to what an Event may carry, on a UTF-8 character boundary."""
    encoded = text.encode()
    if len(encoded) <= EVENT_MESSAGE_MAX_BYTES:
        return text
    return encoded[:EVENT_MESSAGE_MAX_BYTES].decode("utf-8", "ignore")


def event_body(involved: Mapping[str, Any], type_: str, reason: str, message: str,
               now: datetime) -> dict[str, Any]:
    """A core/v1 Event about ``involved`` (a body with apiVersion, kind and metadata)."""
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    when = format_time(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
            "name": meta.get("name"), "namespace": namespace, "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": event_message(message),
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
    }


class EventRecorder:
    """Posts Events with ``client`` in the background (see the module docstring)."""

    def __init__(self, client: kube.Kube, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_concurrent: int = MAX_CONCURRENT_POSTS,
                 max_pending: int = MAX_PENDING) -> None:
        self.client = client
        self._now = now
        self._slots = asyncio.Semaphore(max_concurrent)
        self._max_pending = max_pending
        self._pending: set[asyncio.Task[None]] = set()
        self._dropping = False
        self.posted = 0
        self.dropped = 0

    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        """Post a ``type_`` (``Normal``/``Warning``) Event with ``reason`` and ``message``."""
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            if not self._dropping:
                logger.warning("%d Events are waiting to be posted; dropping new ones until "
                               "they are (the objects' status says the same)",
                               len(self._pending))
            self._dropping = True
            return
        self._dropping = False
        body = event_body(involved, type_, reason, message, self._now())
        task = asyncio.ensure_future(self._post(body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _post(self, body: dict[str, Any]) -> None:
        async with self._slots:
            try:
                await self.client.create(kube.EVENTS, body,
                                         namespace=body["metadata"]["namespace"])
                self.posted += 1
            except Exception as exc:
                logger.warning("could not post Event %s on %s %s: %s", body["reason"],
                               body["involvedObject"]["kind"],
                               body["involvedObject"]["name"], exc)

    async def close(self, grace: float) -> None:
        """Let pending Events be posted for ``grace`` seconds, then drop the rest."""
        pending = list(self._pending)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
