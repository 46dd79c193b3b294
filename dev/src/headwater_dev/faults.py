"""Fault injection for the emulator: the failures a busy, restarting or flaky API server gives.

A :class:`FaultPlan` installed on an :class:`~.emulator.Emulator` (``Emulator(faults=plan)``,
``emulator.faults = plan``, or :meth:`~.emulator.BackgroundEmulator.install_faults`) is
asked about every request for objects (not discovery, not OpenAPI) before the store is
touched. Its rules pick requests by verb, resource (``pods``, ``flowruns/status``),
namespace, name and ``User-Agent``, and fire on the first ``times`` matches, each with
``probability`` (drawn from the plan's own ``random.Random(seed)``, so a plan replays the
same draws in the same order; which request gets which draw follows the order requests
arrive in, which concurrency may vary). The first rule that fires decides the request:

* an **answer** instead of the server's — nothing is applied (:func:`throttled`,
  :func:`too_many_requests`, :func:`internal_error`, :func:`service_unavailable`,
  :func:`gateway_timeout`, or any :class:`StatusAnswer`);
* a **delay**, then the request is served (:class:`Delay`);
* a **connection reset** (TCP RST): before the request is served, or — with
  ``after_serving`` — after it was applied, the answer lost (:class:`Reset`);
* for watches: a stream **cut mid-way** after some events (:class:`CutWatch`), or a
  resume **expired** as after etcd compaction (:class:`ExpireWatch`).

Every firing is recorded in :attr:`FaultPlan.injected`; the emulator's request log records
the answer's code (0 for a reset before any answer).

What it must respect: the answers are the real API server's, byte for byte where it
matters (code, ``reason``, ``message``, ``details``, ``Retry-After``), each citing where
Kubernetes 1.32 produces it — a client tested against them meets the same in a cluster.
A plan is used from the emulator's thread and read by tests from theirs: it locks.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web

JsonObject = dict[str, Any]


# --- faults ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusAnswer:
    """The server answers ``code`` with a ``v1 Status`` (and ``Retry-After`` if set).

    ``details`` None leaves ``details`` out; ``{}`` sends ``"details": {}`` (Go encodes a
    non-nil ``*StatusDetails`` even when every field is empty).
    """

    code: int
    reason: str
    message: str
    details: JsonObject | None = None
    retry_after: int | None = None

    def status(self) -> JsonObject:
        """The ``Status`` body, fields in the order the API server writes them."""
        body: JsonObject = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def response(self) -> aiohttp.web.Response:
        """The HTTP answer."""
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else {}
        return aiohttp.web.Response(text=json.dumps(self.status()) + "\n", status=self.code,
                                    content_type="application/json", headers=headers)


@dataclass(frozen=True)
class TextAnswer:
    """The server answers with Go's ``http.Error``: a plain-text line, no ``Status``."""

    code: int
    text: str
    retry_after: int | None = None

    def response(self) -> aiohttp.web.Response:
        """The HTTP answer (``http.Error`` sets the type and ``nosniff``, adds a newline)."""
        headers = {"X-Content-Type-Options": "nosniff"}
        if self.retry_after:
            headers["Retry-After"] = str(self.retry_after)
        return aiohttp.web.Response(text=self.text + "\n", status=self.code, headers=headers,
                                    content_type="text/plain", charset="utf-8")


@dataclass(frozen=True)
class Delay:
    """The request is served after ``seconds`` (a slow server or network)."""

    seconds: float


@dataclass(frozen=True)
class Reset:
    """The connection is reset (TCP RST) instead of answered.

    ``after_serving`` False: before the store is touched (a server going away). True: the
    request is served — a write is applied — and its answer lost with the connection, the
    case that makes retrying a non-idempotent request dangerous.
    """

    after_serving: bool = False


@dataclass(frozen=True)
class CutWatch:
    """A watch sends ``after_events`` events, then its connection is reset mid-stream."""

    after_events: int = 1


@dataclass(frozen=True)
class ExpireWatch:
    """A watch from a resourceVersion (not ``0``) is answered as when etcd compacted that
    version away: 200, then one ``ERROR`` event, ``410 Expired``, and the end of the stream.

    As the watch cache answers (apiserver v0.32.9 ``pkg/storage/cacher/cacher.go``
    ``Watch``: errors after admission become an ``ERROR`` event through ``newErrWatcher``;
    ``watch_cache.go`` ``getAllEventsSinceLocked``: ``too old resource version: %d (%d)``).
    A watch without a resourceVersion does not match.
    """

    def status(self, requested: str, oldest: int) -> JsonObject:
        """The ``Status`` of the ``ERROR`` event."""
        return StatusAnswer(410, "Expired", f"too old resource version: {requested} "
                                            f"({oldest})").status()


