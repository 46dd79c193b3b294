"""The one module of Headwater that talks to the Kubernetes API (kopf talks for itself).

Everything else (handlers, the CLI, the sandbox) goes through :class:`Kube` (async, for
the operator) or :class:`SyncKube` (for the CLI); ``.importlinter`` keeps it that way.
Objects are plain JSON dicts, exactly as on the wire: the pydantic models in
``headwater_operator.api`` parse them where a caller needs types.

Built on the ``kubernetes`` client's low-level ``ApiClient`` (its config loading, TLS,
token refresh and exec plugins), with the synchronous HTTP calls run through
a pool of worker threads, rather than on aiohttp. Measured against the in-process emulator
on the 2-core dev machine (200 sequential GETs of one FlowRun, emulator cost included):
≈1.5 ms per call this way versus ≈0.5 ms with a bare aiohttp session. The difference
is far below what the reconcile loops need (a few requests per FlowRun transition),
while re-implementing kubeconfig authentication on aiohttp would be a second, less
tested copy of the client's. The client's slow part, typed-model deserialisation, is
bypassed: responses are parsed with ``json.loads``.

Failures raise :class:`KubeError` subclasses that carry the API server's status
message: :class:`NotFound` (404), :class:`AlreadyExists` (409 AlreadyExists),
:class:`Conflict` (409 on a stale resourceVersion), :class:`Invalid` (422, including a
failed JSON-patch ``test`` operation, which is how optimistic concurrency fails).

Every request is reported to the observers registered with
:func:`add_request_observer` as ``(verb, http_code)``; the metrics module attaches
``observe_api_request`` there. kopf's own requests (its lists, watches and Events) are
reported to the same observers through :func:`report_request`, named by
:func:`api_verb` (see ``runner.login``).
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import functools
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import kubernetes.client
import kubernetes.config
from headwater.contract import GROUP, VERSION

T = TypeVar("T")
JsonObject = dict[str, Any]
RequestObserver = Callable[[str, int], None]
PropagationPolicy = Literal["Background", "Foreground", "Orphan"]

DEFAULT_TIMEOUT_SECONDS = 30.0


# --- resources ------------------------------------------------------------------------
@dataclass(frozen=True)
class Resource:
    """A resource kind addressed by group, version and plural name."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

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


PODS = Resource("", "v1", "pods")
EVENTS = Resource("", "v1", "events")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
FLOWS = Resource(GROUP, VERSION, "flows")
DEPLOYMENTS = Resource(GROUP, VERSION, "deployments")
SCHEDULES = Resource(GROUP, VERSION, "schedules")
FLOWRUNS = Resource(GROUP, VERSION, "flowruns")


# --- errors ---------------------------------------------------------------------------
class KubeError(Exception):
    """A failed API request; ``message`` is the API server's own explanation."""

    def __init__(self, status: int, reason: str, message: str, body: JsonObject | None = None):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}


class NotFound(KubeError):
    """404: the object (or its namespace, or the resource kind) does not exist."""


class AlreadyExists(KubeError):
    """409 AlreadyExists: an object with that name exists (idempotent creates: success)."""


class Conflict(KubeError):
    """409 Conflict: the write carried a stale resourceVersion; re-read and retry."""


class Invalid(KubeError):
    """422: the object or patch was rejected (e.g. a JSON-patch ``test`` op failed)."""


