"""Run the Headwater operator process: probes, CRD wait, leader election, kopf, controllers.

What :func:`run_operator` does, in order:

1. **Probes and metrics** start at once (:mod:`headwater_operator.health`: ``/healthz``
   is alive from the first second; ``/readyz`` says what the operator waits for).
2. **Wait for the CRDs** (:func:`wait_for_crds`): until the API server serves all four
   Headwater kinds (API discovery, which every authenticated user may read), nothing
   starts — CRDs applied after the operator (GitOps sync waves, ``crds.install=false``)
   are picked up when they appear, and the log says which are missing.
3. **Leader election** (with ``leader_election``): the process stands by until it holds
   the Lease (:mod:`headwater_operator.leader`); a standby is ready (``ok (standby)``).
   Without it (one replica, ``headwater dev``, tests) the process leads at once.
4. **Lead**: kopf starts with Headwater's conventions (:func:`build_settings`) and a
   registry of our own (:func:`build_registry`): kopf logs in with our credentials, posts
   our Events, and its start-up handler starts the
   :class:`~headwater_operator.controllers.manager.Manager` — the shared informers and
   every controller — and is done once they have listed everything; kopf's clean-up
   stops them. kopf itself watches no resource: each kind is watched once, by the
   manager's informers.
5. **Leadership lost** (the Lease could not be renewed within the renew deadline, or
   another process holds it): everything is stopped before the lease can expire for a
   standby, and :class:`~headwater_operator.leader.LeadershipLost` propagates — the
   process exits non-zero and Kubernetes restarts it as a fresh standby.

What kopf still does, and why it is enough: it runs the process's start-up and clean-up
(the manager is started by a kopf start-up handler and stopped by its clean-up), handles
the signals, and logs in through our :func:`login` handler (kopf always authenticates at
start; without our handler its fallback would reconfigure the ``kubernetes`` package's
global client). It watches nothing and posts nothing: Events are posted by
:class:`~headwater_operator.events.EventRecorder` (kopf's poster is only reachable from
kopf's own per-object handlers), and there is no peering (leader election replaces it)
and no scanning. Its own log lines never become Events (posting level WARNING, and no
object handlers that would log per object).

Signals: kopf would take SIGINT/SIGTERM over (see :mod:`headwater_operator.shutdown`).
A program that declared a :func:`~headwater_operator.shutdown.signal_route` keeps it;
otherwise the first signal stops this operator (releasing the Lease) and later ones are
only logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import logging
import signal
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import kopf
from headwater.contract import GROUP, VERSION

from headwater_operator import blockstore, kube, metrics, shutdown
from headwater_operator.clock import Clock
from headwater_operator.controllers.manager import CONTROLLERS, Manager, Options
from headwater_operator.events import EventRecorder
from headwater_operator.flowruns.settings import DEFAULT_CONFIG_ERROR_GRACE
from headwater_operator.health import HealthServer
from headwater_operator.leader import (
    DEFAULT_LEASE_NAME,
    LeaderElection,
    Timing,
    default_identity,
)

logger = logging.getLogger(__name__)

CRD_POLL_SECONDS = 5.0
"""How often the operator looks again for CRDs that are not served yet."""
CRD_LOG_EVERY = 12
"""Log the wait on the first look and every this many looks (once a minute)."""
HEADWATER_PLURALS = ("flows", "deployments", "schedules", "flowruns", "blocks", "variables",
                     "concurrencylimits", "automations")
LOST_STOP_SECONDS = 4.0
"""After losing the Lease, how long the controllers may take to stop before the process
exits regardless: a standby may take over ``lease_duration - renew_deadline`` (5 s by
default) after the last renewal, and the old leader must be silent by then."""


@dataclass(frozen=True)
class LeaderElectionConfig:
    """``--leader-elect`` and its flags (kube-controller-manager's names)."""

    namespace: str
    """Where the Lease lives (the chart: the operator's own namespace)."""
    name: str = DEFAULT_LEASE_NAME
    identity: str = ""
    """``holderIdentity`` (default: pod name plus a random suffix)."""
    timing: Timing = field(default_factory=Timing)


def build_settings(settings: kopf.OperatorSettings,
                   posting_level: int = logging.WARNING) -> kopf.OperatorSettings:
    """Apply Headwater's conventions (see the module docstring) to kopf's settings."""
    settings.scanning.disabled = True
    settings.posting.level = posting_level
    settings.posting.reporting_component = "headwater-operator"
    settings.peering.standalone = True
    return settings


def freeze_startup_objects() -> None:
    """Exclude every object alive now from the cyclic garbage collector's full passes.

    Call it once, after the imports (``python -m headwater_operator`` does). Modules,
    classes and functions of kopf, the kubernetes client, pydantic and Headwater are most
    of the operator's objects and live as long as it does; full collections need not
    walk them (``docs/decisions.md``, "Garbage collection"). Frozen objects are still
    freed by reference counting if they ever go. Not called in tests, where one process
    starts many operators.
    """
    gc.freeze()


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
    reconfiguring the ``kubernetes`` package's global default client. It returns a
    session rather than bare credentials so that kopf's requests (Events) are counted in
    ``headwater_kubernetes_api_requests_total`` like ours (:func:`request_counter`);
    ``kopf.AiohttpSession`` is kopf's documented way to supply one (≥ 1.44), and kopf
    owns and closes it.
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


def build_registry(manager: Manager) -> kopf.OperatorRegistry:
    """A kopf registry with only what kopf does for us: log in, start and stop ``manager``.

    A fresh registry per leadership term (never kopf's global default one), so an
    operator started again in one process starts clean.
    """
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry, id="headwater-login")(login)

    async def start_controllers(**_: Any) -> None:
        # Done once every informer has listed what exists: kopf's ready flag then means
        # "the controllers see the whole cluster".
        await manager.start()

    async def stop_controllers(**_: Any) -> None:
        await manager.stop()

    kopf.on.startup(registry=registry, id="headwater-controllers")(start_controllers)
    kopf.on.cleanup(registry=registry, id="headwater-controllers")(stop_controllers)
    return registry