Answer = StatusAnswer | TextAnswer
Fault = StatusAnswer | TextAnswer | Delay | Reset | CutWatch | ExpireWatch


def throttled(retry_after: int = 1) -> TextAnswer:
    """429 from API Priority and Fairness (or max-in-flight) rejecting a request.

    apiserver v0.32.9 ``pkg/server/filters/priority-and-fairness.go`` ``tooManyRequests``
    (and ``maxinflight.go``, ``Retry-After: 1``): ``http.Error`` with a plain-text body —
    no ``Status``; client-go then words it "the server has received too many requests and
    has asked us to try again later" (apimachinery ``NewGenericServerResponse``).
    """
    return TextAnswer(429, "Too many requests, please try again later.", retry_after)


def too_many_requests(message: str = "storage is (re)initializing",
                      retry_after: int = 1) -> StatusAnswer:
    """429 as a ``Status``: apimachinery v0.32.9 ``pkg/api/errors`` ``NewTooManyRequests``,
    written by ``responsewriters.ErrorNegotiated`` (which copies ``retryAfterSeconds`` into
    ``Retry-After``); the default message is the watch cache's while it initialises
    (apiserver ``pkg/storage/cacher/cacher.go``)."""
    return StatusAnswer(429, "TooManyRequests", message,
                        {"retryAfterSeconds": retry_after}, retry_after)


def internal_error(cause: str = "etcdserver: request timed out") -> StatusAnswer:
    """500 ``InternalError``: apimachinery v0.32.9 ``NewInternalError`` ("Internal error
    occurred: …", the cause repeated in ``details.causes``). The default cause is etcd's
    (``rpctypes.ErrTimeout``)."""
    return StatusAnswer(500, "InternalError", f"Internal error occurred: {cause}",
                        {"causes": [{"message": cause}]})


def service_unavailable(message: str = "apiserver is shutting down",
                        retry_after: int | None = 1) -> StatusAnswer:
    """503 ``ServiceUnavailable``: apimachinery v0.32.9 ``NewServiceUnavailable``; the
    default is a server past its shutdown delay (apiserver ``pkg/server/filters/
    waitgroup.go`` ``waitGroupWriteRetryAfterToResponse``, ``Retry-After: 1``)."""
    return StatusAnswer(503, "ServiceUnavailable", message, None, retry_after)


def gateway_timeout() -> StatusAnswer:
    """504 ``Timeout`` of a request that ran out of time, which may still complete:
    apimachinery v0.32.9 ``NewTimeoutError`` from apiserver ``pkg/endpoints/handlers/
    finisher/finisher.go`` (``retryAfterSeconds`` 0, so ``details`` is ``{}``)."""
    return StatusAnswer(504, "Timeout", "Timeout: request did not complete within requested "
                                        "timeout - context deadline exceeded", {})


# --- the plan -------------------------------------------------------------------------
@dataclass(frozen=True)
class FaultRequest:
    """What a rule can match a request on."""

    verb: str
    resource: str
    """``plural`` or ``plural/subresource``."""
    namespace: str | None = None
    name: str | None = None
    user_agent: str = ""
    resource_version: str | None = None
    """A watch's ``resourceVersion`` parameter (``ExpireWatch`` needs one)."""


@dataclass
class Rule:
    """One line of a plan: which requests, which fault, how often."""

    fault: Fault
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    user_agent: str | None = None
    """A substring of the request's ``User-Agent`` (e.g. the operator's)."""
    times: int | None = 1
    """How many requests it fires on at most (None: no limit)."""
    probability: float = 1.0
    fired: int = 0

    def matches(self, request: FaultRequest) -> bool:
        """Whether ``request`` is one this rule is about (before ``times``/``probability``)."""
        if isinstance(self.fault, CutWatch | ExpireWatch) and request.verb != "watch":
            return False
        if isinstance(self.fault, ExpireWatch) and request.resource_version in (None, "", "0"):
            return False
        return ((self.verb is None or self.verb == request.verb)
                and (self.resource is None or self.resource == request.resource)
                and (self.namespace is None or self.namespace == request.namespace)
                and (self.name is None or self.name == request.name)
                and (self.user_agent is None or self.user_agent in request.user_agent))


