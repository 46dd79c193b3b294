"""The one module of Headwater that talks to the Kubernetes API.

Everything else (the controllers, leader election, the CLI, the sandbox) goes through
:class:`Kube`, or, from blocking code (the CLI), through its facade
:class:`BlockingKube`; ``.importlinter`` keeps it that way.
Objects are plain JSON dicts, exactly as on the wire: the pydantic models in
``headwater_operator.api`` parse them where a caller needs types.

One transport. :func:`configure` loads the connection settings with the ``kubernetes``
client's own loaders (in-cluster service account, kubeconfig with client certificates,
tokens, exec plugins and OIDC) into one ``ApiClient``, which holds the settings and
sends nothing. :class:`Kube` sends through ``aiohttp``: one long-lived
``ClientSession`` per (``ApiClient``, event loop) (:func:`transport`), built from those
settings — server URL, CA bundle or no verification, client certificate and key,
``tls-server-name``, proxy, user agent. The ``Authorization`` header is still produced
by the client's configuration (so its refresh hook re-reads a rotated service-account
token file, or re-runs an expired exec/OIDC credential), but at most every
:data:`AUTH_REFRESH_SECONDS` and off the loop (:class:`Credentials`), and once more at
once when a request gets a 401 (which is sent again once). At most
:data:`MAX_CONCURRENT_REQUESTS` requests per loop are in flight (log follows and
watches aside).

The CLI is blocking code: :class:`BlockingKube` runs :class:`Kube`'s coroutines on a
private event loop in a daemon thread and waits for each answer, streams included (a
log follow hands over text as it arrives). A loop of its own rather than
``asyncio.run`` per call: the session, its connections and the cached credentials
outlive a call (a ``run --follow`` makes one GET per poll), and a caller that already
runs a loop (a test, a notebook) can still block on it. Signals stay with the waiting
caller, so Ctrl-C interrupts a call and cancels its request on the loop.

Every request is retried by one :class:`RetryPolicy` (pure decisions:
:func:`retry_reason`, :func:`is_repeatable`, :func:`next_delay`): a 429 (honouring
``Retry-After``) for every request; a 500, 502, 503, 504 or a refused, reset or cut
connection only for requests that are safe to send twice — reads, watches until their
stream starts, creates of a named object, patches and updates conditional on a
resourceVersion, deletes with preconditions; exponential backoff with full jitter,
bounded in attempts and time. Nothing beneath retries on its own: aiohttp's resend of
idempotent methods is off in :class:`Transport`.

Why an ``aiohttp`` transport of our own rather than the ``kubernetes`` client in threads
or a second client library, and why the CLI shares it, with the measurements:
``docs/decisions.md`` ("One HTTP client, for the operator and the CLI").

Failures that the policy does not retry, or that outlast it, raise :class:`KubeError`
subclasses that carry the API server's status message: :class:`NotFound` (404),
:class:`AlreadyExists` (409 AlreadyExists), :class:`Conflict` (409 on a stale
resourceVersion), :class:`Invalid` (422, including a failed JSON-patch ``test``
operation, which is how optimistic concurrency fails), :class:`Gone` (410: a watch's
resourceVersion was compacted away, as a response or as an in-stream ``ERROR`` event).
One of these after a retry whose earlier attempt may have been applied says so
(:attr:`KubeError.after_uncertain_attempt`): a named create then meets its own object.

Watches (:meth:`Kube.watch`, with :meth:`Kube.list_with_version` to start from) are
what :mod:`headwater_operator.informer` is built on: one JSON parse per line, no
total time limit but a socket read limit, and no request slot (a watch holds its
connection for minutes).
Request and response bodies and watch lines are (de)serialized with ``orjson``
(:func:`encode_json`, :func:`decode_json`), since every request and watch event pays for
JSON; where that differs from the standard library: ``docs/decisions.md`` ("orjson for
the API client's bodies and watch lines").
A request that gets no answer, once retries are spent or not allowed, raises what the
transport raises: ``aiohttp.ClientError`` (``aiohttp.ClientConnectorError``, an
``OSError``, for a refused connection) or ``TimeoutError``.

Every request (every attempt) is reported to the observers registered with
:func:`add_request_observer` as ``(verb, http_code)``, every retry to those of
:func:`add_retry_observer` as ``(verb, reason)``; the metrics module attaches
``observe_api_request`` and ``observe_api_retry`` there (this module imports no
metrics). Requests made through kopf's session, should kopf ever make any (it watches
and posts nothing today), are reported to the request observers through
:func:`report_request`, named by :func:`api_verb` (see ``runner.login``).
"""

from __future__ import annotations

import asyncio
import builtins
import codecs
import contextlib
import functools
import json
import math
import os
import random
import signal
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Mapping,
    Sequence,
)
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

import aiohttp
import kubernetes.client
import kubernetes.config
import orjson
from headwater.contract import GROUP, VERSION

JsonObject = dict[str, Any]
Configuration = kubernetes.client.Configuration
"""Connection settings (server, TLS, credentials), as the ``kubernetes`` client loads them."""
RequestObserver = Callable[[str, int], None]
PropagationPolicy = Literal["Background", "Foreground", "Orphan"]

DEFAULT_TIMEOUT_SECONDS = 30.0

_ENCODE_OPTIONS = (
    # Non-string keys become strings, as json.dumps makes them; datetimes and dataclasses
    # are refused (TypeError), as json.dumps refuses them, rather than quietly serialized.
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS)


def encode_json(body: Any) -> bytes:
    """``body`` as UTF-8 JSON bytes, for a request.

    What ``json.dumps`` serializes, but compact, UTF-8 rather than ``\\u`` escapes,
    and a float NaN or infinity as ``null`` (``json.dumps`` writes ``NaN``, which is not
    JSON and which the API server rejects). Raises ``TypeError`` for what JSON cannot
    hold, as ``json.dumps`` does.
    """
    return orjson.dumps(body, option=_ENCODE_OPTIONS)


def decode_json(data: bytes | str) -> Any:
    """The value of the JSON document ``data`` (a response body, a watch line).

    Raises ``ValueError`` (``json.JSONDecodeError``) for what is not JSON, including
    ``NaN`` and lone surrogates, which ``json.loads`` let through; duplicate keys keep
    the last value, as with ``json.loads``; integers beyond 64 bits become floats (the
    API's integers are int64).
    """
    return orjson.loads(data)


# --- resources ------------------------------------------------------------------------
@dataclass(frozen=True)
class Resource:
    """A resource kind addressed by group, version and plural name."""

    group: str
    version: str
    plural: str
    namespaced: bool = True
    kind: str = ""
    """The kind's name: :meth:`with_type_meta` sends it when a body leaves it out."""
    metadata_only: bool = False
    """Read only the objects' ``metadata``: GETs, LISTs and watches ask the API server
    for ``PartialObjectMetadata`` (:meth:`accept`), as client-go's metadata client does,
    so the rest of an object (a Secret's data) never reaches this process."""

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of the collection, an object, or an object's subresource."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            if not namespace:
                raise ValueError(f"{self.plural} are namespaced: pass namespace=...")
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base

    def accept(self, *, collection: bool) -> str | None:
        """The ``Accept`` header of a read of this resource: None for whole objects; for
        :attr:`metadata_only`, ``PartialObjectMetadataList`` for a LIST (``collection``),
        ``PartialObjectMetadata`` for a GET or a watch, and no fallback: a server that
        cannot convert refuses (406) rather than sending whole objects."""
        if not self.metadata_only:
            return None
        target = "PartialObjectMetadataList" if collection else "PartialObjectMetadata"
        return f"application/json;as={target};g=meta.k8s.io;v=v1"

    def with_type_meta(self, body: Mapping[str, Any]) -> JsonObject:
        """``body`` with this resource's ``apiVersion`` and ``kind`` where it has none.

        What client-go's typed clients do on encode. The API server needs them: a custom
        resource without ``kind`` is refused ("Object 'Kind' is missing in …").
        """
        meta: JsonObject = {"apiVersion": self.api_version}
        if self.kind:
            meta["kind"] = self.kind
        return {**meta, **body}


