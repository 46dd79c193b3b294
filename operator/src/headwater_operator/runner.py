"""Run the Headwater operator: kopf settings by our conventions, and the kopf main loop.

Conventions applied by :func:`build_settings`, and why:

* **Finalizer** ``headwater.dev/finalizer``: users see whose finalizer blocks a deletion.
* **Progress storage in annotations only**, prefix ``headwater.dev``
  (``headwater.dev/<handler-id>`` and ``headwater.dev/last-handled-configuration``).
  kopf's status storage would write ``status.kopf``, which our structural CRD schemas
  prune (status is generated from the models, no unknown fields), so progress would be
  silently lost on a real API server; and status is the user-facing summary, kept small.
  Annotations survive operator restarts, which is what makes a restart not re-run a
  handler that already succeeded.
* **Watch timeouts**: the server ends each watch after ``server_timeout`` (a clean
  reconnect point, well below the API server's own 30–60 min cap); ``client_timeout``
  slightly longer catches a silently dead connection; ``connect_timeout`` bounds
  reconnects when the API server is away.
* **Only Headwater's pods are watched**: a server-side label selector on pods
  (``app.kubernetes.io/managed-by=headwater``) keeps memory and traffic independent of
  unrelated pods in the cluster.
* **Scanning disabled** when namespaces are given: a namespaced operator has no RBAC to
  list namespaces or CRDs cluster-wide. kopf then resolves its resources once, at start,
  so the operator starts kopf only once the API server serves all four Headwater kinds
  (:func:`wait_for_crds`, from API discovery, which every authenticated user may read):
  until then it is alive but not ready (``/readyz`` 503, :mod:`headwater_operator.health`)
  and logs what it waits for, and nothing — the Schedule controller included — creates
  runs that nothing would track. CRDs applied after the operator (GitOps sync waves,
  ``crds.install=false``) are picked up when they appear.
* **Peering** ``headwater`` for HA; ``standalone`` for a single replica.
* **Posting level WARNING**: ``kopf.warn()``/``kopf.exception()`` become k8s Events,
  ``kopf.info()`` does not. Handlers post user-facing Normal Events with
  ``kopf.event()``, which is not filtered; routine progress stays in the logs.
* **No diff-base when nothing reads it**: kopf computes each watch event's "essence"
  (a deep copy of the body without status) and its diff against the stored one, but only
  change handlers (``on.create``/``update``/``resume``/``delete``/``field``) use it.
  Headwater uses none (``on.event``, indexes and daemons only), and every tick's own
  writes cause two watch events, so :func:`run_operator` installs
  :class:`NoDiffBaseStorage` then (measured: ~0.2 ms a watch event). Should a change
  handler ever be registered, the annotations storage above stays in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import importlib
import logging
import signal
import weakref
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import kopf
from headwater.contract import GROUP, LABEL_MANAGED_BY, MANAGED_BY_VALUE, VERSION

from headwater_operator import kube, shutdown
from headwater_operator.health import HealthServer

logger = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/finalizer"
CRD_POLL_SECONDS = 5.0
"""How often the operator looks again for CRDs that are not served yet."""
CRD_LOG_EVERY = 12
"""Log the wait on the first look and every this many looks (once a minute)."""
ANNOTATION_PREFIX = GROUP
PEERING_NAME = "headwater"
POD_LABEL_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}"

SCOPE_KEY = "headwater_scope"
"""Where :func:`run_operator` puts the :class:`OperatorScope` in kopf's memo."""
CONFIG_ERROR_GRACE_KEY = "headwater_config_error_grace"
"""Where :func:`run_operator` puts ``--config-error-grace-seconds`` (a ``timedelta``)."""


@dataclass(frozen=True)
class OperatorScope:
    """What the operator watches, and its peering name when replicas share the work.

    Handlers that watch by themselves (the Schedule controller) read it from the memo.
    """

    namespaces: tuple[str, ...] | None
    """The watched namespaces; None for the whole cluster."""
    peering: str | None = None
    """kopf's peering name with HA replicas; None for a single (standalone) replica."""


WATCH_SERVER_TIMEOUT = 300.0
WATCH_CLIENT_TIMEOUT = 330.0
WATCH_CONNECT_TIMEOUT = 10.0


