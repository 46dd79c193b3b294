"""An in-process Kubernetes API server (1.32): aiohttp for HTTP, our store for state.

Use :class:`Emulator` inside a running event loop (the api tests) and
:class:`BackgroundEmulator` from synchronous code (the CLI tests, ``headwater dev``)::

    async with Emulator() as api:           # listens on 127.0.0.1:<random port>
        os.environ["KUBECONFIG"] = str(api.kubeconfig_path)

    with BackgroundEmulator() as api:       # its own event loop in a daemon thread
        subprocess.run(["kubectl", "--kubeconfig", api.kubeconfig_path, "get", "pods"])

The router answers discovery (:mod:`.discovery`), ``/version``, the OpenAPI documents
(:mod:`.openapi`) and the health endpoints itself; requests for objects are served by
:class:`~.store.ObjectStore` (see that module): CRUD and collection DELETE,
resourceVersions, preconditions, subresources (status, ``pods/binding``), finalizers,
garbage collection, selectors, each kind's strategy, and watches that resume from a
resourceVersion and end after ``timeoutSeconds``. The request options are checked as
the server checks them (``dryRun``, ``fieldValidation``, patch and body media types, the
body size). CustomResourceDefinitions are served like any kind and register the kinds
they define (:mod:`.apiextensions.registry`); the emulator installs Headwater's and
kopf's at start. Pod logs (``…/pods/<name>/log``, with ``follow``) are served from text
the kubelet stand-ins append with :meth:`Emulator.append_log`. What it enforces, and
what it does not: ``docs/emulator.md``.

Every request is recorded in :attr:`Emulator.requests` by verb, resource and HTTP code,
so a test can count the API writes an operation costs. A :class:`~.faults.FaultPlan`
(:attr:`Emulator.faults`) makes chosen requests fail as a busy or restarting API server
fails them, before the store is touched (``docs/emulator.md``, "Fault injection").
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import aiohttp.web
import yaml
from headwater_operator import k8sopenapi

from headwater_dev import discovery, faults, partialmeta, podlogs
from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions import fieldvalidation
from headwater_dev.apiextensions.registry import (
    CRD_RESOURCE,
    CustomResourceDefinitionStrategy,
)
from headwater_dev.apiextensions.strategy import CustomResourceStrategy
from headwater_dev.faults import FaultPlan
from headwater_dev.openapi import OpenAPI
from headwater_dev.resources import BUILTIN_RESOURCES, ResourceSpec, default_crds
from headwater_dev.store import (
    ApiError,
    DeleteOptions,
    JsonObject,
    ObjectStore,
    PatchType,
    PropagationPolicy,
    WatchEvent,
    utc_now,
)
from headwater_dev.strategies import (
    FIELD_VALIDATION_DIRECTIVES,
    FieldValidation,
    WriteOptions,
)
from headwater_dev.tables import negotiated_conversion, render_table

json_compact = fe.json_compact

T = TypeVar("T")
logger = logging.getLogger(__name__)

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_PATCH_TYPES: dict[str, PatchType] = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
}
_TERMINAL_POD_PHASES = frozenset({"Succeeded", "Failed"})


# --- request paths --------------------------------------------------------------------
@dataclass(frozen=True)
class ApiPath:
    """A parsed object URL: ``/api/v1/namespaces/ns/pods/name/status`` and friends."""

    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


AdmissionHook = Callable[[str, ResourceSpec, ApiPath, Any], None]
"""``hook(verb, spec, path, body)``: raise ``ApiError`` to reject a write."""


def parse_api_path(path: str, is_namespaced_plural: Callable[[str, str, str], bool]
                   ) -> ApiPath | None:
    """Parse an object/collection URL; None for discovery and non-Kubernetes paths.

    ``is_namespaced_plural`` disambiguates ``/api/v1/namespaces/<ns>/status`` (the status
    of a Namespace) from ``/api/v1/namespaces/<ns>/pods`` (pods in a namespace).
    """
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces" and is_namespaced_plural(group, version,
                                                                           rest[2]):
        namespace, rest = rest[1], rest[2:]
    plural, name = rest[0], rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) or None
    return ApiPath(group, version, plural, namespace, name, subresource)


def guess_verb(method: str, path: ApiPath, params: Mapping[str, str]) -> str:
    """The Kubernetes verb of a request, as the API server's audit log would name it."""
    method = method.upper()
    if method == "GET":
        if params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if path.name else "list"
    if method == "DELETE":
        return "delete" if path.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


# --- request log ----------------------------------------------------------------------
@dataclass(frozen=True)
class RequestRecord:
    """One served request (``resource`` is ``plural`` or ``plural/subresource``)."""

    verb: str
    resource: str
    namespace: str | None
    name: str | None
    code: int
    user_agent: str = ""
    """The client's ``User-Agent``: tells the operator's requests from a test's."""
    group: str = ""
    """The API group (``""`` for core): tells ``events`` from ``events.k8s.io`` events."""
    label_selector: str = ""
    """The request's ``labelSelector`` parameter (what a list or watch asked to filter)."""
    accept: str = ""
    """The request's ``Accept`` header (a metadata-only read asks ``as=PartialObjectMetadata``)."""

    @property
    def is_write(self) -> bool:
        """Whether the request asked to change state (whatever the outcome)."""
        return self.verb in WRITE_VERBS