PODS = Resource("", "v1", "pods", kind="Pod")
EVENTS = Resource("", "v1", "events", kind="Event")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False, kind="Namespace")
FLOWS = Resource(GROUP, VERSION, "flows", kind="Flow")
DEPLOYMENTS = Resource(GROUP, VERSION, "deployments", kind="Deployment")
SCHEDULES = Resource(GROUP, VERSION, "schedules", kind="Schedule")
FLOWRUNS = Resource(GROUP, VERSION, "flowruns", kind="FlowRun")
LEASES = Resource("coordination.k8s.io", "v1", "leases", kind="Lease")
BLOCKS = Resource(GROUP, VERSION, "blocks", kind="Block")
VARIABLES = Resource(GROUP, VERSION, "variables", kind="Variable")
CONCURRENCY_LIMITS = Resource(GROUP, VERSION, "concurrencylimits", kind="ConcurrencyLimit")
AUTOMATIONS = Resource(GROUP, VERSION, "automations", kind="Automation")
SECRETS = Resource("", "v1", "secrets", kind="Secret")
SECRETS_METADATA = Resource("", "v1", "secrets", kind="Secret", metadata_only=True)
"""Secrets without their data: the operator watches these (docs/blocks-kubernetes.md)."""


# --- errors ---------------------------------------------------------------------------
class KubeError(Exception):
    """A failed API request; ``message`` is the API server's own explanation."""

    def __init__(self, status: int, reason: str, message: str, body: JsonObject | None = None,
                 *, retry_after: float | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}
        self.retry_after = retry_after
        """Seconds the server asked the client to wait (``Retry-After``), if it did."""
        self.after_uncertain_attempt = False
        """True when an earlier attempt of the same request failed without telling whether
        the server applied it (a lost connection, a 5xx): a 409 or a failed precondition
        may then be that attempt's own doing (see :class:`RetryPolicy`)."""


class NotFound(KubeError):
    """404: the object (or its namespace, or the resource kind) does not exist."""


class AlreadyExists(KubeError):
    """409 AlreadyExists: an object with that name exists (idempotent creates: success)."""


class Conflict(KubeError):
    """409 Conflict: the write carried a stale resourceVersion; re-read and retry."""


class Invalid(KubeError):
    """422: the object or patch was rejected (e.g. a JSON-patch ``test`` op failed)."""


class Gone(KubeError):
    """410 Gone (reason ``Expired``): a watch asked for a resourceVersion older than the
    server's history (etcd compaction); list again and watch from the list's version."""


_REASONS_BY_CODE = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
                    504: "Timeout"}
"""The reason of a failure whose body is no ``Status`` (priority and fairness answers a
429 in plain text), as client-go names it (apimachinery v0.32.9 ``pkg/api/errors``
``NewGenericServerResponse``); other codes are ``Error``."""


def error_from_response(status: int, data: bytes, retry_after: str | None = None) -> KubeError:
    """The typed error for a non-2xx response with a ``Status`` body (or anything else).

    ``retry_after``: the response's ``Retry-After`` header (see :func:`retry_after_seconds`).
    """
    try:
        body = json.loads(data) if data else {}
    except ValueError:
        body = {"message": data.decode(errors="replace")}
    if not isinstance(body, dict):
        body = {"message": str(body)}
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or data.decode(errors="replace") or f"HTTP {status}")
    wait = retry_after_seconds(retry_after, body)
    if status == 404:
        return NotFound(status, reason or "NotFound", message, body)
    if status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
        return cls(status, reason or "Conflict", message, body)
    if status == 422:
        return Invalid(status, reason or "Invalid", message, body)
    if status == 410:
        return Gone(status, reason or "Gone", message, body)
    return KubeError(status, reason or _REASONS_BY_CODE.get(status, "Error"), message, body,
                     retry_after=wait)


def retry_after_seconds(header: str | None, body: Mapping[str, Any] | None = None
                        ) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds only; an HTTP date,
    which no API server sends, is ignored), else from a ``Status``'s
    ``details.retryAfterSeconds`` (the server sets both from one value: apiserver
    v0.32.9 ``pkg/endpoints/handlers/responsewriters/writers.go`` ``ErrorNegotiated``);
    None when neither says (or says 0)."""
    if header:
        with contextlib.suppress(ValueError):
            seconds = float(header.strip())
            if math.isfinite(seconds) and seconds > 0:
                return seconds
    details = (body or {}).get("details")
    given = details.get("retryAfterSeconds") if isinstance(details, Mapping) else None
    if isinstance(given, int | float) and not isinstance(given, bool) and given > 0:
        return float(given)
    return None


FINAL_REJECTIONS = frozenset({400, 403, 422})
"""HTTP codes of a write the same body gets again: a malformed request (400), a policy
(RBAC, PodSecurity, an admission webhook) forbidding it (403), or a field the server
refuses (422, e.g. a label value over 63 characters)."""


def is_final_rejection(code: int, message: str) -> bool:
    """True when the API server refused a write for good: retrying the same body is futile.

    A ``403`` for an exceeded ResourceQuota is the exception (kube-apiserver
    ``plugin/pkg/admission/resourcequota`` answers ``exceeded quota: …``): the quota frees
    up as other objects go, so it is retried like a server error (5xx, 429).
    """
    if code == 403 and "exceeded quota" in message:
        return False
    return code in FINAL_REJECTIONS


def error_from_status(status: Any) -> KubeError:
    """The typed error for a ``Status`` object, e.g. a watch's in-stream ``ERROR`` event."""
    body = status if isinstance(status, dict) else {"message": str(status)}
    code = body.get("code")
    return error_from_response(code if isinstance(code, int) else 500,
                               json.dumps(body).encode())


# --- observers ------------------------------------------------------------------------
_observers: list[RequestObserver] = []


def add_request_observer(observer: RequestObserver) -> None:
    """Call ``observer(verb, http_code)`` after every request (code 0: no response)."""
    if observer not in _observers:
        _observers.append(observer)


def remove_request_observer(observer: RequestObserver) -> None:
    """Stop calling ``observer``; unknown observers are ignored."""
    if observer in _observers:
        _observers.remove(observer)


def _notify(verb: str, code: int) -> None:
    for observer in tuple(_observers):
        try:
            observer(verb, code)
        except Exception:  # a broken metric must never break a request
            continue


def report_request(verb: str, code: int) -> None:
    """Report a request made by another client (kopf's) to the request observers."""
    _notify(verb, code)


_VERBS_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def api_verb(method: str, path: str, query: Mapping[str, str]) -> str:
    """The Kubernetes verb of an HTTP request: ``get``, ``list``, ``watch``, ``create``, …

    A GET is a ``watch`` with ``?watch=true``, a ``list`` on a collection
    (``/api/v1/namespaces/ns/pods``), else a ``get`` (one object, or discovery such as
    ``/apis/headwater.dev/v1alpha1``).
    """
    method = method.upper()
    if method != "GET":
        return _VERBS_BY_METHOD.get(method, method.lower())
    if query.get("watch", "").lower() in ("true", "1"):
        return "watch"
    return "list" if _is_collection(path) else "get"


def _is_collection(path: str) -> bool:
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return False
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # /namespaces/<ns>/<plural>[/<name>[/<subresource>]]
    return len(rest) == 1


# --- retries --------------------------------------------------------------------------
TOO_MANY_REQUESTS = "TooManyRequests"
CONNECTION_FAILED = "ConnectionFailed"
RETRIED_CODES: Mapping[int, str] = {
    429: TOO_MANY_REQUESTS, 500: "InternalError", 502: "BadGateway",
    503: "ServiceUnavailable", 504: "Timeout",
}
"""The HTTP codes a request is retried on, and the reason each is counted under."""

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # reset, refused, aborted, broken pipe
    aiohttp.ClientConnectionError,  # refused, reset, server disconnected
    aiohttp.ClientPayloadError,  # the connection died in the middle of the response body
)