def error_from_response(status: int, data: bytes) -> KubeError:
    """The typed error for a non-2xx response with a ``Status`` body (or anything else)."""
    try:
        body = json.loads(data) if data else {}
    except ValueError:
        body = {"message": data.decode(errors="replace")}
    if not isinstance(body, dict):
        body = {"message": str(body)}
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or data.decode(errors="replace") or f"HTTP {status}")
    if status == 404:
        return NotFound(status, reason or "NotFound", message, body)
    if status == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
        return cls(status, reason or "Conflict", message, body)
    if status == 422:
        return Invalid(status, reason or "Invalid", message, body)
    return KubeError(status, reason or "Error", message, body)


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
    for observer in list(_observers):
        # A broken metric must never break a request.
        with contextlib.suppress(Exception):
            observer(verb, code)


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
    config = load_configuration(kubeconfig_path, context)
    # One HTTP connection per worker thread, so no request waits for a free connection.
    config.connection_pool_maxsize = max(config.connection_pool_maxsize or 0,
                                         MAX_CONCURRENT_REQUESTS)
    client = kubernetes.client.ApiClient(config)
    with _lock:
        previous, _api_client = _api_client, client
    if previous is not None:
        previous.close()  # type: ignore[no-untyped-call]


def close() -> None:
    """Forget the configuration (the next use configures again) and close connections."""
    global _api_client
    with _lock:
        previous, _api_client = _api_client, None
    if previous is not None:
        previous.close()  # type: ignore[no-untyped-call]


def api_client() -> kubernetes.client.ApiClient:
    """The configured low-level client; configures from the environment on first use."""
    if _api_client is None:
        configure()
    assert _api_client is not None
    return _api_client


def connection_info() -> tuple[str, str | None, Path | None, bool]:
    """(server URL, bearer token, CA file, verify TLS) of the current configuration."""
    config = api_client().configuration
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix(
        "authorization") or ""
    token = header.split(" ", 1)[-1] if header else None
    ca = Path(config.ssl_ca_cert) if config.ssl_ca_cert else None
    return config.host, token, ca, bool(config.verify_ssl)


# --- the synchronous client -----------------------------------------------------------
def _query(**params: Any) -> list[tuple[str, str]]:
    result = []
    for key, value in params.items():
        if value is None:
            continue
        result.append((key, ("true" if value else "false") if isinstance(value, bool)
                       else str(value)))
    return result