def build_settings(
    settings: kopf.OperatorSettings,
    *,
    namespaced: bool = True,
    standalone: bool = True,
    peering_name: str = PEERING_NAME,
    posting_level: int = logging.WARNING,
) -> kopf.OperatorSettings:
    """Apply Headwater's conventions (see the module docstring) to kopf's settings."""
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX, v1=False)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration", v1=False)
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT
    settings.watching.connect_timeout = WATCH_CONNECT_TIMEOUT
    settings.watching.label_selectors["v1", "pods"] = POD_LABEL_SELECTOR
    settings.scanning.disabled = namespaced
    settings.posting.level = posting_level
    settings.posting.reporting_component = "headwater-operator"
    settings.peering.name = peering_name
    settings.peering.standalone = standalone
    return settings


class NoDiffBaseStorage(kopf.DiffBaseStorage):
    """A diff-base that is always empty: for operators without change handlers.

    kopf still asks for it on every watch event; an empty essence both ways makes the
    diff empty at no cost (only daemons' ``idle`` timers read it, and we set none).
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Nothing to keep: no handler would ever read it."""


def has_change_handlers(registry: kopf.OperatorRegistry) -> bool:
    """Whether ``registry`` has any handler that needs kopf's diff-base.

    kopf has no public accessor for this; if its private registry layout changes, say
    yes (the safe answer: the annotations storage is kept).
    """
    changing = getattr(registry, "_changing", None)
    get_all = getattr(changing, "get_all_handlers", None)
    return get_all is None or bool(get_all())


def freeze_startup_objects() -> None:
    """Exclude every object alive now from the cyclic garbage collector's full passes.

    Call it once, after the imports (``python -m headwater_operator`` does). Modules,
    classes and functions of kopf, the kubernetes client, pydantic and Headwater are most
    of the operator's objects and live as long as it does, yet each full collection
    walked them all: measured with ``benchmarks/scheduling.py`` (1,000 Schedules every
    5 s), full collections stalled the event loop up to ~110 ms, ten times in two
    minutes. Frozen objects are still freed by reference counting if they ever go.
    Not called in tests, where one process starts many operators.
    """
    gc.freeze()


def import_handlers() -> None:
    """Register every handler (on kopf's default registry) by importing the package."""
    importlib.import_module("headwater_operator.handlers")


def connection_info() -> kopf.ConnectionInfo:
    """kopf's credentials, from the same configuration as :mod:`headwater_operator.kube`."""
    server, token, ca_path, verify = kube.connection_info()
    return kopf.ConnectionInfo(server=server, token=token, scheme="Bearer" if token else None,
                               ca_path=str(ca_path) if ca_path else None, insecure=not verify,
                               priority=100)


async def login(**_: Any) -> kopf.AiohttpSession:
    """kopf's HTTP session: our credentials, and every request counted in the metrics.

    Registering our own login handler keeps kopf and our client on one source of truth
    (in-cluster account, else ``$KUBECONFIG``) and stops kopf's fallback login from
    reconfiguring the ``kubernetes`` package's global default client.

    It returns a session rather than bare credentials so that kopf's own requests —
    listings, watches, Events — are counted in ``headwater_kubernetes_api_requests_total``
    like ours: the session carries an aiohttp ``TraceConfig`` (:func:`request_counter`).
    ``kopf.AiohttpSession`` is kopf's documented way to supply a custom session (≥ 1.44),
    so nothing private is patched; kopf owns the session and closes it. The session is
    built as kopf builds its own from a ``ConnectionInfo`` (TLS context and
    ``Authorization`` header from kopf's own helpers, no connection limit: each watch
    holds a connection). Async because an aiohttp session belongs to the running loop.
    """
    info = connection_info()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        trace_configs=[request_counter()],
    )
    return kopf.AiohttpSession(server=info.server, aiohttp_session=session,
                               priority=info.priority)


def request_counter() -> aiohttp.TraceConfig:
    """An aiohttp trace that reports each request's verb and HTTP code to :mod:`kube`'s
    request observers (code 0: no response, as for our own client)."""
    trace = aiohttp.TraceConfig()

    async def on_end(_session: aiohttp.ClientSession, _context: Any,
                     params: aiohttp.TraceRequestEndParams) -> None:
        verb = kube.api_verb(params.method, params.url.path, params.url.query)
        kube.report_request(verb, params.response.status)

    async def on_exception(_session: aiohttp.ClientSession, _context: Any,
                           params: aiohttp.TraceRequestExceptionParams) -> None:
        kube.report_request(kube.api_verb(params.method, params.url.path, params.url.query), 0)

    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_exception)
    return trace


_logged_in_registries: weakref.WeakSet[kopf.OperatorRegistry] = weakref.WeakSet()