RetryObserver = Callable[[str, str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long :class:`Kube` waits before repeating a request.

    **What is retried.** A ``429`` (the server asked to be called later), a ``500``,
    ``502``, ``503`` or ``504`` (a busy, restarting or failing server, or a proxy in front
    of it), and a connection that was refused, reset or cut before the answer was read
    (the API server restarting). Nothing else: a timeout has spent the request's time
    already, and a 4xx other than 429 is an answer.

    **Which requests.** A ``429`` is retried for every request: the server answers it
    before doing anything — priority and fairness and max-in-flight reject a request
    before any handler runs (apiserver v0.32.9 ``pkg/server/filters/
    priority-and-fairness.go``, ``maxinflight.go``), as does a server shutting down
    (``with_retry_after.go``) and the watch cache while it initialises (``pkg/storage/
    cacher/cacher.go``) — and client-go retries it whatever the method (client-go v0.32.9
    ``rest/with_retry.go`` ``checkWait``). The others may come *after* the server applied
    the request (a ``500``/``504`` from an etcd write that timed out but commits later, an
    answer lost with its connection), so they are retried only for requests that are safe
    to send twice (:func:`is_repeatable`):

    * reads — GET of an object, a list, a log, discovery, and a watch until its stream
      starts: they change nothing;
    * a create (POST to a collection) of an object with ``metadata.name``: the second one
      gets ``409 AlreadyExists``, which Headwater's callers read as success (a scheduled
      run, an attempt's pod, the Lease, a backfill run), never a second object;
      ``generateName`` creates would make a second object and are never retried on these;
    * a patch that carries a precondition — ``metadata.resourceVersion`` in a merge
      patch, or a JSON-patch ``test`` of ``/metadata/resourceVersion`` — and a PUT (an
      update or a status replace) with ``metadata.resourceVersion``: once the first
      applied, the second fails on the precondition (``409 Conflict``, or ``422`` for the
      ``test``) instead of applying twice;
    * a delete with ``preconditions`` (resourceVersion or uid): the second answers
      ``404``/``409``, and cannot delete a new object created under the same name.

    Such a second answer after an attempt that may have been applied carries
    :attr:`KubeError.after_uncertain_attempt`. client-go (``rest/request.go``
    ``request``) retries a lost connection only for GETs, and a 5xx only when it carries
    ``Retry-After`` but then whatever the method; this policy reads the request instead.

    **How long.** Exponential backoff with full jitter: before retry ``n`` (0 first) a
    uniformly random wait in ``[0, min(max_delay, base_delay·2ⁿ)]``, so clients failed by
    one outage do not return in step. A ``Retry-After`` (or ``details.
    retryAfterSeconds``) is a floor, capped at ``max_delay``: the wait is that many seconds
    plus the jitter (client-go waits exactly ``Retry-After``; the jitter keeps a crowd
    told "1" from returning in the same instant), never more than ``max_delay``.
    Bounded twice: at most ``max_attempts`` attempts in all, and no retry whose wait
    would end more than ``max_elapsed`` seconds after the first failure. The first
    attempt costs nothing extra: the bookkeeping starts with the first failure.
    Defaults: 8 attempts, 0.25 s doubling to 10 s, 30 s — up to about 26 s of waiting,
    about a restart of an API server, where kopf's client waits up to 54 s
    (``settings.networking.error_backoffs``) and client-go up to ten times ``Retry-After``.
    ``random`` (a function returning [0, 1)) is injectable for seeded tests.
    """

    max_attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 10.0
    max_elapsed: float = 30.0
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1 (1: no retries)")
        if min(self.base_delay, self.max_delay, self.max_elapsed) < 0:
            raise ValueError("RetryPolicy delays must not be negative")


DEFAULT_RETRY_POLICY = RetryPolicy()
NO_RETRIES = RetryPolicy(max_attempts=1)
"""Every failure is raised at once (a 401 is still re-sent once with fresh credentials)."""
INTERACTIVE_RETRY_POLICY = RetryPolicy(max_attempts=4, base_delay=0.25, max_delay=2.0,
                                       max_elapsed=5.0)
"""The CLI's commands (a person waits for the answer): a wrong kubeconfig or a server
that is down is reported within about two seconds (three retries, at most 0.25 + 0.5 +
1 s of waiting), not after :data:`DEFAULT_RETRY_POLICY`'s ~26 s meant to outlast an API
server's restart; a ``Retry-After`` is still honoured, up to 2 s a wait. kubectl does
not retry a refused connection at all; client-go retries a ``429`` up to ten times."""


def retry_reason(error: BaseException) -> str | None:
    """The reason a failed request may be retried (a :data:`RETRIED_CODES` value or
    :data:`CONNECTION_FAILED`), or None when the failure is final."""
    if isinstance(error, KubeError):
        return RETRIED_CODES.get(error.status)
    if isinstance(error, TimeoutError):  # aiohttp's read timeouts are connection errors too
        return None
    if isinstance(error, _CONNECTION_ERRORS):
        return CONNECTION_FAILED
    return None


def is_repeatable(method: str, path: str, body: Any) -> bool:
    """Whether sending this request twice can do no more than sending it once.

    See :class:`RetryPolicy` for each class of request and why it is safe.
    """
    method = method.upper()
    if method == "GET":
        return True
    meta = body.get("metadata") if isinstance(body, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    if method == "POST":
        return bool(meta.get("name")) and _is_collection(path)
    if method == "PUT":
        return bool(meta.get("resourceVersion"))
    if method == "PATCH":
        if isinstance(body, Sequence) and not isinstance(body, str | bytes):
            return any(isinstance(op, Mapping) and op.get("op") == "test"
                       and op.get("path") == "/metadata/resourceVersion"
                       and op.get("value") for op in body)
        return bool(meta.get("resourceVersion"))
    if method == "DELETE":
        preconditions = body.get("preconditions") if isinstance(body, Mapping) else None
        return (isinstance(preconditions, Mapping) and not _is_collection(path)
                and bool(preconditions.get("resourceVersion") or preconditions.get("uid")))
    return False


def backoff_delay(policy: RetryPolicy, retry: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first), see
    :class:`RetryPolicy`: full jitter, over the server's ``retry_after`` if it gave one."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** min(retry, 64))
    jitter = policy.random() * ceiling
    if retry_after is None:
        return jitter
    return min(policy.max_delay, retry_after + jitter)


def next_delay(policy: RetryPolicy, *, reason: str | None, repeatable: bool, retry: int,
               elapsed: float, retry_after: float | None = None) -> float | None:
    """Seconds to wait before retry number ``retry`` of a failed request, or None to give up.

    ``reason``: :func:`retry_reason` of the failure; ``repeatable``: :func:`is_repeatable`
    of the request; ``elapsed``: seconds since its first failure.
    """
    if reason is None or not (repeatable or reason == TOO_MANY_REQUESTS):
        return None
    if retry + 1 >= policy.max_attempts:
        return None
    delay = backoff_delay(policy, retry, retry_after)
    if elapsed + delay > policy.max_elapsed:
        return None
    return delay


class Attempts:
    """The retry bookkeeping of one request, created at its first failure."""

    __slots__ = ("_body", "_method", "_path", "_policy", "_started", "_uncertain", "_verb",
                 "retries")

    def __init__(self, policy: RetryPolicy, verb: str, method: str, path: str,
                 body: Any) -> None:
        self._policy = policy
        self._verb, self._method, self._path, self._body = verb, method, path, body
        self._started = time.monotonic()
        self._uncertain = False
        self.retries = 0

    def delay_after(self, error: BaseException) -> float | None:
        """Seconds to wait before sending the request again after ``error``, or None:
        give up and raise it (marked :attr:`KubeError.after_uncertain_attempt` when an
        earlier attempt's fate is unknown)."""
        reason = retry_reason(error)
        delay = None if reason is None else next_delay(
            self._policy, reason=reason, retry=self.retries,
            repeatable=is_repeatable(self._method, self._path, self._body),
            elapsed=time.monotonic() - self._started,
            retry_after=getattr(error, "retry_after", None))
        if delay is None:
            if isinstance(error, KubeError):
                error.after_uncertain_attempt = self._uncertain
            return None
        # A 429 is answered before the server does anything; the rest may come after.
        self._uncertain = self._uncertain or reason != TOO_MANY_REQUESTS
        self.retries += 1
        _notify_retry(self._verb, str(reason))
        return delay


_retry_observers: list[RetryObserver] = []


def add_retry_observer(observer: RetryObserver) -> None:
    """Call ``observer(verb, reason)`` before every retry (``reason``: a
    :data:`RETRIED_CODES` value or :data:`CONNECTION_FAILED`)."""
    if observer not in _retry_observers:
        _retry_observers.append(observer)


def remove_retry_observer(observer: RetryObserver) -> None:
    """Stop calling ``observer``; unknown observers are ignored."""
    if observer in _retry_observers:
        _retry_observers.remove(observer)


def _notify_retry(verb: str, reason: str) -> None:
    for observer in list(_retry_observers):
        with contextlib.suppress(Exception):  # a broken metric must never break a request
            observer(verb, reason)


# --- JSON patch helpers ---------------------------------------------------------------
def escape_pointer(key: str) -> str:
    """Escape one JSON-pointer segment (``a/b`` → ``a~1b``), e.g. for label keys."""
    return key.replace("~", "~0").replace("/", "~1")


def jp_test(path: str, value: Any) -> JsonObject:
    """A JSON-patch ``test`` op: the patch fails (422, :class:`Invalid`) unless it holds."""
    return {"op": "test", "path": path, "value": value}


def jp_replace(path: str, value: Any) -> JsonObject:
    """A JSON-patch ``replace`` op (the path must exist)."""
    return {"op": "replace", "path": path, "value": value}


def jp_add(path: str, value: Any) -> JsonObject:
    """A JSON-patch ``add`` op (creates or overwrites a key; ``/-`` appends to a list)."""
    return {"op": "add", "path": path, "value": value}


def jp_remove(path: str) -> JsonObject:
    """A JSON-patch ``remove`` op (the path must exist)."""
    return {"op": "remove", "path": path}


# --- configuration --------------------------------------------------------------------
MAX_CONCURRENT_REQUESTS = 16
"""Requests in flight at once per event loop (log follows and watches excepted)."""

_deferred: ContextVar[bool] = ContextVar("headwater_deferred_requests", default=False)


@contextlib.contextmanager
def deferred_requests() -> Generator[None, None, None]:
    """Requests sent in this block, and by tasks started in it, wait for a slot of the
    :class:`RequestGate` behind every other request waiting (see there)."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


class RequestGate:
    """At most ``limit`` requests in flight; of those waiting, the next slot goes to the
    first that came, unless it was sent under :func:`deferred_requests`, in which case
    it goes only when no other request waits.

    Why: at the top of the hour thousands of Schedules fire at once and each makes two
    requests, the tick's run (a create, what the schedule lag measures) and then the
    Schedule's status (a report of it, as is the status refresh a run's end causes).
    First come first served, the status writes of the first Schedules go ahead of the
    creates of the last ones, whose runs then wait for writes that only report. Deferred
    requests still go whenever the gate has a slot no other request wants, in their own
    order; under a gate that never has one they wait for as long. (Kubernetes orders
    requests on the server instead, API Priority and Fairness, KEP-1040; client-go's own
    limiter, ``flowcontrol.NewTokenBucketRateLimiter``, knows no priorities.)
    ``async with gate`` takes a slot for the block, at the priority of the context.
    """

    def __init__(self, limit: int) -> None:
        self.free = limit
        """Slots no request holds. While one is free no request waits."""
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(), deque())
        """Those waiting: first the others, then the deferred, each in arrival order."""

    async def acquire(self) -> None:
        """Take a slot; wait for one (in the order above) while none is free."""
        if self.free > 0:
            self.free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[_deferred.get()].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot as it was cancelled: hand it on
            raise

    def release(self) -> None:
        """Give a slot back: to the next waiting request, or free."""
        for queue in self._waiting:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():  # a cancelled waiter left its place
                    waiter.set_result(None)
                    return
        self.free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

_lock = threading.Lock()
_api_client: kubernetes.client.ApiClient | None = None


def load_configuration(kubeconfig_path: str | os.PathLike[str] | None = None,
                       context: str | None = None) -> kubernetes.client.Configuration:
    """In-cluster service account first, then ``kubeconfig_path``/``$KUBECONFIG``/~/.kube.

    An explicit path or context always wins over the in-cluster account.
    """
    config = kubernetes.client.Configuration()
    if kubeconfig_path is None and context is None:
        try:
            kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=config)
            return config
        except kubernetes.config.ConfigException:
            pass
    # The client reads $KUBECONFIG once, at import; read it now so tests can repoint it.
    path = kubeconfig_path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or None
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path) if path else None, context=context,
            client_configuration=config, persist_config=False)
    except (kubernetes.config.ConfigException, FileNotFoundError) as exc:
        where = path or "~/.kube/config"
        raise KubeError(0, "NoConfiguration",
                        f"cannot configure the Kubernetes client: not in a cluster and the "
                        f"kubeconfig {where} is unusable ({exc}); set KUBECONFIG or pass "
                        "--kubeconfig") from exc
    return config


def configure(kubeconfig_path: str | os.PathLike[str] | None = None,
              context: str | None = None) -> None:
    """(Re)load the connection settings used by every client created afterwards."""
    global _api_client
    # Only its settings are used (Transport): nothing is ever sent through this client.
    client = kubernetes.client.ApiClient(load_configuration(kubeconfig_path, context))
    with _lock:
        previous, _api_client = _api_client, client
    if previous is not None:
        close_transports(previous)
        previous.close()  # type: ignore[no-untyped-call]


def close() -> None:
    """Forget the configuration (the next use configures again), close connections and
    stop the loop thread of :func:`get_blocking_client`'s client (its next call starts
    another)."""
    global _api_client
    # First: its loop closes its own sessions, awaiting them.
    _BLOCKING_CLIENT.close()
    with _lock:
        previous, _api_client = _api_client, None
    if previous is not None:
        close_transports(previous)
        previous.close()  # type: ignore[no-untyped-call]


def api_client() -> kubernetes.client.ApiClient:
    """The configured low-level client; configures from the environment on first use."""
    if _api_client is None:
        configure()
    assert _api_client is not None
    return _api_client


def client_for_token(token: str, base: kubernetes.client.Configuration | None = None
                     ) -> kubernetes.client.ApiClient:
    """A client configuration that authenticates with the bearer ``token`` and nothing else.

    The server, CA bundle, TLS verification, ``tls-server-name`` and proxy are those of
    ``base`` (default: the module-wide configuration); its credentials are not carried
    over — no client certificate, no token, no refresh hook — so every request made with
    it is the token holder's and Kubernetes RBAC decides on that identity alone (the web
    UI's client-auth mode passes on the browser's token this way). Use it through
    ``Kube(client)`` and close its sessions with :func:`close_transports` when done.
    """
    if not token or any(c.isspace() for c in token):
        raise ValueError("a bearer token is one non-empty word without whitespace")
    source = base if base is not None else api_client().configuration
    config = kubernetes.client.Configuration()
    config.host = source.host
    config.ssl_ca_cert = source.ssl_ca_cert
    config.verify_ssl = source.verify_ssl
    config.tls_server_name = source.tls_server_name
    config.proxy = source.proxy
    config.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.ApiClient(config)


def connection_info() -> tuple[str, str | None, Path | None, bool]:
    """(server URL, bearer token, CA file, verify TLS) of the current configuration."""
    config = api_client().configuration
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization") or ""
    token = header.split(" ", 1)[-1] if header else None
    ca = Path(config.ssl_ca_cert) if config.ssl_ca_cert else None
    return config.host, token, ca, bool(config.verify_ssl)


# --- requests -------------------------------------------------------------------------
def _query(**params: Any) -> list[tuple[str, str]]:
    result = []
    for key, value in params.items():
        if value is None:
            continue
        result.append((key, ("true" if value else "false") if isinstance(value, bool)
                       else str(value)))
    return result


def _list_request(resource: Resource, namespace: str | None,
                  label_selector: str | Mapping[str, str] | None,
                  field_selector: str | None) -> tuple[str, list[tuple[str, str]]]:
    """The path and query of a list: ``namespace`` None lists across all namespaces."""
    if isinstance(label_selector, Mapping):
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(label_selector.items()))
    path = resource.path(namespace) if namespace or not resource.namespaced else (
        Resource(resource.group, resource.version, resource.plural, False).path())
    return path, _query(labelSelector=label_selector, fieldSelector=field_selector)


def _patch_body(patch: Mapping[str, Any] | Sequence[Any]) -> tuple[Any, str]:
    """The body and content type: a list of ops is a JSON patch, a dict a merge patch."""
    if isinstance(patch, Sequence):
        return list(patch), "application/json-patch+json"
    return dict(patch), "application/merge-patch+json"


def _delete_options(grace_period_seconds: int | None, propagation_policy: PropagationPolicy,
                    resource_version: str | None) -> JsonObject:
    options: JsonObject = {"apiVersion": "v1", "kind": "DeleteOptions",
                           "propagationPolicy": propagation_policy}
    if grace_period_seconds is not None:
        options["gracePeriodSeconds"] = grace_period_seconds
    if resource_version is not None:
        options["preconditions"] = {"resourceVersion": resource_version}
    return options


# --- the transport and the client ------------------------------------------------------
AUTH_REFRESH_SECONDS = 10.0
"""How long the async client reuses an ``Authorization`` header before asking the
configuration again (which re-reads a rotated service-account token file, or re-runs an
expired exec/OIDC credential)."""

Monotonic = Callable[[], float]


def ssl_context(config: kubernetes.client.Configuration) -> ssl.SSLContext:
    """The TLS settings of ``config``: CA bundle, client certificate, or no verification."""
    context = ssl.create_default_context(cafile=config.ssl_ca_cert or None)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file or None)
    if not config.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _authorization(config: kubernetes.client.Configuration) -> str | None:
    # The client's own lookup, so its refresh hook (token file, exec plugin, OIDC) runs.
    return config.get_api_key_with_prefix("BearerToken", alias="authorization")


class Credentials:
    """The ``Authorization`` header, re-read from the configuration at most every
    :data:`AUTH_REFRESH_SECONDS` (or at once after a 401), off the event loop.

    Asking the configuration on every request (as the ``kubernetes`` client does) costs a
    refresh-hook call per request; an exec plugin may even start a process.
    """

    def __init__(self, config: kubernetes.client.Configuration, *,
                 clock: Monotonic = time.monotonic,
                 ttl: float = AUTH_REFRESH_SECONDS) -> None:
        self._config = config
        self._clock = clock
        self._ttl = ttl
        self._header: str | None = None
        self._expires = -math.inf
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        """Forget the header: the next request asks the configuration again."""
        self._expires = -math.inf

    async def header(self) -> str | None:
        """The current header value (``Bearer …``), or None without token auth."""
        if self._clock() < self._expires:
            return self._header
        async with self._lock:
            if self._clock() >= self._expires:  # nobody refreshed it while we waited
                self._header = await asyncio.to_thread(_authorization, self._config)
                self._expires = self._clock() + self._ttl
        return self._header


@functools.lru_cache(maxsize=64)
def _client_timeout(total: float | None, sock_read: float | None) -> aiohttp.ClientTimeout:
    # Requests use a handful of limits: one (immutable) ClientTimeout each, not one per
    # request; bounded, should a caller ever vary them.
    return aiohttp.ClientTimeout(total=total, sock_read=sock_read)


class Transport:
    """One ``aiohttp`` session on one event loop, with the settings of one ``ApiClient``.

    Sessions are loop-bound, so :func:`transport` keeps one per (client, loop).
    """

    def __init__(self, client: kubernetes.client.ApiClient, *,
                 clock: Monotonic = time.monotonic) -> None:
        config = client.configuration
        self.server = config.host.rstrip("/")
        self.proxy: str | None = config.proxy or None
        # kubeconfig's tls-server-name: the name the server's certificate is checked for.
        self.server_hostname: str | None = config.tls_server_name or None
        self.credentials = Credentials(config, clock=clock)
        # At a burst (a thousand Schedules firing at :00) requests queue here, as they
        # queued for the thread pool before, instead of each opening a connection.
        self.slots = RequestGate(MAX_CONCURRENT_REQUESTS)
        headers = {**client.default_headers, "Accept": "application/json, */*"}
        ssl_setting: ssl.SSLContext | bool = (
            ssl_context(config) if self.server.startswith("https:") else False)
        self.session = aiohttp.ClientSession(
            # No pool limit: a log follow holds its connection as long as the pod runs.
            connector=aiohttp.TCPConnector(limit=0, ssl=ssl_setting),
            headers=headers,
        )
        # aiohttp resends a GET, PUT or DELETE once by itself when its connection fails
        # (client.py, IDEMPOTENT_METHODS, after RFC 9112 section 9.3.1): a layer beneath
        # RetryPolicy that decides by method alone (a DELETE without preconditions is not
        # safe to repeat here) and that the retry metric cannot see. The switch has no
        # public name; aiohttp's own test client turns it off the same way.
        self.session._retry_connection = False

    async def request(self, verb: str, method: str, path: str, *,
                      query: Sequence[tuple[str, str]] = (), body: Any = None,
                      content_type: str = "application/json",
                      time_limit: float | None = DEFAULT_TIMEOUT_SECONDS,
                      read_limit: float | None = None,
                      accept: str | None = None,
                      ) -> aiohttp.ClientResponse:
        """Send one request; the response (2xx only, body unread) or a :class:`KubeError`.

        ``time_limit``: seconds for the whole exchange (None: none, for log follows).
        ``read_limit``: seconds any one socket read may wait (None: no limit), so a
        stream without a total limit (a watch) still ends on a silently dead connection.
        ``accept``: the ``Accept`` header, when not the session's (``application/json``).

        A 401 is sent again once with freshly read credentials (a rotated token); other
        failures raise, for :class:`Kube` to retry or not (:class:`RetryPolicy`).
        """
        data = None if body is None else encode_json(body)
        timeout = _client_timeout(time_limit, read_limit)
        for attempt in (1, 2):
            headers = {"Content-Type": content_type}
            if accept is not None:
                headers["Accept"] = accept
            if (authorization := await self.credentials.header()) is not None:
                headers["Authorization"] = authorization
            try:
                response = await self.session.request(
                    method, self.server + path, params=list(query), data=data,
                    headers=headers, proxy=self.proxy, server_hostname=self.server_hostname,
                    timeout=timeout)
            except Exception:
                _notify(verb, 0)
                raise
            _notify(verb, response.status)
            if response.status == 401 and attempt == 1:
                response.release()
                self.credentials.invalidate()
                continue
            if not 200 <= response.status <= 299:
                async with response:
                    raise error_from_response(response.status, await response.read(),
                                              response.headers.get("Retry-After"))
            return response
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def request_json(self, verb: str, method: str, path: str, *,
                           query: Sequence[tuple[str, str]] = (), body: Any = None,
                           content_type: str = "application/json",
                           accept: str | None = None) -> Any:
        """:meth:`request`, and the parsed JSON body (text if not JSON; None if empty)."""
        async with self.slots, await self.request(
                verb, method, path, query=query, body=body,
                content_type=content_type, accept=accept) as response:
            data = await response.read()
        if not data:
            return None
        return decode_json(data) if "json" in response.content_type else data.decode(
            errors="replace")

    async def aclose(self) -> None:
        """Close the session and its connections."""
        await self.session.close()


_transports: weakref.WeakKeyDictionary[
    kubernetes.client.ApiClient, dict[asyncio.AbstractEventLoop, Transport]
] = weakref.WeakKeyDictionary()
_transports_lock = threading.Lock()
_closing: set[asyncio.Task[None]] = set()


def transport(client: kubernetes.client.ApiClient) -> Transport:
    """The running loop's transport for ``client`` (created on first use)."""
    loop = asyncio.get_running_loop()
    by_loop = _transports.get(client)
    found = by_loop.get(loop) if by_loop is not None else None
    if found is not None:
        return found
    with _transports_lock:
        by_loop = _transports.get(client)
        if by_loop is None:
            by_loop = _transports[client] = {}
            # A client dropped without close() (a test's own) takes its sessions along.
            weakref.finalize(client, _close_all, by_loop)
        # A new loop (a test's, or after a restart): let go of sessions of finished ones.
        for old_loop in [old for old in by_loop if old.is_closed()]:
            _close_transport(old_loop, by_loop.pop(old_loop))
        found = by_loop.setdefault(loop, Transport(client))
    return found