class SyncKube:
    """Blocking Kubernetes calls: the CLI's client, and the engine of :class:`Kube`."""

    def __init__(self, client: kubernetes.client.ApiClient | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._client = client
        self._timeout = timeout

    @property
    def client(self) -> kubernetes.client.ApiClient:
        """The low-level client (the module-wide configured one unless given)."""
        return self._client or api_client()

    def request(self, verb: str, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
                body: Any = None, content_type: str = "application/json",
                stream: bool = False) -> Any:
        """Send one request; returns the parsed JSON (or the raw response if ``stream``)."""
        client = self.client
        headers = {"Accept": "application/json, */*", "Content-Type": content_type}
        serialized = client.param_serialize(
            method, path, query_params=list(query), header_params=headers, body=body,
            auth_settings=["BearerToken"])
        timeout = None if stream else self._timeout
        try:
            response = client.call_api(*serialized, _request_timeout=timeout)
        except Exception:
            _notify(verb, 0)
            raise
        _notify(verb, response.status)
        if not 200 <= response.status <= 299:
            raise error_from_response(
                response.status, response.read() or b"")  # type: ignore[no-untyped-call]
        if stream:
            return response.response
        data = response.read()  # type: ignore[no-untyped-call]
        if not data:
            return None
        content_type = response.headers.get("Content-Type", "")
        return json.loads(data) if "json" in content_type else data.decode()

    def create(self, resource: Resource, body: Mapping[str, Any], *,
               namespace: str | None = None) -> JsonObject:
        """Create an object (:class:`AlreadyExists` if the name is taken)."""
        namespace = namespace or (body.get("metadata") or {}).get("namespace")
        result: JsonObject = self.request("create", "POST", resource.path(namespace),
                                          body=dict(body))
        return result

    def get(self, resource: Resource, name: str, *, namespace: str | None = None) -> JsonObject:
        """Read one object (:class:`NotFound` if absent)."""
        result: JsonObject = self.request("get", "GET", resource.path(namespace, name))
        return result

    def list(self, resource: Resource, *, namespace: str | None = None,
             label_selector: str | Mapping[str, str] | None = None,
             field_selector: str | None = None) -> builtins.list[JsonObject]:
        """Objects in ``namespace`` (all namespaces if None) matching the selectors."""
        if isinstance(label_selector, Mapping):
            label_selector = ",".join(f"{k}={v}" for k, v in sorted(label_selector.items()))
        path = resource.path(namespace) if namespace or not resource.namespaced else (
            Resource(resource.group, resource.version, resource.plural, False).path())
        result = self.request("list", "GET", path, query=_query(
            labelSelector=label_selector, fieldSelector=field_selector))
        items: builtins.list[JsonObject] = result.get("items") or []
        return items

    def patch(self, resource: Resource, name: str, patch: Mapping[str, Any] | Sequence[Any],
              *, namespace: str | None = None, subresource: str | None = None) -> JsonObject:
        """Merge-patch (a dict) or JSON-patch (a list of ops, see :func:`jp_test`)."""
        content_type = ("application/json-patch+json" if isinstance(patch, Sequence)
                        else "application/merge-patch+json")
        body = list(patch) if isinstance(patch, Sequence) else dict(patch)
        result: JsonObject = self.request(
            "patch", "PATCH", resource.path(namespace, name, subresource), body=body,
            content_type=content_type)
        return result

    def patch_status(self, resource: Resource, name: str,
                     patch: Mapping[str, Any] | Sequence[Any], *,
                     namespace: str | None = None) -> JsonObject:
        """Patch through the ``status`` subresource (a dict is ``{"status": {...}}``)."""
        return self.patch(resource, name, patch, namespace=namespace, subresource="status")

    def replace(self, resource: Resource, body: Mapping[str, Any], *,
                namespace: str | None = None, subresource: str | None = None) -> JsonObject:
        """PUT the whole object; with ``metadata.resourceVersion`` set, :class:`Conflict`
        if it is stale."""
        meta = body.get("metadata") or {}
        path = resource.path(namespace or meta.get("namespace"), meta.get("name"), subresource)
        result: JsonObject = self.request("update", "PUT", path, body=dict(body))
        return result

    def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
               grace_period_seconds: int | None = None,
               propagation_policy: PropagationPolicy = "Background",
               resource_version: str | None = None) -> JsonObject | None:
        """Delete (or, with finalizers, start deleting) an object; :class:`NotFound` if absent.

        ``resource_version`` is a precondition: :class:`Conflict` if the object changed.
        """
        options: JsonObject = {"apiVersion": "v1", "kind": "DeleteOptions",
                               "propagationPolicy": propagation_policy}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if resource_version is not None:
            options["preconditions"] = {"resourceVersion": resource_version}
        result: JsonObject | None = self.request(
            "delete", "DELETE", resource.path(namespace, name), body=options)
        return result

    def read_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                     tail_lines: int | None = None) -> str:
        """The pod's log so far (the container's stdout/stderr)."""
        response = self.request("get", "GET", PODS.path(namespace, name, "log"), query=_query(
            container=container, tailLines=tail_lines), stream=True)
        try:
            return bytes(response.data).decode(errors="replace")
        finally:
            response.release_conn()

    def follow_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                       tail_lines: int | None = None) -> Generator[str, None, None]:
        """Yield log text as the container writes it, until it exits."""
        response = self.request("get", "GET", PODS.path(namespace, name, "log"), query=_query(
            container=container, tailLines=tail_lines, follow=True), stream=True)
        try:
            for chunk in response.stream(4096, decode_content=True):
                yield chunk.decode(errors="replace")
        finally:
            response.release_conn()


# --- the asynchronous client ----------------------------------------------------------
MAX_CONCURRENT_REQUESTS = 16
"""Worker threads of the async client: requests in flight at once (the HTTP pool's size)."""

@functools.cache
def _executor() -> concurrent.futures.ThreadPoolExecutor:
    # A pool of our own: the loop's default one is small (cpu + 4 threads) and shared
    # with everything else that uses asyncio.to_thread.
    return concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT_REQUESTS,
                                                 thread_name_prefix="headwater-kube")