async def run_operator(
    *,
    namespaces: Collection[str] | None = None,
    clusterwide: bool = False,
    stop_flag: asyncio.Event | asyncio.Future[Any] | None = None,
    ready_flag: asyncio.Event | None = None,
    leader_election: LeaderElectionConfig | None = None,
    health_port: int | None = None,
    crd_poll_seconds: float = CRD_POLL_SECONDS,
    metrics_port: int | None = None,
    settings: kopf.OperatorSettings | None = None,
    controllers: Collection[str] = CONTROLLERS,
    clock: Clock | None = None,
    config_error_grace_seconds: float | None = None,
    run_store: str | None = None,
    ui_url: str | None = None,
    on_manager: Callable[[Manager], None] | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or the process is signalled).

    ``ready_flag`` is set once the controllers have listed everything (this process
    leads). ``controllers`` runs a subset (benchmarks). ``clock`` is the controllers'
    clock (default: the process clock, :func:`~headwater_operator.clock.get_clock`).
    ``config_error_grace_seconds`` is how long a run waits for a missing Secret or
    ConfigMap its pod needs. ``run_store`` is the default run store of runs whose
    Deployment names none (docs/run-store.md); ``ui_url`` the UI's address flow-run pods
    link their page with (``HEADWATER_UI_URL``). ``on_manager(manager)`` is called with each
    new manager
    (tests). Raises :class:`~headwater_operator.leader.LeadershipLost` if this process
    led and lost the Lease.
    """
    if clusterwide == bool(namespaces):
        raise ValueError("run the operator either clusterwide=True or with namespaces=[...], "
                         f"not both or neither (got clusterwide={clusterwide}, "
                         f"namespaces={list(namespaces or [])})")
    options = Options(
        namespaces=None if clusterwide else tuple(namespaces or ()),
        controllers=tuple(controllers), clock=clock,
        config_error_grace=(timedelta(seconds=config_error_grace_seconds)
                            if config_error_grace_seconds is not None
                            else DEFAULT_CONFIG_ERROR_GRACE),
        run_store=run_store or None, ui_url=ui_url or None,
        notifier=blockstore.NotificationBlocks().load)
    attach_metrics()
    if metrics_port is not None:
        metrics.start_metrics_server(metrics_port)
    if stop_flag is None:
        stop_flag = asyncio.get_running_loop().create_future()  # resolved with the signal
    route = None if shutdown.has_route() else shutdown.once(
        functools.partial(_raise_flag, stop_flag), what="the operator")
    health = HealthServer(health_port) if health_port is not None else None
    token = _operator_context.set(True)
    try:
        with (shutdown.signal_route(route, program=False) if route
              else contextlib.nullcontext()), _tracking_operator_tasks() as ours:
            if health is not None:
                await health.start()
            if not await wait_for_crds(stop_flag, crd_poll_seconds, health):
                return
            lead = functools.partial(
                _lead, options, stop_flag=stop_flag, ready_flag=ready_flag, health=health,
                settings=settings, clusterwide=clusterwide, ours=ours, on_manager=on_manager)
            if leader_election is None:
                metrics.set_leader(True)
                await lead()
            else:
                await _elect(leader_election, lead, stop_flag, health)
    finally:
        _operator_context.reset(token)
        metrics.set_leader(False)
        if health is not None:
            await health.stop()


async def _elect(config: LeaderElectionConfig, lead: Callable[[], Awaitable[None]],
                 stop_flag: asyncio.Event | asyncio.Future[Any],
                 health: HealthServer | None) -> None:
    """Stand by until this process holds the Lease, then ``lead()`` while it does."""
    if health is not None:
        health.role = "standby"
        health.ready()

    def on_change(leading: bool) -> None:
        metrics.set_leader(leading)
        if health is not None:
            health.role = "leader" if leading else "standby"

    election = LeaderElection(kube.get_client(), namespace=config.namespace, name=config.name,
                              identity=config.identity or default_identity(),
                              timing=config.timing, on_change=on_change)
    elected = asyncio.ensure_future(election.run(lead))
    stopper = asyncio.ensure_future(_wait_flag(stop_flag))
    try:
        await asyncio.wait({elected, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not elected.done():
            # Stopped (a signal): lead() ends on the flag by itself; a standby is
            # cancelled. Either way the Lease is released.
            if not election.is_leader:
                elected.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await elected
    elected.result()  # LeadershipLost, or what lead() raised


async def _lead(options: Options, *, stop_flag: asyncio.Event | asyncio.Future[Any],
                ready_flag: asyncio.Event | None, health: HealthServer | None,
                settings: kopf.OperatorSettings | None, clusterwide: bool,
                ours: weakref.WeakSet[asyncio.Task[Any]],
                on_manager: Callable[[Manager], None] | None) -> None:
    """Run kopf and the controllers until ``stop_flag`` is set (or this is cancelled)."""
    events = EventRecorder(kube.get_client())
    manager = Manager(kube.get_client(), options, events=events, observer=metrics)
    metrics.watch_queues(manager.queues)
    if on_manager is not None:
        on_manager(manager)
    ready = _reporting_ready(ready_flag, health)
    tasks = await kopf.spawn_tasks(
        registry=build_registry(manager), settings=build_settings(
            settings or kopf.OperatorSettings()),
        clusterwide=clusterwide, namespaces=list(options.namespaces or ()),
        stop_flag=stop_flag, ready_flag=ready, standalone=True, memo=kopf.Memo())
    shutdown.reroute()  # kopf just installed its own signal handlers
    try:
        await kopf.run_tasks(tasks, ignored=_NotOurs(ours))
    finally:
        # kopf's clean-up stops the manager; if kopf was cancelled before it could (the
        # Lease was lost), stop it here, bounded: a standby may soon take over.
        try:
            async with asyncio.timeout(LOST_STOP_SECONDS):
                await manager.stop(grace=0)
                await events.close(grace=1.0)
        except TimeoutError:
            logger.critical("the controllers did not stop within %gs; exiting",
                            LOST_STOP_SECONDS)
            raise


async def _wait_flag(flag: asyncio.Event | asyncio.Future[Any]) -> None:
    if isinstance(flag, asyncio.Event):
        await flag.wait()
    else:
        await asyncio.shield(flag)


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
    try:
        async with asyncio.timeout(seconds):
            await _wait_flag(flag)
    except TimeoutError:
        return False
    return True


def _reporting_ready(ready_flag: asyncio.Event | None, health: HealthServer | None
                     ) -> asyncio.Event:
    """kopf's ready flag, raised when kopf has started (the controllers have listed
    everything); it also makes ``/readyz`` 200."""
    flag = ready_flag or asyncio.Event()
    if health is None:
        return flag
    if not health.role:
        health.waiting_for = "starting"

    async def report() -> None:
        await flag.wait()
        health.ready()

    task = asyncio.get_running_loop().create_task(report())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return flag


_background: set[asyncio.Task[None]] = set()


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


def attach_metrics() -> None:
    """Count every API request and retry of :mod:`headwater_operator.kube` in the metrics."""
    kube.add_request_observer(metrics.observe_api_request)
    kube.add_retry_observer(metrics.observe_api_retry)