def close_transports(client: kubernetes.client.ApiClient | None = None) -> None:
    """Close the sessions of ``client`` (of every client if None) on whatever loop.

    Callable from any thread, inside or outside a loop: a session is closed on its own
    loop (now if that loop is idle, else as a task on it).
    """
    with _transports_lock:
        clients = [client] if client is not None else list(_transports.keys())
        found = [_transports.pop(each, {}) for each in clients]
    for by_loop in found:
        _close_all(by_loop)


async def aclose_transports() -> None:
    """Close every session that belongs to the running loop (e.g. before it ends)."""
    loop = asyncio.get_running_loop()
    with _transports_lock:
        found = [each for by_loop in _transports.values()
                 if (each := by_loop.pop(loop, None)) is not None]
    for each in found:
        await each.aclose()


async def aclose_transports_of(client: kubernetes.client.ApiClient) -> None:
    """Close the sessions of one ``client`` (a short-lived one, e.g. of
    :func:`client_for_token`): the running loop's awaited, any other's on its loop."""
    loop = asyncio.get_running_loop()
    with _transports_lock:
        by_loop = _transports.pop(client, {})
    for each_loop, each in by_loop.items():
        if each_loop is loop:
            await each.aclose()
        else:
            _close_transport(each_loop, each)


def _close_all(by_loop: dict[asyncio.AbstractEventLoop, Transport]) -> None:
    while by_loop:
        _close_transport(*by_loop.popitem())