async def _in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), functools.partial(fn, *args, **kwargs))


class Kube:
    """The operator's client: each call runs the :class:`SyncKube` call in a thread."""

    def __init__(self, sync: SyncKube | None = None) -> None:
        self.sync = sync or SyncKube()

    async def create(self, resource: Resource, body: Mapping[str, Any], *,
                     namespace: str | None = None) -> JsonObject:
        """See :meth:`SyncKube.create`."""
        return await _in_thread(self.sync.create, resource, body, namespace=namespace)

    async def get(self, resource: Resource, name: str, *,
                  namespace: str | None = None) -> JsonObject:
        """See :meth:`SyncKube.get`."""
        return await _in_thread(self.sync.get, resource, name, namespace=namespace)

    async def list(self, resource: Resource, *, namespace: str | None = None,
                   label_selector: str | Mapping[str, str] | None = None,
                   field_selector: str | None = None) -> builtins.list[JsonObject]:
        """See :meth:`SyncKube.list`."""
        return await _in_thread(self.sync.list, resource, namespace=namespace,
                                       label_selector=label_selector,
                                       field_selector=field_selector)

    async def patch(self, resource: Resource, name: str,
                    patch: Mapping[str, Any] | Sequence[Any], *, namespace: str | None = None,
                    subresource: str | None = None) -> JsonObject:
        """See :meth:`SyncKube.patch`."""
        return await _in_thread(self.sync.patch, resource, name, patch,
                                       namespace=namespace, subresource=subresource)

    async def patch_status(self, resource: Resource, name: str,
                           patch: Mapping[str, Any] | Sequence[Any], *,
                           namespace: str | None = None) -> JsonObject:
        """See :meth:`SyncKube.patch_status`."""
        return await _in_thread(self.sync.patch_status, resource, name, patch,
                                       namespace=namespace)

    async def replace(self, resource: Resource, body: Mapping[str, Any], *,
                      namespace: str | None = None,
                      subresource: str | None = None) -> JsonObject:
        """See :meth:`SyncKube.replace`."""
        return await _in_thread(self.sync.replace, resource, body, namespace=namespace,
                                       subresource=subresource)

    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
                     grace_period_seconds: int | None = None,
                     propagation_policy: PropagationPolicy = "Background",
                     resource_version: str | None = None) -> JsonObject | None:
        """See :meth:`SyncKube.delete`."""
        return await _in_thread(
            self.sync.delete, resource, name, namespace=namespace,
            grace_period_seconds=grace_period_seconds, propagation_policy=propagation_policy,
            resource_version=resource_version)

    async def read_pod_log(self, name: str, *, namespace: str, container: str | None = None,
                           tail_lines: int | None = None) -> str:
        """See :meth:`SyncKube.read_pod_log`."""
        return await _in_thread(self.sync.read_pod_log, name, namespace=namespace,
                                       container=container, tail_lines=tail_lines)

    async def follow_pod_log(self, name: str, *, namespace: str,
                             container: str | None = None) -> AsyncIterator[str]:
        """See :meth:`SyncKube.follow_pod_log`.

        The stream is read by a thread of its own, not the shared ``to_thread`` pool:
        a follow can last as long as the pod runs, and a few of them must not starve
        every other request of a worker.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def deliver(item: str | BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def pump() -> None:
            try:
                for chunk in self.sync.follow_pod_log(name, namespace=namespace,
                                                      container=container):
                    deliver(chunk)
                    if stop.is_set():
                        return
                deliver(None)
            except Exception as exc:  # handed to the consumer, raised there
                deliver(exc)

        threading.Thread(target=pump, name=f"follow-log-{namespace}/{name}",
                         daemon=True).start()
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()


def get_client() -> Kube:
    """An async client on the module-wide configuration."""
    return Kube()


def get_sync_client() -> SyncKube:
    """A sync client on the module-wide configuration (the CLI's)."""
    return SyncKube()