@dataclass
class RequestLog:
    """Every request the emulator served, in order, and counters over them."""

    records: list[RequestRecord] = field(default_factory=list)

    def append(self, record: RequestRecord) -> None:
        """Record one request."""
        self.records.append(record)

    def mark(self) -> int:
        """A position to count from later (see :meth:`since`)."""
        return len(self.records)

    def since(self, mark: int = 0) -> list[RequestRecord]:
        """The requests served after ``mark``."""
        return self.records[mark:]

    def count(
        self, *, verb: str | None = None, resource: str | None = None, code: int | None = None,
        writes_only: bool = False, since: int = 0,
    ) -> int:
        """How many requests after ``since`` match every given criterion."""
        return sum(
            1 for record in self.since(since)
            if (verb is None or record.verb == verb)
            and (resource is None or record.resource == resource)
            and (code is None or record.code == code)
            and (not writes_only or record.is_write)
        )

    def counter(self, since: int = 0) -> collections.Counter[tuple[str, str, int]]:
        """Counts by (verb, resource, code) after ``since``."""
        return collections.Counter((r.verb, r.resource, r.code) for r in self.since(since))


# --- requests -------------------------------------------------------------------------
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
"""The API server's request body limit (``k8s.io/apiserver`` ``MaxRequestBodyBytes``)."""


def _json_response(payload: Any, status: int = 200,
                   warnings: Sequence[str] = ()) -> aiohttp.web.Response:
    response = aiohttp.web.Response(
        text=json.dumps(payload), status=status, content_type="application/json")
    for warning in warnings:
        # k8s.io/apiserver pkg/endpoints/filters/warning.go: code 299, agent "-".
        response.headers.add("Warning", f"299 - {json.dumps(warning)}")
    return response


def _delete_options(params: Mapping[str, str], body: Any) -> DeleteOptions:
    body = body if isinstance(body, Mapping) else {}
    preconditions = body.get("preconditions") or {}
    grace = body.get("gracePeriodSeconds", params.get("gracePeriodSeconds"))
    policy = body.get("propagationPolicy") or params.get("propagationPolicy") or "Background"
    dry_run = [*(body.get("dryRun") or ()), *_dry_run_values(params)]
    errors = _dry_run_errors(dry_run)
    if policy not in ("Background", "Foreground", "Orphan"):
        errors.append(fe.not_supported("propagationPolicy", policy,
                                       ["Foreground", "Background", "Orphan", "nil"]))
    fe.raise_if_invalid("DeleteOptions", "meta.k8s.io", "", errors)
    return DeleteOptions(
        propagation_policy=cast(PropagationPolicy, policy),
        grace_period_seconds=int(grace) if grace is not None else None,
        precondition_uid=preconditions.get("uid"),
        precondition_resource_version=preconditions.get("resourceVersion"),
        dry_run=bool(dry_run),
    )


def _patch_type(spec: ResourceSpec, content_type: str) -> PatchType:
    """The patch type of a request, or the API server's 415 for one the kind does not take.

    The message lists the accepted types as ``negotiation.NewUnsupportedMediaTypeError``
    does. Server-side apply (``application/apply-patch+yaml``) is accepted by a real
    server but not implemented by the emulator: it answers 415 naming that.
    """
    media_type = content_type.split(";", maxsplit=1)[0].strip()
    accepted = _patch_types(spec)
    if media_type == "application/apply-patch+yaml":
        raise ApiError(415, "UnsupportedMediaType",
                       "the emulator does not implement server-side apply "
                       "(application/apply-patch+yaml); use client-side apply (kubectl "
                       "apply without --server-side) or another patch type")
    if media_type not in accepted:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media "
                       f"types include: {', '.join(accepted)}")
    return _PATCH_TYPES[media_type]


_BODY_TYPES = ("application/json", "application/yaml")


def _decode_body(verb: str, content_type: str, raw: bytes) -> Any:
    """The request body: JSON, or YAML for creates and updates, as the server takes them.

    A real API server also decodes Kubernetes protobuf (``application/vnd.kubernetes.
    protobuf``, which kubectl's typed commands such as ``kubectl create configmap`` send);
    the emulator does not, and says so with the 415 a server gives an unknown format.
    """
    if not raw:
        return None
    media_type = content_type.split(";", maxsplit=1)[0].strip() or "application/json"
    if verb in ("create", "update") and media_type not in _BODY_TYPES:
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media "
                       f"types include: {', '.join(_BODY_TYPES)} (the emulator does not "
                       f"decode {media_type}: send JSON, e.g. kubectl apply -f)")
    try:
        if media_type == "application/yaml":
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, "BadRequest", f"the request body is not valid {media_type}: "
                                          f"{exc}") from exc