def _close_transport(loop: asyncio.AbstractEventLoop, found: Transport) -> None:
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop.is_closed() or running is loop:
        # A closed loop's connections were never closed, but there is no I/O left to wait
        # for: closing the session on any loop just drops them, without the warnings that
        # an unclosed session or connector logs when it is garbage-collected.
        if running is None:
            with contextlib.suppress(Exception):  # e.g. at interpreter exit
                asyncio.run(found.aclose())
            return
        task = running.create_task(found.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    elif loop.is_running():
        asyncio.run_coroutine_threadsafe(found.aclose(), loop)
    else:
        loop.run_until_complete(found.aclose())


WATCH_READ_MARGIN_SECONDS = 30.0
"""How much longer than its ``timeoutSeconds`` a watch waits for a byte before it gives
the connection up as dead (the server ends a healthy watch at ``timeoutSeconds``)."""

WatchEvent = tuple[str, JsonObject]


def parse_watch_line(line: bytes) -> WatchEvent:
    """``(type, object)`` of one watch line; an ``ERROR`` event raises its error
    (:class:`Gone` for 410: the resourceVersion is too old, list again)."""
    event = decode_json(line)
    kind: str = event["type"]
    if kind == "ERROR":
        raise error_from_status(event.get("object"))
    obj: JsonObject = event["object"]
    return kind, obj


class LineSplitter:
    """Cuts a byte stream into newline-terminated lines, however it is chunked.

    Reading chunks and cutting them here, instead of ``StreamReader.readline()``, puts no
    limit on a line's length (an object may approach etcd's 1.5 MB) and copies a line
    only when it straddles chunks.
    """

    def __init__(self) -> None:
        self._pending: builtins.list[bytes] = []

    def feed(self, chunk: bytes) -> builtins.list[bytes]:
        """The lines completed by ``chunk`` (without their newlines; blank ones dropped)."""
        lines: builtins.list[bytes] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if self._pending:
                self._pending.append(chunk[start:end])
                line = b"".join(self._pending)
                self._pending.clear()
            else:
                line = chunk[start:end]
            if line.strip():
                lines.append(line)
            start = end + 1
        if start < len(chunk):
            self._pending.append(chunk[start:])
        return lines

    def rest(self) -> bytes:
        """What followed the last newline (a final line the server did not terminate)."""
        rest = b"".join(self._pending)
        self._pending.clear()
        return rest


class Kube:
    """The client: requests over a long-lived ``aiohttp`` session per event loop.

    Connection settings (server, TLS, credentials, user agent) come from the
    ``kubernetes`` ``ApiClient`` ``client`` (by default the module-wide configured one,
    looked up at every request, so :func:`configure` repoints every such client).
    Failed requests are retried as ``retry`` says (:class:`RetryPolicy`); a retry waits
    without holding a request slot. Blocking callers use :class:`BlockingKube`.
    """

    def __init__(self, client: kubernetes.client.ApiClient | None = None,
                 retry: RetryPolicy = DEFAULT_RETRY_POLICY) -> None:
        self._client = client
        self.retry = retry

    @property
    def client(self) -> kubernetes.client.ApiClient:
        """The ``ApiClient`` whose settings the requests use (see the class docstring)."""
        return self._client or api_client()

    def _transport(self) -> Transport:
        return transport(self.client)

    async def _json(self, verb: str, method: str, path: str, *,
                    query: Sequence[tuple[str, str]] = (), body: Any = None,
                    content_type: str = "application/json",
                    accept: str | None = None) -> Any:
        transport_ = self._transport()
        attempts: Attempts | None = None
        while True:
            try:
                return await transport_.request_json(
                    verb, method, path, query=query, body=body, content_type=content_type,
                    accept=accept)
            except Exception as exc:
                attempts = attempts or Attempts(self.retry, verb, method, path, body)
                delay = attempts.delay_after(exc)
                if delay is None:
                    raise
            await asyncio.sleep(delay)

    async def _open(self, verb: str, path: str, query: Sequence[tuple[str, str]], *,
                    time_limit: float | None = DEFAULT_TIMEOUT_SECONDS,
                    read_limit: float | None = None,
                    accept: str | None = None) -> aiohttp.ClientResponse:
        """A GET whose body the caller reads (a watch, a log), retried until it answers."""
        transport_ = self._transport()
        attempts: Attempts | None = None
        while True:
            try:
                return await transport_.request(verb, "GET", path, query=query,
                                                time_limit=time_limit, read_limit=read_limit,
                                                accept=accept)
            except Exception as exc:
                attempts = attempts or Attempts(self.retry, verb, "GET", path, None)
                delay = attempts.delay_after(exc)
                if delay is None:
                    raise
            await asyncio.sleep(delay)

    async def served_resources(self, group: str, version: str) -> set[str]:
        """The resources (plural names) the API server serves in ``group/version`` now,
        from its discovery document; empty when it serves nothing there (404)."""
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            document = await self._json("get", "GET", path)
        except NotFound:
            return set()
        return {str(entry.get("name")) for entry in (document or {}).get("resources") or ()
                if "/" not in str(entry.get("name"))}

    async def create(self, resource: Resource, body: Mapping[str, Any], *,
                     namespace: str | None = None) -> JsonObject:
        """Create an object (:class:`AlreadyExists` if the name is taken)."""
        namespace = namespace or (body.get("metadata") or {}).get("namespace")
        result: JsonObject = await self._json("create", "POST", resource.path(namespace),
                                              body=resource.with_type_meta(body))
        return result

    async def create_subresource(self, resource: Resource, name: str, subresource: str,
                                 body: Mapping[str, Any], *,
                                 namespace: str | None = None) -> JsonObject:
        """POST to an object's subresource (``pods/<name>/binding``)."""
        result: JsonObject = await self._json(
            "create", "POST", resource.path(namespace, name, subresource), body=dict(body))
        return result

    async def get(self, resource: Resource, name: str, *,
                  namespace: str | None = None) -> JsonObject:
        """Read one object (:class:`NotFound` if absent)."""
        result: JsonObject = await self._json("get", "GET", resource.path(namespace, name),
                                              accept=resource.accept(collection=False))
        return result

    async def list(self, resource: Resource, *, namespace: str | None = None,
                   label_selector: str | Mapping[str, str] | None = None,
                   field_selector: str | None = None) -> builtins.list[JsonObject]:
        """Objects in ``namespace`` (all namespaces if None) matching the selectors."""
        path, query = _list_request(resource, namespace, label_selector, field_selector)
        result = await self._json("list", "GET", path, query=query,
                                  accept=resource.accept(collection=True))
        items: builtins.list[JsonObject] = result.get("items") or []
        return items

    async def list_with_version(
        self, resource: Resource, *, namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | None = None, page_size: int | None = None,
    ) -> tuple[builtins.list[JsonObject], str]:
        """Items and the list's ``metadata.resourceVersion`` (to :meth:`watch` from).

        ``page_size`` set: fetched in pages of at most that many items (see
        :meth:`list_pages`); the version is the first page's, which is the list's.
        """
        items: builtins.list[JsonObject] = []
        version: str | None = None
        pages = self.list_pages(resource, namespace=namespace, label_selector=label_selector,
                                field_selector=field_selector, page_size=page_size)
        async with contextlib.aclosing(pages):
            async for page, page_version in pages:
                if page_version != version:
                    items, version = [], page_version  # the first page, or a restarted list
                items += page
        return items, version or ""

    async def list_pages(
        self, resource: Resource, *, namespace: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | None = None, page_size: int | None = None,
    ) -> AsyncGenerator[tuple[builtins.list[JsonObject], str], None]:
        """``(items, resourceVersion)`` per page of a LIST, as the pages arrive.

        ``page_size`` None: one unpaged LIST. Otherwise pages of at most ``page_size``
        items (``limit``), each next one asked for with the previous ``continue`` token
        until there is none; every page carries the first page's resourceVersion. A
        continue token the server no longer honours (:class:`Gone`, its version was
        compacted) restarts the list from the first page, once: the pages then start
        over with a new, later resourceVersion, so a consumer tells a restart by the
        version changing. A second :class:`Gone` propagates. Close the generator
        (``contextlib.aclosing``) when stopping early.
        """
        path, query = _list_request(resource, namespace, label_selector, field_selector)
        restarted = False
        token: str | None = None
        while True:
            page_query = query + _query(limit=page_size, **{"continue": token})
            try:
                result = await self._json("list", "GET", path, query=page_query,
                                          accept=resource.accept(collection=True))
            except Gone:
                if token is None or restarted:
                    raise
                restarted, token = True, None  # the token expired: list again from the start
                continue
            meta = result.get("metadata") or {}
            if token is None:
                version = str(meta.get("resourceVersion") or "")
            items: builtins.list[JsonObject] = result.get("items") or []
            yield items, version
            token = (meta.get("continue") or None) if page_size is not None else None
            if token is None:
                return

    async def watch(
        self, resource: Resource, *, namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        timeout_seconds: int = 300, allow_bookmarks: bool = True,
    ) -> AsyncGenerator[WatchEvent, None]:
        """``(type, object)`` per watch event until the server ends the stream.

        ``namespace`` None watches all namespaces; ``resource_version`` None (or ``"0"``)
        starts with an ``ADDED`` per existing object. Types: ``ADDED``, ``MODIFIED``,
        ``DELETED`` and, with ``allow_bookmarks``, ``BOOKMARK`` (only the object's
        ``metadata.resourceVersion`` is meaningful). An ``ERROR`` event raises its
        :class:`KubeError` (:class:`Gone` for 410: list again); a connection that fails or
        stays silent past ``timeout_seconds`` + :data:`WATCH_READ_MARGIN_SECONDS` raises
        ``aiohttp.ClientError``/``TimeoutError``. Until the stream starts, failures are
        retried as for any read (:class:`RetryPolicy`); once events flow, resuming from
        the last resourceVersion is the caller's (the informer's) business.

        A watch takes none of the :data:`MAX_CONCURRENT_REQUESTS` slots (it holds its
        connection for minutes) and has no total time limit. Close the iterator
        (``contextlib.aclosing``) when stopping early: that closes the connection.
        """
        path, query = _list_request(resource, namespace, label_selector, None)
        query += _query(watch=1, resourceVersion=resource_version or None,
                        allowWatchBookmarks=allow_bookmarks or None,
                        timeoutSeconds=timeout_seconds)
        splitter = LineSplitter()
        async with await self._open(
                "watch", path, query, time_limit=None,
                read_limit=timeout_seconds + WATCH_READ_MARGIN_SECONDS,
                accept=resource.accept(collection=False)) as response:
            async for chunk in response.content.iter_any():
                for line in splitter.feed(chunk):
                    yield parse_watch_line(line)
        if (rest := splitter.rest()).strip():
            yield parse_watch_line(rest)

    async def patch(self, resource: Resource, name: str,
                    patch: Mapping[str, Any] | Sequence[Any], *, namespace: str | None = None,
                    subresource: str | None = None) -> JsonObject:
        """Merge-patch (a dict) or JSON-patch (a list of ops, see :func:`jp_test`)."""
        body, content_type = _patch_body(patch)
        result: JsonObject = await self._json(
            "patch", "PATCH", resource.path(namespace, name, subresource), body=body,
            content_type=content_type)
        return result

    async def patch_status(self, resource: Resource, name: str,
                           patch: Mapping[str, Any] | Sequence[Any], *,
                           namespace: str | None = None) -> JsonObject:
        """Patch through the ``status`` subresource (a dict is ``{"status": {...}}``)."""
        return await self.patch(resource, name, patch, namespace=namespace,
                                subresource="status")

    async def replace(self, resource: Resource, body: Mapping[str, Any], *,
                      namespace: str | None = None,
                      subresource: str | None = None) -> JsonObject:
        """PUT the whole object; with ``metadata.resourceVersion`` set, :class:`Conflict`
        if it is stale."""
        meta = body.get("metadata") or {}
        path = resource.path(namespace or meta.get("namespace"), meta.get("name"), subresource)
        result: JsonObject = await self._json("update", "PUT", path,
                                              body=resource.with_type_meta(body))
        return result

    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
                     grace_period_seconds: int | None = None,
                     propagation_policy: PropagationPolicy = "Background",
                     resource_version: str | None = None) -> JsonObject | None:
        """Delete (or, with finalizers, start deleting) an object; :class:`NotFound` if absent.

        ``resource_version`` is a precondition: :class:`Conflict` if the object changed.
        """
        options = _delete_options(grace_period_seconds, propagation_policy, resource_version)
        result: JsonObject | None = await self._json(
            "delete", "DELETE", resource.path(namespace, name), body=options)
        return result

    async def read_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                           tail_lines: int | None = None) -> str:
        """The pod's log so far (the container's stdout/stderr)."""
        text: str = await self._json("get", "GET", PODS.path(namespace, name, "log"),
                                     query=_query(container=container, tailLines=tail_lines))
        return text or ""

    async def follow_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                             tail_lines: int | None = None) -> AsyncGenerator[str, None]:
        """Log text as the container writes it, until it exits (no total time limit: it
        lasts as the pod runs). Close the iterator (``contextlib.aclosing``) when
        stopping early: that closes the connection."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        async with await self._open(
                "get", PODS.path(namespace, name, "log"),
                _query(container=container, tailLines=tail_lines, follow=True),
                time_limit=None) as response:
            async for chunk in response.content.iter_any():
                # A multi-byte character may straddle two chunks.
                if text := decoder.decode(chunk):
                    yield text
        if tail := decoder.decode(b"", final=True):
            yield tail


def get_client() -> Kube:
    """A client on the module-wide configuration."""
    return Kube()


# --- the blocking facade (the CLI's) --------------------------------------------------
CLOSE_SECONDS = 5.0
"""How long closing a :class:`BlockingKube` lets calls in flight end before it cancels
them, and then waits for its thread."""

_T = TypeVar("_T")

_CALLER_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
"""Signals the loop thread of a :class:`BlockingKube` blocks, so that they reach the
thread waiting for an answer: a signal delivered to the loop thread would not interrupt
that wait, and Ctrl-C would do nothing until the answer came."""


class BlockingKube:
    """:class:`Kube` for blocking callers (the CLI): each call waits for its answer.

    A call runs the :class:`Kube` coroutine on a private event loop in a daemon thread
    (started by the first call; stopped by :meth:`close`, when the object is collected,
    or at interpreter exit). So blocking callers get the one transport — its connection
    settings, retries (:class:`RetryPolicy`), errors (:class:`KubeError`,
    ``aiohttp.ClientError``, ``TimeoutError``) and request and retry observers — and the
    caller's context variables travel with each call. A stream (:meth:`follow_pod_log`)
    hands over each piece as it arrives; closing it early closes its connection. An
    interrupt (Ctrl-C) while a call waits cancels the request on the loop and propagates
    to the caller.

    Calls may come from several threads at once, but never from a coroutine on the
    private loop itself (it would wait for itself): await :attr:`kube` there.
    """

    def __init__(self, client: kubernetes.client.ApiClient | None = None,
                 retry: RetryPolicy = DEFAULT_RETRY_POLICY) -> None:
        self.kube = Kube(client, retry)
        """The asynchronous client that serves the calls."""
        self._lock = threading.Lock()
        self._runner: _LoopThread | None = None
        self._stop: Callable[[], object] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the private loop and its thread and close their connections (calls in
        flight get :data:`CLOSE_SECONDS` to end). A later call starts them again."""
        with self._lock:
            stop, self._stop, self._runner = self._stop, None, None
        if stop is not None:
            stop()

    def create(self, resource: Resource, body: Mapping[str, Any], *,
               namespace: str | None = None) -> JsonObject:
        """As :meth:`Kube.create`: :class:`AlreadyExists` if the name is taken."""
        return self._call(self.kube.create(resource, body, namespace=namespace))

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> JsonObject:
        """As :meth:`Kube.get`: :class:`NotFound` if absent."""
        return self._call(self.kube.get(resource, name, namespace=namespace))

    def list(self, resource: Resource, *, namespace: str | None = None,
             label_selector: str | Mapping[str, str] | None = None,
             field_selector: str | None = None) -> builtins.list[JsonObject]:
        """As :meth:`Kube.list`: the objects in ``namespace`` (all if None) that match."""
        return self._call(self.kube.list(resource, namespace=namespace,
                                         label_selector=label_selector,
                                         field_selector=field_selector))

    def patch(self, resource: Resource, name: str, patch: Mapping[str, Any] | Sequence[Any],
              *, namespace: str | None = None, subresource: str | None = None) -> JsonObject:
        """As :meth:`Kube.patch`: a dict merge-patches, a list of ops JSON-patches."""
        return self._call(self.kube.patch(resource, name, patch, namespace=namespace,
                                          subresource=subresource))

    def patch_status(self, resource: Resource, name: str,
                     patch: Mapping[str, Any] | Sequence[Any], *,
                     namespace: str | None = None) -> JsonObject:
        """As :meth:`Kube.patch_status`: through the ``status`` subresource."""
        return self._call(self.kube.patch_status(resource, name, patch, namespace=namespace))

    def replace(self, resource: Resource, body: Mapping[str, Any], *,
                namespace: str | None = None, subresource: str | None = None) -> JsonObject:
        """As :meth:`Kube.replace`: :class:`Conflict` if ``metadata.resourceVersion`` is
        stale."""
        return self._call(self.kube.replace(resource, body, namespace=namespace,
                                            subresource=subresource))

    def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
               grace_period_seconds: int | None = None,
               propagation_policy: PropagationPolicy = "Background",
               resource_version: str | None = None) -> JsonObject | None:
        """As :meth:`Kube.delete`: :class:`NotFound` if absent, :class:`Conflict` if
        ``resource_version`` (a precondition) is stale."""
        return self._call(self.kube.delete(
            resource, name, namespace=namespace, grace_period_seconds=grace_period_seconds,
            propagation_policy=propagation_policy, resource_version=resource_version))

    def read_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                     tail_lines: int | None = None) -> str:
        """As :meth:`Kube.read_pod_log`: the pod's log so far."""
        return self._call(self.kube.read_pod_log(name, namespace=namespace,
                                                 container=container, tail_lines=tail_lines))

    def follow_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                       tail_lines: int | None = None) -> Generator[str, None, None]:
        """As :meth:`Kube.follow_pod_log`: log text as the container writes it, until it
        exits. Close the generator (``contextlib.closing``) when stopping early: that
        closes the connection."""
        return self._iterate(self.kube.follow_pod_log(
            name, namespace=namespace, container=container, tail_lines=tail_lines))

    def _loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._runner is None:
                self._runner = _LoopThread()
                # Dropped unclosed, or still open at exit: the thread goes all the same.
                self._stop = weakref.finalize(self, self._runner.stop)
            runner = self._runner
        if threading.current_thread() is runner.thread:
            raise RuntimeError("a BlockingKube call from a coroutine on its own loop would "
                               "wait for itself; await BlockingKube.kube's method instead")
        return runner.loop

    def _call(self, coroutine: Coroutine[Any, Any, _T],
              loop: asyncio.AbstractEventLoop | None = None) -> _T:
        """Run ``coroutine`` on the private loop and wait for its result or error."""
        try:
            future = asyncio.run_coroutine_threadsafe(
                coroutine, self._loop() if loop is None else loop)
        except BaseException:
            coroutine.close()  # never started: no "never awaited" warning
            raise
        try:
            return future.result()
        except BaseException:
            # Interrupted while waiting (Ctrl-C): the request stops on the loop as well.
            future.cancel()
            raise

    def _iterate(self, stream: AsyncGenerator[_T, None]) -> Generator[_T, None, None]:
        """``stream``'s items as it yields them; closing this generator closes ``stream``."""
        loop = self._loop()
        finished = False
        try:
            while True:
                try:
                    item = self._call(_anext(stream), loop)
                except StopAsyncIteration:
                    finished = True
                    return
                yield item
        finally:
            if not finished:
                # Stopped early: close the stream (its response) now. A step cancelled by
                # an interrupt closes it itself (aclose then finds it running: skipped),
                # and a loop that was closed closed its streams first.
                with contextlib.suppress(RuntimeError):
                    self._call(_aclose(stream), loop)