def ensure_login(registry: kopf.OperatorRegistry) -> None:
    """Register :func:`login` on ``registry`` unless it is there already."""
    if registry not in _logged_in_registries:
        kopf.on.login(registry=registry, id="headwater-login")(login)
        _logged_in_registries.add(registry)


async def run_operator(
    *,
    namespaces: Collection[str] | None = None,
    clusterwide: bool = False,
    stop_flag: asyncio.Event | asyncio.Future[Any] | None = None,
    ready_flag: asyncio.Event | None = None,
    peering: str | None = None,
    standalone: bool = True,
    liveness_endpoint: str | None = None,
    health_port: int | None = None,
    crd_poll_seconds: float = CRD_POLL_SECONDS,
    metrics_port: int | None = None,
    registry: kopf.OperatorRegistry | None = None,
    settings: kopf.OperatorSettings | None = None,
    memo: Any = None,
    insights: Any = None,
    config_error_grace_seconds: float | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or the process is signalled).

    Signals: kopf would take SIGINT/SIGTERM over (see :mod:`headwater_operator.shutdown`).
    A program that declared a :func:`~headwater_operator.shutdown.signal_route` keeps it;
    otherwise the first signal stops this operator (kopf logs which one) and later ones
    are only logged.

    Without ``registry``, the handlers of ``headwater_operator.handlers`` are imported
    and kopf's default registry is used. ``peering`` (a name) enables kopf peering for
    HA replicas; otherwise the operator runs ``standalone``. ``insights`` is passed to
    kopf as is (the test harness uses it to know when resource discovery is done).
    ``config_error_grace_seconds`` is how long a run waits for a missing Secret or
    ConfigMap its pod needs (default: ``flowruns.settings.DEFAULT_CONFIG_ERROR_GRACE``).
    """
    if clusterwide == bool(namespaces):
        raise ValueError("run the operator either clusterwide=True or with namespaces=[...], "
                         f"not both or neither (got clusterwide={clusterwide}, "
                         f"namespaces={list(namespaces or [])})")
    if registry is None:
        import_handlers()
        registry = kopf.get_default_registry()
    ensure_login(registry)
    settings = build_settings(
        settings or kopf.OperatorSettings(), namespaced=not clusterwide,
        standalone=standalone and peering is None, peering_name=peering or PEERING_NAME)
    if not has_change_handlers(registry):
        settings.persistence.diffbase_storage = NoDiffBaseStorage()
    memo = memo if memo is not None else kopf.Memo()
    # The Schedule controller (handlers.schedules) watches by itself: it needs to know
    # what kopf watches, and whether replicas share the work.
    memo[SCOPE_KEY] = OperatorScope(
        namespaces=None if clusterwide else tuple(namespaces or ()),
        peering=peering)
    if config_error_grace_seconds is not None:
        memo[CONFIG_ERROR_GRACE_KEY] = timedelta(seconds=config_error_grace_seconds)
    attach_metrics()
    if metrics_port is not None:
        start_metrics_server(metrics_port)
    if stop_flag is None:
        stop_flag = asyncio.get_running_loop().create_future()  # resolved with the signal
    route = None if shutdown.has_route() else shutdown.once(
        functools.partial(_raise_flag, stop_flag), what="the operator")
    health = HealthServer(health_port) if health_port is not None else None
    token = _operator_context.set(True)
    try:
        with (shutdown.signal_route(route, program=False) if route
              else contextlib.nullcontext()), \
                _tracking_operator_tasks() as ours:
            if health is not None:
                await health.start()
            if not await wait_for_crds(stop_flag, crd_poll_seconds, health):
                return
            ready_flag = _reporting_ready(ready_flag, health)
            tasks = await kopf.spawn_tasks(
                registry=registry, settings=settings, clusterwide=clusterwide,
                namespaces=list(namespaces or ()), stop_flag=stop_flag, ready_flag=ready_flag,
                standalone=standalone and peering is None,
                peering_name=peering if peering is not None else None,
                liveness_endpoint=liveness_endpoint, memo=memo, insights=insights)
            shutdown.reroute()  # kopf just installed its own signal handlers
            await kopf.run_tasks(tasks, ignored=_NotOurs(ours))
    finally:
        _operator_context.reset(token)
        if health is not None:
            await health.stop()



def missing_kinds(served: Collection[str]) -> list[str]:
    """The Headwater resources (``flows.headwater.dev``…) the API server does not serve."""
    return [f"{plural}.{GROUP}" for plural in HEADWATER_PLURALS if plural not in served]


async def wait_for_crds(stop_flag: asyncio.Event | asyncio.Future[Any], poll_seconds: float,
                        health: HealthServer | None) -> bool:
    """Return once the API server serves every Headwater kind; False if stopped first.

    Looks at API discovery (``/apis/headwater.dev/v1alpha1``) every ``poll_seconds``,
    says in the log (and on ``/readyz``) which CRDs are missing and how to install them.
    """
    looks = 0
    while True:
        missing = missing_kinds(await kube.get_client().served_resources(GROUP, VERSION))
        if not missing:
            if looks:
                logger.info("the Headwater CRDs are served; starting")
            return True
        waiting = (f"the API server does not serve {', '.join(missing)}: install the CRDs "
                   "(kubectl apply -f crds/, or the chart with crds.install=true); the "
                   "operator starts once they are served")
        if health is not None:
            health.waiting_for = waiting
        if looks % CRD_LOG_EVERY == 0:
            logger.warning("%s", waiting)
        looks += 1
        if await _stopped_within(stop_flag, poll_seconds):
            return False


async def _stopped_within(flag: asyncio.Event | asyncio.Future[Any], seconds: float) -> bool:
    waiter = flag.wait() if isinstance(flag, asyncio.Event) else asyncio.shield(flag)
    try:
        async with asyncio.timeout(seconds):
            await waiter
    except TimeoutError:
        return False
    return True


def _reporting_ready(ready_flag: asyncio.Event | None, health: HealthServer | None
                     ) -> asyncio.Event | None:
    """kopf's ready flag, raised when kopf has started; it also makes ``/readyz`` 200."""
    if health is None:
        return ready_flag
    health.waiting_for = "starting"
    flag = ready_flag or asyncio.Event()

    async def report() -> None:
        await flag.wait()
        health.ready()

    task = asyncio.get_running_loop().create_task(report())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return flag