@dataclass(frozen=True)
class Injected:
    """A fault that fired, on which request."""

    fault: Fault
    request: FaultRequest


@dataclass
class FaultPlan:
    """Rules for the faults the emulator injects, seeded (see the module docstring)."""

    seed: int = 0
    rules: list[Rule] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()

    def add(self, fault: Fault, *, verb: str | None = None, resource: str | None = None,
            namespace: str | None = None, name: str | None = None,
            user_agent: str | None = None, times: int | None = 1,
            probability: float = 1.0) -> Rule:
        """Inject ``fault`` into matching requests: the first ``times`` of them (None: all),
        each with ``probability``. Returns the rule (its ``fired`` counts firings)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], not {probability}")
        if times is not None and times < 0:
            raise ValueError(f"times must not be negative, not {times}")
        rule = Rule(fault, verb, resource, namespace, name, user_agent, times, probability)
        with self._lock:
            self.rules.append(rule)
        return rule

    def pick(self, request: FaultRequest) -> Fault | None:
        """The fault to inject into ``request`` (recorded as injected), or None."""
        with self._lock:
            for rule in self.rules:
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if not rule.matches(request):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                self.injected.append(Injected(rule.fault, request))
                return rule.fault
        return None

    def count(self, fault_type: type[Any] | None = None, *, verb: str | None = None,
              resource: str | None = None) -> int:
        """How many injected faults match (of ``fault_type``, on ``verb``/``resource``)."""
        with self._lock:
            return sum(1 for each in self.injected
                       if (fault_type is None or isinstance(each.fault, fault_type))
                       and (verb is None or each.request.verb == verb)
                       and (resource is None or each.request.resource == resource))


# --- doing it -------------------------------------------------------------------------
def reset_connection(request: aiohttp.web.BaseRequest) -> None:
    """Drop the request's connection with a TCP RST, as a crashed server's kernel would.

    ``SO_LINGER`` with a zero timeout makes ``close`` send RST instead of FIN, so the
    client sees "connection reset by peer", not a clean end of stream.
    """
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def before_serving(fault: Fault, request: aiohttp.web.BaseRequest
                         ) -> aiohttp.web.StreamResponse | None:
    """Do ``fault``'s part before the store is touched: an answer (or, for a reset, a
    response never sent) to return instead of serving, or None to serve the request."""
    if isinstance(fault, StatusAnswer | TextAnswer):
        return fault.response()
    if isinstance(fault, Delay):
        await asyncio.sleep(fault.seconds)
    elif isinstance(fault, Reset) and not fault.after_serving:
        reset_connection(request)
        return aiohttp.web.Response(status=500)  # never sent: the transport is gone
    return None


def answer_code(fault: Fault, response: aiohttp.web.StreamResponse) -> int:
    """The code to log for a request ``fault`` decided: 0 when no answer left the server."""
    if isinstance(fault, Reset):
        return 0
    return response.status


class WatchCutter:
    """Counts a watch's events and resets its connection after ``CutWatch.after_events``
    (``None``: never)."""

    def __init__(self, request: aiohttp.web.BaseRequest, fault: Fault | None) -> None:
        self._request = request
        self._left = fault.after_events if isinstance(fault, CutWatch) else None

    def started(self) -> None:
        """The stream's headers are out: cut it now if no event may follow."""
        if self._left is not None and self._left <= 0:
            self._cut()

    def room(self) -> int | None:
        """How many more events may go out before the cut (None: no cut planned)."""
        return self._left

    def sent(self, events: int = 1) -> None:
        """``events`` more are out (at most :meth:`room`): cut the stream if those were
        the last ones allowed."""
        if self._left is not None:
            self._left -= events
            if self._left <= 0:
                self._cut()

    def _cut(self) -> None:
        # Raised like a client that went away, so the stream's writer just stops.
        reset_connection(self._request)
        raise ConnectionResetError("the fault plan cut this watch")


__all__ = [
    "CutWatch",
    "Delay",
    "ExpireWatch",
    "FaultPlan",
    "FaultRequest",
    "Injected",
    "Reset",
    "Rule",
    "StatusAnswer",
    "TextAnswer",
    "WatchCutter",
    "answer_code",
    "before_serving",
    "gateway_timeout",
    "internal_error",
    "reset_connection",
    "service_unavailable",
    "throttled",
    "too_many_requests",
]