async def _anext(stream: AsyncIterator[_T]) -> _T:
    return await anext(stream)


async def _aclose(stream: AsyncGenerator[Any, None]) -> None:
    await stream.aclose()


class _LoopThread:
    """An event loop running in a daemon thread of its own until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="headwater-kube-loop",
                                       daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        if hasattr(signal, "pthread_sigmask"):  # POSIX
            signal.pthread_sigmask(signal.SIG_BLOCK, _CALLER_SIGNALS)
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def stop(self) -> None:
        """Let calls in flight end (cancelling what outlasts :data:`CLOSE_SECONDS`), close
        the loop's sessions, then stop and close the loop and end the thread."""
        if self.loop.is_closed():
            return
        if threading.current_thread() is self.thread:
            self.loop.stop()  # collected on its own thread: it ends after this callback
            return
        if self.thread.is_alive():
            wound_down = asyncio.run_coroutine_threadsafe(_wind_down(CLOSE_SECONDS),
                                                          self.loop)
            with contextlib.suppress(Exception):  # e.g. at interpreter exit
                wound_down.result(2 * CLOSE_SECONDS)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(CLOSE_SECONDS)
        if not self.thread.is_alive():
            self.loop.close()


async def _wind_down(within: float) -> None:
    """Let the running loop's other tasks end (cancel those that outlast ``within``), then
    close its sessions, the async generators left open on it and its worker threads."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        _, late = await asyncio.wait(others, timeout=within)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    await aclose_transports()
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()  # Credentials' reads run there


_BLOCKING_CLIENT = BlockingKube()  # cheap: its thread starts with the first call


def get_blocking_client() -> BlockingKube:
    """The process's blocking client (the CLI's), on the module-wide configuration."""
    return _BLOCKING_CLIENT