_background: set[asyncio.Task[None]] = set()
HEADWATER_PLURALS = ("flows", "deployments", "schedules", "flowruns")


def _raise_flag(flag: asyncio.Event | asyncio.Future[Any], signum: signal.Signals) -> None:
    # A future resolved with the signal makes kopf log "Signal SIGTERM is received".
    if isinstance(flag, asyncio.Event):
        flag.set()
    elif not flag.done():
        flag.set_result(signum)


# kopf.operator() treats every task created in the loop after its start as its own and,
# on exit, waits 5 s for them and cancels them: in tests and in `headwater dev` that
# would include the caller's tasks (e.g. the pytest task that asked it to stop). We run
# kopf's spawn/run halves ourselves and tell it which tasks really are the operator's:
# those created, directly or transitively, from inside run_operator (tasks inherit the
# creator's context, so a context variable marks them; a task factory records them).
_operator_context: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "headwater_operator_task", default=False)


class _NotOurs(Collection["asyncio.Task[Any]"]):
    """kopf's ``ignored`` tasks: everything that is not the operator's."""

    def __init__(self, ours: weakref.WeakSet[asyncio.Task[Any]]) -> None:
        self._ours = ours

    def __contains__(self, task: object) -> bool:
        return task not in self._ours

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(())

    def __len__(self) -> int:
        return 0


@contextlib.contextmanager
def _tracking_operator_tasks() -> Iterator[weakref.WeakSet[asyncio.Task[Any]]]:
    loop = asyncio.get_running_loop()
    ours: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        task = (previous(loop, coro, **kwargs) if previous is not None
                else asyncio.Task(coro, loop=loop, **kwargs))
        if _operator_context.get() and isinstance(task, asyncio.Task):
            ours.add(task)
        return task

    loop.set_task_factory(factory)
    try:
        yield ours
    finally:
        if loop.get_task_factory() is factory:
            loop.set_task_factory(previous)


def _metrics_module() -> Any:
    try:
        return importlib.import_module("headwater_operator.metrics")
    except ModuleNotFoundError as exc:
        if exc.name != "headwater_operator.metrics":
            raise
        return None


def attach_metrics() -> None:
    """Count every API request and retry of :mod:`headwater_operator.kube` in the metrics
    module."""
    metrics = _metrics_module()
    observer = getattr(metrics, "observe_api_request", None)
    if observer is not None:
        kube.add_request_observer(observer)
    retry_observer = getattr(metrics, "observe_api_retry", None)
    if retry_observer is not None:
        kube.add_retry_observer(retry_observer)


def start_metrics_server(port: int) -> None:
    """Serve Prometheus metrics: through our metrics module when it exists."""
    metrics = _metrics_module()
    if metrics is None:
        import prometheus_client

        prometheus_client.start_http_server(port)
        return
    metrics.start_metrics_server(port)