def _check_type_meta(spec: ResourceSpec, body: Any) -> None:
    """A body's ``apiVersion`` and ``kind`` must name the resource it is sent to.

    ``pkg/endpoints/handlers/create.go``/``update.go``: "the API version in the data (…)
    does not match the expected API version (…)"; built-in kinds default a missing one from
    the URL. Custom resources are decoded as unstructured objects, which must carry a
    ``kind`` (``unstructuredJSONScheme.Decode``: "Object 'Kind' is missing in …") and whose
    missing ``apiVersion`` then mismatches; a wrong ``kind`` of a custom resource is the
    strategy's 422.
    """
    if not isinstance(body, Mapping):
        return
    api_version, kind = body.get("apiVersion"), body.get("kind")
    custom = spec.schema is not None
    if custom and not kind:
        raise ApiError(400, "BadRequest", f"Object 'Kind' is missing in '{json_compact(body)}'")
    if (api_version or custom) and api_version != spec.api_version:
        raise ApiError(400, "BadRequest", f"the API version in the data ({api_version}) does "
                                          f"not match the expected API version "
                                          f"({spec.api_version})")
    if kind and kind != spec.kind and not custom:
        raise ApiError(400, "BadRequest", f"the kind in the data ({kind}) does not match the "
                                          f"expected kind ({spec.kind})")


def _dry_run_values(params: Mapping[str, str]) -> list[str]:
    getall = getattr(params, "getall", None)
    return list(getall("dryRun", [])) if getall else (
        [params["dryRun"]] if "dryRun" in params else [])


def _dry_run_errors(values: Sequence[str]) -> list[fe.FieldError]:
    """``ValidateDryRun`` (apimachinery ``pkg/apis/meta/v1/validation``): only ``All``."""
    if all(value == "All" for value in values):
        return []
    return [fe.not_supported("dryRun", fe.GoText(fe.go_string_slice(values)), ["All"])]


def write_options(verb: str, params: Mapping[str, str]) -> WriteOptions:
    """The ``CreateOptions``/``UpdateOptions``/``PatchOptions`` of a write request.

    As ``ValidateCreateOptions`` (and its update/patch twins) check them: ``dryRun`` may
    only be ``All``; ``fieldValidation`` only empty, ``Ignore``, ``Warn`` or ``Strict``,
    empty meaning ``Warn`` (``pkg/endpoints/handlers/rest.go`` ``fieldValidation``).
    """
    dry_run = _dry_run_values(params)
    directive = params.get("fieldValidation", "")
    errors = _dry_run_errors(dry_run)
    if directive not in ("", *FIELD_VALIDATION_DIRECTIVES):
        errors.append(fe.not_supported("fieldValidation", directive,
                                       ["", "Ignore", "Strict", "Warn"]))
    kind = {"create": "CreateOptions", "update": "UpdateOptions"}.get(verb, "PatchOptions")
    fe.raise_if_invalid(kind, "meta.k8s.io", "", errors)
    return WriteOptions(dry_run=bool(dry_run),
                        field_validation=cast(FieldValidation, directive or "Warn"))


def _patch_types(spec: ResourceSpec) -> tuple[str, ...]:
    """The patch media types a resource accepts, in the server's order.

    Custom resources have no Go type to take a strategic merge patch's merge keys from:
    apiextensions-apiserver ``customresource_handler.go`` offers JSON patch, merge patch
    and apply; the built-in kinds, CustomResourceDefinitions among them, add strategic
    merge (apiserver v0.32.9 ``pkg/endpoints/installer.go`` ``supportedTypes``).
    """
    if spec.schema is not None:
        base: tuple[str, ...] = ()
    else:
        base = ("application/strategic-merge-patch+json",)
    return ("application/json-patch+json", "application/merge-patch+json", *base,
            "application/apply-patch+yaml")


async def _read_body(request: aiohttp.web.BaseRequest) -> bytes:
    body = await request.content.read(MAX_REQUEST_BODY_BYTES + 1)
    if len(body) > MAX_REQUEST_BODY_BYTES:
        # k8s.io/apiserver pkg/endpoints/handlers/rest.go limitedReadBody.
        raise ApiError(413, "RequestEntityTooLarge",
                       f"Request entity too large: limit is {MAX_REQUEST_BODY_BYTES}")
    return body


class _Router:
    """Every HTTP request: discovery and OpenAPI documents, or objects from the store."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        path = parse_api_path(raw.path, self._emulator.is_namespaced_plural)
        if path is None:
            return self._serve_document(raw)
        verb = guess_verb(raw.method, path, raw.query)
        resource = path.plural + (f"/{path.subresource}" if path.subresource else "")
        user_agent = raw.headers.get("User-Agent", "")
        recorded = False

        def record(code: int) -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self._emulator.requests.append(
                    RequestRecord(verb, resource, path.namespace, path.name, code,
                                  user_agent, group=path.group,
                                  label_selector=raw.query.get("labelSelector", ""),
                                  accept=raw.headers.get("Accept", "")))

        plan = self._emulator.faults
        fault = plan.pick(faults.FaultRequest(
            verb, resource, path.namespace, path.name, user_agent,
            raw.query.get("resourceVersion"))) if plan is not None else None
        try:
            # A fault acts before the store is touched: an injected 429/5xx applies nothing.
            response = await faults.before_serving(fault, raw) if fault is not None else None
            if response is None:
                spec = self._emulator.store.resource(path.group, path.version, path.plural)
                response = await self._emulator.serve(spec, verb, path, raw, record,
                                                     fault=fault)
        except ApiError as exc:
            response = _json_response(exc.status(), exc.code)
        except Exception as exc:
            transport = raw.transport
            if transport is None or transport.is_closing():
                # The client went away mid-request (a killed operator whose request was
                # being read or delayed): nobody to answer, and nothing wrong here.
                logger.debug("the client of %s %s went away: %r", raw.method, raw.path_qs,
                             exc)
                record(0)
                return aiohttp.web.Response(status=500)  # written nowhere
            # A bug in the emulator: say so loudly, and answer as a broken API server would.
            logger.exception("the emulator failed to serve %s %s", raw.method, raw.path_qs)
            response = _json_response(ApiError(500, "InternalError", repr(exc)).status(), 500)
        if isinstance(fault, faults.Reset) and fault.after_serving:
            faults.reset_connection(raw)  # served (or refused), and the answer is lost
        record(response.status if fault is None else faults.answer_code(fault, response))
        return response

    def _serve_document(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Discovery, ``/version``, ``/openapi/…`` and the health endpoints (GET only)."""
        parts = [part for part in raw.path.split("/") if part]
        specs = self._emulator.store.resources
        document: Any = None
        if raw.method == "GET":
            if not parts:
                document = discovery.root_paths(specs)
            elif parts == ["version"]:
                document = discovery.SERVER_VERSION
            elif parts in (["healthz"], ["livez"], ["readyz"]):
                return aiohttp.web.Response(text="ok", content_type="text/plain")
            elif parts == ["api"]:
                document = discovery.api_versions()
            elif parts == ["api", "v1"]:
                document = discovery.api_resource_list(specs, "", "v1")
            elif parts == ["apis"]:
                document = discovery.api_group_list(specs)
            elif parts[0] == "apis" and len(parts) == 2:
                document = discovery.api_group(specs, parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                document = discovery.api_resource_list(specs, parts[1], parts[2])
            elif parts[0] == "openapi":
                return self._emulator.openapi.serve(raw, specs)
        if document is None:
            # A real server's answer for a path it does not serve.
            return _json_response(ApiError(404, "NotFound", "the server could not find the "
                                                            "requested resource").status(), 404)
        return _json_response(document)


# --- the emulator ---------------------------------------------------------------------
class Emulator:
    """The emulated API server on 127.0.0.1 (a random free port unless ``port`` is set)."""

    def __init__(
        self,
        resources: Sequence[ResourceSpec] | None = None,
        *,
        crds: Sequence[Mapping[str, Any]] | None = None,
        clock: Callable[[], Any] = utc_now,
        host: str = "127.0.0.1",
        port: int | None = None,
        kubeconfig_path: Path | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        """``resources``: the built-in kinds served (default: :data:`BUILTIN_RESOURCES`);
        ``crds``: the CustomResourceDefinitions installed at start, through the same
        validation as ``kubectl apply -f`` (default: Headwater's and kopf's);
        ``faults``: a :class:`~.faults.FaultPlan` (also settable later, see :attr:`faults`)."""
        self.store = ObjectStore([*(resources or BUILTIN_RESOURCES)], clock=clock)
        self.store.add_resource(CRD_RESOURCE, CustomResourceDefinitionStrategy(
            CRD_RESOURCE, strategy_for=CustomResourceStrategy))
        self.openapi = OpenAPI(k8sopenapi.definitions(),
                               lambda spec: k8sopenapi.definition_name(spec.key))
        self._initial_crds = list(crds) if crds is not None else default_crds()
        self.requests = RequestLog()
        self.admission_hooks: list[AdmissionHook] = []
        """Called with (verb, resource spec, path, body) before a write is served; a hook
        rejects the request by raising :class:`~.store.ApiError` (e.g. 422 or 403), as an
        admission webhook or a quota would. Tests append to it."""
        self.faults = faults
        """The :class:`~.faults.FaultPlan` asked about every object request (None: none)."""
        self._host = host
        self._port = port
        self._kubeconfig_path = kubeconfig_path
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._web_server: aiohttp.web.Server | None = None
        self._listener: asyncio.Server | None = None
        self._bound: tuple[str, int] | None = None
        self._stopping = asyncio.Event()
        self._logs: dict[tuple[str, str], list[str]] = {}
        self._log_changed = asyncio.Event()
        self._streams = 0

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> Self:
        """Install the initial CRDs, listen, and write the kubeconfig for the server."""
        self._ensure_namespace("default")
        for crd in self._initial_crds:
            self.store.create(CRD_RESOURCE, None, crd)
        router = _Router(self)
        # The body limit is enforced by _read_body, with the API server's answer.
        self._web_server = aiohttp.web.Server(
            router, request_factory=self._request_factory)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port or 0))
        self._listener = await asyncio.get_running_loop().create_server(
            self._web_server, sock=sock)
        self._bound = sock.getsockname()[:2]
        self._write_kubeconfig()
        return self

    def _request_factory(self, message: Any, payload: Any, protocol: Any, writer: Any,
                         task: Any) -> aiohttp.web.BaseRequest:
        return aiohttp.web.BaseRequest(message, payload, protocol, writer, task,
                                       asyncio.get_running_loop(),
                                       client_max_size=MAX_REQUEST_BODY_BYTES + 1)

    async def stop(self) -> None:
        """End open watches and log streams, then stop listening."""
        self._stopping.set()
        self._log_changed.set()
        # Let open watches and log streams see the flag and end their responses cleanly.
        for _ in range(100):
            if not self._streams:
                break
            await asyncio.sleep(0.01)
        if self._listener is not None:
            self._listener.close()
            if self._web_server is not None:
                await self._web_server.shutdown(1.0)
            await self._listener.wait_closed()
            self._listener = None
            self._web_server = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` while running."""
        if self._bound is None or self._listener is None:
            raise RuntimeError("the emulator is not running: call `await emulator.start()`")
        return f"http://{self._bound[0]}:{self._bound[1]}"

    @property
    def kubeconfig_path(self) -> Path:
        """A kubeconfig file whose current context points at this server."""
        if self._kubeconfig_path is None:
            raise RuntimeError("the emulator is not running: call `await emulator.start()`")
        return self._kubeconfig_path

    def kubeconfig(self, namespace: str = "default") -> JsonObject:
        """The kubeconfig document (a token user; the emulator does not authenticate)."""
        return {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "headwater-emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "headwater-emulator", "user": {"token": "emulator"}}],
            "contexts": [{"name": "headwater-emulator", "context": {
                "cluster": "headwater-emulator", "user": "headwater-emulator",
                "namespace": namespace}}],
            "current-context": "headwater-emulator",
        }

    def _write_kubeconfig(self) -> None:
        if self._kubeconfig_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="headwater-emulator-")
            self._kubeconfig_path = Path(self._tmpdir.name) / "kubeconfig"
        self._kubeconfig_path.write_text(yaml.safe_dump(self.kubeconfig()), encoding="utf-8")

    def _ensure_namespace(self, name: str) -> None:
        spec = self.store.resource("", "v1", "namespaces")
        with contextlib.suppress(ApiError):
            self.store.create(spec, None, {"metadata": {"name": name}})

    def is_namespaced_plural(self, group: str, version: str, plural: str) -> bool:
        """Whether ``plural`` is a namespaced kind served in ``group/version``."""
        with contextlib.suppress(ApiError):
            return self.store.resource(group, version, plural).namespaced
        return False

    # --- direct reads (no HTTP: safe from synchronous code on the emulator's loop) -----
    def _spec_for(self, plural: str) -> ResourceSpec:
        matches = [spec for spec in self.store.resources if plural in (spec.plural, spec.kind)]
        # Prefer ours, then core, for names served by several groups (e.g. events).
        matches.sort(key=lambda spec: (spec.group != "headwater.dev", spec.group != ""))
        if not matches:
            raise KeyError(f"the emulator serves no resource named {plural!r}")
        return matches[0]

    def object(self, plural: str, name: str, namespace: str | None = "default"
               ) -> JsonObject | None:
        """A copy of one stored object (``plural`` or Kind, e.g. ``"flowruns"``), or None."""
        spec = self._spec_for(plural)
        try:
            return self.store.get(spec, namespace if spec.namespaced else None, name)
        except ApiError:
            return None

    def objects(self, plural: str, namespace: str | None = None,
                label_selector: str | None = None) -> list[JsonObject]:
        """Copies of the stored objects of a kind (all namespaces if None)."""
        spec = self._spec_for(plural)
        items, _, _ = self.store.list_objects(spec, namespace if spec.namespaced else None,
                                              label_selector=label_selector)
        return items

    # --- back doors for the kubelet stand-ins ------------------------------------------
    def append_log(self, namespace: str, pod: str, text: str) -> None:
        """Append container output to a pod's log (what ``kubectl logs`` shows)."""
        self._logs.setdefault((namespace, pod), []).append(text)
        self._log_changed.set()

    def pod_log(self, namespace: str, pod: str) -> str:
        """The whole log of a pod so far."""
        return "".join(self._logs.get((namespace, pod), ()))

    def mark_deleting(self, plural: str, name: str, namespace: str | None = "default",
                      grace_period_seconds: int = 30) -> JsonObject:
        """Set ``deletionTimestamp`` without deleting (see ``ObjectStore.mark_deleting``)."""
        spec = self._spec_for(plural)
        return self.store.mark_deleting(spec, namespace if spec.namespaced else None, name,
                                        grace_period_seconds=grace_period_seconds)

    # --- serving -----------------------------------------------------------------------
    async def serve(self, spec: ResourceSpec, verb: str, path: ApiPath,
                    request: aiohttp.web.BaseRequest,
                    record: Callable[[int], None] = lambda code: None, *,
                    fault: faults.Fault | None = None,
                    ) -> aiohttp.web.StreamResponse:
        """Serve one object request; raises ApiError for the failures.

        Streams call ``record`` with their status as soon as they start, so the request
        log shows an open watch while it is still open. ``fault``: the plan's fault for
        this request, for the ones that act inside a watch (:class:`~.faults.CutWatch`,
        :class:`~.faults.ExpireWatch`).
        """
        params: Mapping[str, str] = request.query
        raw_body = await _read_body(request)
        body = _decode_body(verb, request.headers.get("Content-Type", ""), raw_body)
        if verb in ("create", "update") and path.subresource != "binding":
            _check_type_meta(spec, body)
        store = self.store
        ns = path.namespace if spec.namespaced else None
        if verb in WRITE_VERBS:
            for admit in list(self.admission_hooks):
                admit(verb, spec, path, body)
        if verb == "watch" or (path.subresource == "log" and verb == "get"
                               and spec.key == ("", "v1", "pods")):
            self._streams += 1
            try:
                if verb == "watch":
                    return await self._serve_watch(spec, path, request, record, fault=fault)
                return await self._serve_log(spec, path, request, record)
            finally:
                self._streams -= 1
        if verb in ("get", "list"):
            return self._serve_read(spec, verb, path, request)
        if verb == "create" and path.subresource == "binding" and spec.key == ("", "v1", "pods"):
            return _json_response(store.bind_pod(spec, ns, path.name or "", body), 201)
        if verb in ("create", "update", "patch"):
            options = write_options(verb, params)
            options.patch = verb == "patch"
            if options.field_validation != "Ignore" and raw_body and isinstance(body, dict):
                with contextlib.suppress(ValueError):  # YAML: no duplicate keys survive
                    options.duplicate_fields = fieldvalidation.duplicate_fields(raw_body)
            # The answers are serialized at once and never changed: no copies
            # (ObjectStore's copy_answer).
            if verb == "create":
                created = store.create(spec, ns, body, options, copy_answer=False)
                return _json_response(created, 201, options.warnings)
            if verb == "update":
                replaced = store.replace(spec, ns, path.name or "", body,
                                         subresource=path.subresource, options=options,
                                         copy_answer=False)
                return _json_response(replaced, 200, options.warnings)
            patch_type = _patch_type(spec, request.headers.get("Content-Type", ""))
            patched = store.patch(spec, ns, path.name or "", patch_type, body,
                                  subresource=path.subresource, options=options,
                                  copy_answer=False)
            return _json_response(patched, 200, options.warnings)
        if verb == "delete":
            return _json_response(store.delete(spec, ns, path.name or "",
                                               _delete_options(params, body)))
        if verb == "deletecollection":
            items, _, _ = store.list_objects(
                spec, ns, label_selector=params.get("labelSelector"),
                field_selector=params.get("fieldSelector"))
            delete_options = _delete_options(params, body)
            deleted = [store.delete(spec, item["metadata"].get("namespace"),
                                    item["metadata"]["name"], delete_options) for item in items]
            return _json_response({"apiVersion": spec.api_version, "kind": f"{spec.kind}List",
                                   "metadata": {"resourceVersion": str(store.resource_version)},
                                   "items": deleted})
        raise ApiError(405, "MethodNotAllowed", f"{verb} is not supported on {spec.plural}")

    def _serve_read(self, spec: ResourceSpec, verb: str, path: ApiPath,
                    request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """A GET of one object or a LIST, converted as ``Accept`` asks."""
        params: Mapping[str, str] = request.query
        store = self.store
        ns = path.namespace if spec.namespaced else None
        # `kubectl get` asks for a meta.k8s.io/v1 Table (see tables.py), a metadata-only
        # client for PartialObjectMetadata(List) (see partialmeta.py).
        target = (None if path.subresource
                  else negotiated_conversion(request.headers.get("Accept")))
        include_object = params.get("includeObject") or "Metadata"
        if verb == "get":
            obj = store.get(spec, ns, path.name or "")
            if target == "Table":
                return _json_response(render_table(
                    spec, [obj], include_object=include_object, list_metadata=obj["metadata"],
                    now=store.now()))
            if target == partialmeta.OBJECT_KIND:
                return _json_response(partialmeta.partial_object(obj))
            if target == partialmeta.LIST_KIND:
                raise partialmeta.refuse(target, spec.kind, is_list=False)
            return _json_response(obj)
        items, rv, token = store.list_objects(
            spec, ns, label_selector=params.get("labelSelector"),
            field_selector=params.get("fieldSelector"), limit=params.get("limit"),
            continue_token=params.get("continue") or None)
        list_meta: JsonObject = {"resourceVersion": str(rv)}
        if token:
            list_meta["continue"] = token
        if target == "Table":
            return _json_response(render_table(
                spec, items, include_object=include_object, list_metadata=list_meta,
                now=store.now()))
        if target == partialmeta.LIST_KIND:
            return _json_response(partialmeta.partial_list(items, list_meta))
        if target == partialmeta.OBJECT_KIND:
            raise partialmeta.refuse(target, spec.kind, is_list=True)
        return _json_response({"apiVersion": spec.api_version, "kind": f"{spec.kind}List",
                               "metadata": list_meta, "items": items})

    async def _serve_watch(self, spec: ResourceSpec, path: ApiPath,
                           request: aiohttp.web.BaseRequest,
                           record: Callable[[int], None], *,
                           fault: faults.Fault | None = None) -> aiohttp.web.StreamResponse:
        params = request.query
        ns = path.namespace if spec.namespaced else None
        field_selector = params.get("fieldSelector")
        if path.name:
            name_clause = f"metadata.name={path.name}"
            field_selector = f"{field_selector},{name_clause}" if field_selector else name_clause
        matches = self.store.matcher(params.get("labelSelector"), field_selector)
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        # Snapshot and subscription happen in one synchronous step: no change can slip
        # between the replayed state and the live events.
        replay, failure = self._watch_replay(spec, ns, params, field_selector=field_selector,
                                             matches=matches, fault=fault)
        if failure is None:
            self.store.subscribe(spec, queue.put_nowait)
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        response = aiohttp.web.StreamResponse(
            status=200, headers={"Content-Type": "application/json"})
        cutter = faults.WatchCutter(request, fault)

        # Each event's object as the client asked for it: metadata only for
        # as=PartialObjectMetadata (any other conversion fails per object, and the server
        # sends the object as it is: see partialmeta.py). An ERROR's Status stays whole.
        # Lines are serialized once for every watcher; the few metadata-only watchers
        # (the operator's Secrets) convert theirs.
        metadata_only = (negotiated_conversion(request.headers.get("Accept"))
                         == partialmeta.OBJECT_KIND)

        def as_asked(line: bytes) -> bytes:
            event = json.loads(line)
            if event.get("type") == "ERROR":
                return line
            return _watch_line(str(event["type"]), partialmeta.partial_object(event["object"]))

        async def send(lines: Sequence[bytes]) -> None:
            """Write the events' ``lines`` in as few writes as the fault plan's cut allows
            (a write per event would cost a system call and a loop turn each)."""
            if metadata_only:
                lines = [as_asked(line) for line in lines]
            while lines:
                room = cutter.room()
                batch = lines if room is None else lines[:max(room, 1)]
                await response.write(b"".join(batch))
                cutter.sent(len(batch))
                lines = lines[len(batch):]

        try:
            await response.prepare(request)
            record(response.status)
            cutter.started()
            await send(replay)
            if failure is not None:  # the stream of a failed watch ends with its ERROR event
                await send([_watch_line("ERROR", failure)])
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._stream_events(send, queue, ns, matches)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away; nothing to tell it
        finally:
            self.store.unsubscribe(spec, queue.put_nowait)
        return response

    def _watch_replay(self, spec: ResourceSpec, ns: str | None, params: Mapping[str, str], *,
                      field_selector: str | None,
                      matches: Callable[[Mapping[str, Any]], bool],
                      fault: faults.Fault | None) -> tuple[list[bytes], JsonObject | None]:
        """What a watch sends before its live events: the lines of the changes since its
        ``resourceVersion`` (or an ADDED per object without one), or the failure its
        stream ends with instead."""
        since = params.get("resourceVersion")
        if isinstance(fault, faults.ExpireWatch) and since:
            return [], fault.status(since, self.store.resource_version)
        if since and since != "0":
            try:
                return [event.line(event_type)
                        for event in self.store.events_since(spec, int(since))
                        for event_type, _ in self._translate(event, ns, matches)], None
            except ApiError as exc:
                # Past admission, a watch fails as a 200 stream of one ERROR event
                # (apiserver v0.32.9 pkg/storage/cacher/cacher.go Watch, newErrWatcher).
                return [], exc.status()
        items, _, _ = self.store.list_objects(
            spec, ns, label_selector=params.get("labelSelector"),
            field_selector=field_selector)
        return [_watch_line("ADDED", item) for item in items], None

    async def _stream_events(self, send: Callable[[Sequence[bytes]], Awaitable[None]],
                             queue: asyncio.Queue[WatchEvent], ns: str | None,
                             matches: Callable[[Mapping[str, Any]], bool]) -> None:
        """Send the queued events until the emulator stops; those queued together (a
        burst of writes while this task waited for its turn) go out together."""
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                events: list[WatchEvent] = []
                if queue.empty():
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait({getter, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        return
                    events.append(getter.result())
                while not queue.empty():
                    events.append(queue.get_nowait())
                # Each event is serialized once for all the watches that see it the same.
                await send([event.line(event_type) for event in events
                            for event_type, _ in self._translate(event, ns, matches)])
        finally:
            stop.cancel()

    @staticmethod
    def _translate(event: WatchEvent, ns: str | None,
                   matches: Callable[[Mapping[str, Any]], bool]) -> list[tuple[str, JsonObject]]:
        """What a filtered watch sees of one change (objects entering/leaving the filter)."""
        if ns is not None and event.object["metadata"].get("namespace") != ns:
            return []
        now = matches(event.object)
        if event.type != "MODIFIED":
            return [(event.type, event.object)] if now else []
        before = event.previous is not None and matches(event.previous)
        if now and before:
            return [("MODIFIED", event.object)]
        if now:
            return [("ADDED", event.object)]
        if before:
            return [("DELETED", event.object)]
        return []

    async def _serve_log(self, spec: ResourceSpec, path: ApiPath,
                         request: aiohttp.web.BaseRequest,
                         record: Callable[[int], None]) -> aiohttp.web.StreamResponse:
        ns, name = path.namespace or "", path.name or ""
        pod = self.store.get(spec, ns, name)
        # The API server picks the container (and refuses an ambiguous or unknown one),
        # then the kubelet refuses a container with nothing to show yet: see podlogs.
        container = podlogs.log_container(pod, request.query.get("container"))
        if not podlogs.has_log_location(pod):
            return aiohttp.web.Response(status=204)
        refusal = podlogs.kubelet_log_refusal(pod, container)
        if refusal is not None:
            raise ApiError(400, "BadRequest", refusal)
        first = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name")
        if container != first:
            # The kubelet stand-ins run only a pod's first container (the flow); what
            # they append is its output, and any other container has written nothing.
            return aiohttp.web.Response(text="", content_type="text/plain")
        if request.query.get("follow") not in ("true", "1"):
            text = self.pod_log(ns, name)
            tail = request.query.get("tailLines")
            if tail is not None:
                text = "".join(text.splitlines(keepends=True)[-int(tail):]) if int(tail) else ""
            return aiohttp.web.Response(text=text, content_type="text/plain")
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        record(response.status)
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await self._follow_log(response, spec, ns, name)
            await response.write_eof()
        return response

    async def _follow_log(self, response: aiohttp.web.StreamResponse, spec: ResourceSpec,
                          ns: str, name: str) -> None:
        sent = 0
        while True:
            chunks = self._logs.get((ns, name), [])
            for chunk in chunks[sent:]:
                await response.write(chunk.encode())
            sent = len(chunks)
            if self._stopping.is_set() or self._pod_finished(spec, ns, name):
                return
            self._log_changed.clear()
            # Pod phase changes do not touch the log event, so re-check them periodically.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self._log_changed.wait()

    def _pod_finished(self, spec: ResourceSpec, ns: str, name: str) -> bool:
        try:
            pod = self.store.get(spec, ns, name)
        except ApiError:
            return True
        return (pod.get("status") or {}).get("phase") in _TERMINAL_POD_PHASES


def _watch_line(event_type: str, obj: JsonObject) -> bytes:
    return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"


# --- running in a background thread --------------------------------------------------
class BackgroundEmulator:
    """An :class:`Emulator` on its own event loop in a daemon thread.

    For synchronous callers (the CLI tests, ``headwater dev``), and for the api tests:
    kopf, by design, cancels every task of its event loop that it did not find there
    when it started ("hung tasks"), which would include an in-loop emulator's
    connection handlers; a server on its own loop is also closer to a real one.

    :meth:`object` and :meth:`objects` read the store directly (it is locked), so a test
    polling for a condition never stalls the operator's loop; :meth:`append_log` and
    :meth:`mark_deleting` run on the emulator's loop; use :meth:`call`/:meth:`run` for
    anything else that writes.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._emulator: Emulator | None = None

    @property
    def emulator(self) -> Emulator:
        """The emulator (its store must only be used through :meth:`call`)."""
        if self._emulator is None:
            raise RuntimeError("the background emulator is not running: call start()")
        return self._emulator

    @property
    def url(self) -> str:
        """The server's URL."""
        return self.emulator.url

    @property
    def kubeconfig_path(self) -> Path:
        """The kubeconfig file pointing at the server."""
        return self.emulator.kubeconfig_path

    def start(self, timeout: float = 30.0) -> Self:
        """Start the thread and wait until the server listens."""
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def main() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._emulator = self._loop.run_until_complete(
                    self._start_emulator())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="headwater-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the emulator did not start within {timeout} seconds")
        if failure:
            raise RuntimeError(f"the emulator failed to start: {failure[0]!r}") from failure[0]
        return self

    async def _start_emulator(self) -> Emulator:
        return await Emulator(**self._kwargs).start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the emulator's loop and return its result."""
        if self._loop is None:
            raise RuntimeError("the background emulator is not running: call start()")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a sync function (e.g. on the store) on the emulator's loop."""
        async def wrapper() -> T:
            return fn(*args, **kwargs)
        return self.run(wrapper())

    # --- the Emulator's conveniences, executed on the emulator's thread ---------------
    def install_faults(self, plan: FaultPlan) -> FaultPlan:
        """Inject ``plan``'s faults from now on (replacing any other plan); returns it."""
        self.emulator.faults = plan
        return plan

    def remove_faults(self) -> None:
        """Stop injecting faults."""
        self.emulator.faults = None

    @property
    def requests(self) -> RequestLog:
        """The request log (appended to by the emulator's thread; read freely)."""
        return self.emulator.requests

    def object(self, plural: str, name: str, namespace: str | None = "default"
               ) -> JsonObject | None:
        """See :meth:`Emulator.object` (read under the store's lock, from any thread)."""
        return self.emulator.object(plural, name, namespace)

    def objects(self, plural: str, namespace: str | None = None,
                label_selector: str | None = None) -> list[JsonObject]:
        """See :meth:`Emulator.objects` (read under the store's lock, from any thread)."""
        return self.emulator.objects(plural, namespace, label_selector)

    def append_log(self, namespace: str, pod: str, text: str) -> None:
        """See :meth:`Emulator.append_log`."""
        self.call(self.emulator.append_log, namespace, pod, text)

    def pod_log(self, namespace: str, pod: str) -> str:
        """See :meth:`Emulator.pod_log`."""
        return self.call(self.emulator.pod_log, namespace, pod)

    def mark_deleting(self, plural: str, name: str, namespace: str | None = "default",
                      grace_period_seconds: int = 30) -> JsonObject:
        """See :meth:`Emulator.mark_deleting`."""
        return self.call(self.emulator.mark_deleting, plural, name, namespace,
                         grace_period_seconds)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server, the loop and the thread."""
        if self._loop is None or self._thread is None:
            return
        if self._emulator is not None:
            self.run(self._emulator.stop(), timeout)
            self.run(_cancel_other_tasks(), timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop.close()
        self._loop = None
        self._thread = None
        self._emulator = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


async def _cancel_other_tasks() -> None:
    """Cancel what is left on the loop (e.g. handlers of dropped connections)."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def iter_objects(emulator: Emulator, plural: str) -> Iterator[JsonObject]:
    """Every stored object of a plural name across groups (a test convenience)."""
    for spec, obj in emulator.store.iter_objects():
        if spec.plural == plural:
            yield obj


__all__ = [
    "AdmissionHook",
    "ApiPath",
    "BackgroundEmulator",
    "Emulator",
    "RequestLog",
    "RequestRecord",
    "guess_verb",
    "iter_objects",
    "parse_api_path",
]
