"""Fixtures for the api tests: the real operator against an in-process Kubernetes API.

Every test gets a fresh emulated API server (``headwater_dev``) on a
random port; nothing touches a real cluster. The test and the operator share an event loop;
the emulator has its own. Note that kopf cancels, when it stops, every task created in
its loop after it started: do not keep tasks across ``operator.restart()``.

Fixtures:

``emulator``
    The running :class:`~headwater_dev.emulator.BackgroundEmulator`
    (the server runs on its own loop in a thread, so kopf's loop stays kopf's and sync
    clients such as the CLI work from tests). ``KUBECONFIG``
    points at it (also the ``kubernetes`` client's import-time default) and
    :mod:`headwater_operator.kube` is configured for it. With
    ``HEADWATER_TEST_ADMISSION=OwnerReferencesPermissionEnforcement`` it also plays that
    kube-apiserver admission plugin (``owner_references_admission.py``). Direct, sync reads:
    ``emulator.object("flowruns", "name")`` (a dict or None),
    ``emulator.objects("pods", "default", label_selector="a=b")``. Request log:
    ``emulator.requests`` (see ``api_writes``).
``kube``
    The async client :class:`headwater_operator.kube.Kube` (``await kube.create(...)``).
``namespace``
    ``"default"``, which exists; the operator watches it.
``operator``
    :class:`~headwater_dev.harness.OperatorHarness`, already started:
    the real kopf operator with every handler of ``headwater_operator.handlers``,
    namespaced on ``namespace``, standalone. ``await operator.stop()``,
    ``await operator.start()``, ``await operator.restart()``; stopped at test end.
    Tests that must not run it just don't request it.
``kubelet``
    :class:`~headwater_dev.kubelet.Kubelet`: ``await kubelet.wait_for_pod(
    "name-or-k=v-selector", timeout)``, then ``schedule``, ``run``, ``succeed(pod,
    summary)``, ``fail(pod, exit_code, summary)``, ``oom_kill``, ``evict``,
    ``image_pull_error(pod, backoff=False)``, ``config_error``, ``unschedulable``,
    ``node_lost`` and ``write_log(pod, text)``. Pass the pod dict or its name.
``wait_for``
    ``await wait_for(lambda: (emulator.object("flowruns", "r1") or {})
    .get("status", {}).get("phase") == "Completed", timeout=10)`` — polls a sync or async
    predicate; a timeout fails with the last value seen.
``api_writes``
    Counts the write requests (create/update/patch/delete) served since the test began
    or the last ``api_writes.reset()``: ``api_writes.count()``,
    ``api_writes.count(verb="patch", resource="flowruns/status")``,
    ``api_writes.counter()`` (by verb, resource, code).
``s3_server``, ``s3``
    moto's S3 server in a child process (session) and a bucket prefix per test with
    this process pointed at it: tests/support/s3_server.py. ``s3.root`` is the
    ``s3://`` root, ``s3.child_env(...)``/``s3.env`` what a flow-run process needs.
``rbac_audit``
    Session-wide and automatic: every request the operator and the CLI send is recorded
    (:class:`api_rbac_audit.Observed`), and when the session ends the run fails with the
    list of calls the Helm chart's rendered RBAC would refuse (tests/support/
    api_rbac_audit.py). Requests are told apart by ``User-Agent``: while the operator
    runs (``runner.run_operator``, a ``LeaderElection``) or a CLI command runs
    (``cli.parsers.guarded``), a context variable names the actor, ``kube.api_client()``
    hands out a copy of the configured client carrying that actor's agent, and kopf's
    session gets it per request (``runner.request_counter``). The test harness's own
    requests (the ``kube`` fixture, the kubelet stand-in) carry the default agent and
    are not audited.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import aiohttp
import kubernetes.client
import kubernetes.config.kube_config
import owner_references_admission
import pytest
from api_rbac_audit import (
    Actor,
    Actors,
    Lease,
    Observed,
    failure_report,
    request_of,
    ungranted,
)
from headwater_dev.emulator import BackgroundEmulator, RequestLog, RequestRecord
from headwater_dev.harness import OperatorHarness
from headwater_dev.harness import wait_for as _wait_for
from headwater_dev.kubelet import Kubelet
from headwater_operator import kube as kube_module
from headwater_operator import runner
from headwater_operator.cli import parsers
from headwater_operator.leader import LeaderElection
from k8s_rbac import cached_render, helm_binary
from s3_server import s3, s3_server  # noqa: F401  (fixtures: a real S3 server, see its module)

WaitFor = type(_wait_for)


@pytest.fixture
def emulator_clock() -> Callable[[], datetime] | None:
    """What stamps the emulator's objects (creationTimestamp, ...): None is the real time.

    A test module that drives the scheduler with a hand-moved clock overrides this
    fixture so stored objects agree with that clock.
    """
    return None


# --- the RBAC audit ---------------------------------------------------------------------
_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "headwater_api_suite_actor", default=None)
ACTORS = Actors()
OBSERVED = Observed(ACTORS)


class ActorClients:
    """``kube.api_client()`` for the audit: the configured client for the harness, and
    for an actor a copy of it whose requests carry the actor's ``User-Agent``."""

    def __init__(self, original: Callable[[], kubernetes.client.ApiClient]) -> None:
        self.original = original
        self._copies: dict[tuple[int, str], tuple[Any, kubernetes.client.ApiClient]] = {}
        self._lock = threading.Lock()

    def __call__(self) -> kubernetes.client.ApiClient:
        base = self.original()
        actor = _ACTOR.get()
        if actor is None:
            return base
        agent = ACTORS.agent(actor)
        with self._lock:
            found = self._copies.get((id(base), agent))
            if found is None or found[0] is not base:
                copy = kubernetes.client.ApiClient(base.configuration)
                copy.user_agent = agent
                found = self._copies[(id(base), agent)] = (base, copy)
        return found[1]

    def close(self) -> None:
        """Close every copy (their sessions too); call when no operator runs."""
        with self._lock:
            copies, self._copies = list(self._copies.values()), {}
        for _, copy in copies:
            kube_module.close_transports(copy)
            copy.close()  # type: ignore[no-untyped-call]


ACTOR_CLIENTS = ActorClients(kube_module.api_client)


def operator_actor(run_operator_kwargs: Mapping[str, Any]) -> Actor:
    """The audit's actor for one ``runner.run_operator(**run_operator_kwargs)``.

    The operator's side of the contract: ``run_operator`` takes ``leader_election``,
    either None (no leader election) or an object whose ``name`` and ``namespace`` are
    the Lease it elects its leader on, as ``--leader-elect-resource-name`` and
    ``--leader-elect-resource-namespace`` (or the operator's default for it) set them.
    The audit then checks the operator's calls against the chart given that Lease
    (``api_rbac_audit.ungranted``).
    """
    scope = (None if run_operator_kwargs.get("clusterwide")
             else tuple(run_operator_kwargs.get("namespaces") or ()))
    election = run_operator_kwargs.get("leader_election")
    lease = None if election is None else Lease(election.namespace, election.name)
    return Actor("operator", scope, lease=lease)


def _patch_actors(patch: pytest.MonkeyPatch) -> None:
    """Name the actor while the operator or a CLI command runs, and record requests."""
    run_operator, request_counter = runner.run_operator, runner.request_counter
    guarded, elect, append = parsers.guarded, LeaderElection.run, RequestLog.append

    async def audited_run_operator(**kwargs: Any) -> None:
        token = _ACTOR.set(operator_actor(kwargs))
        try:
            await run_operator(**kwargs)
        finally:
            _ACTOR.reset(token)

    def audited_request_counter() -> aiohttp.TraceConfig:
        trace = request_counter()

        async def tag(_session: Any, _context: Any,
                      params: aiohttp.TraceRequestStartParams) -> None:
            actor = _ACTOR.get()
            if actor is not None:
                params.headers["User-Agent"] = ACTORS.agent(actor)

        trace.on_request_start.append(tag)
        return trace

    def audited_guarded(name: str, handler: Any, *args: Any, **kwargs: Any) -> Any:
        run = guarded(name, handler, *args, **kwargs)

        def tagged(namespace: Any) -> int:
            token = _ACTOR.set(Actor("cli", command=name))
            try:
                return int(run(namespace))
            finally:
                _ACTOR.reset(token)

        return tagged

    async def audited_elect(self: LeaderElection, work: Callable[[], Awaitable[None]]) -> None:
        if _ACTOR.get() is not None:  # inside the operator: already its actor
            await elect(self, work)
            return
        # Run by a test without the operator: as an operator watching the Lease's
        # namespace that was given this Lease.
        token = _ACTOR.set(Actor("operator", (self.namespace,),
                                 lease=Lease(self.namespace, self.name)))
        try:
            await elect(self, work)
        finally:
            _ACTOR.reset(token)

    def audited_append(self: RequestLog, record: RequestRecord) -> None:
        append(self, record)
        OBSERVED.record(record.user_agent, request_of(
            record.verb, record.group, record.resource, record.namespace, record.name))

    patch.setattr(kube_module, "api_client", ACTOR_CLIENTS)
    patch.setattr(runner, "run_operator", audited_run_operator)
    patch.setattr(runner, "request_counter", audited_request_counter)
    patch.setattr(parsers, "guarded", audited_guarded)
    patch.setattr(LeaderElection, "run", audited_elect)
    patch.setattr(RequestLog, "append", audited_append)


@pytest.fixture(scope="session", autouse=True)
def rbac_audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    """Record the operator's and the CLI's calls; at the end, fail on any the chart's
    RBAC would refuse (see the module docstring)."""
    with pytest.MonkeyPatch.context() as patch:
        _patch_actors(patch)
        yield OBSERVED
    ACTOR_CLIENTS.close()
    observed_file = tmp_path_factory.getbasetemp() / "rbac-audit.json"
    OBSERVED.write(observed_file)
    calls = OBSERVED.snapshot()
    if not calls:
        return
    refused = ungranted(calls, cached_render(helm_binary()))
    if refused:
        pytest.fail(failure_report(refused, observed_file), pytrace=False)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch,
             emulator_clock: Callable[[], datetime] | None) -> Iterator[BackgroundEmulator]:
    """A fresh emulated API server, with KUBECONFIG and the kube module pointing at it."""
    clock_option = {} if emulator_clock is None else {"clock": emulator_clock}
    with BackgroundEmulator(**clock_option) as api:
        install_admission_plugins(api)
        path = str(api.kubeconfig_path)
        monkeypatch.setenv("KUBECONFIG", path)
        # The kubernetes client reads $KUBECONFIG once, at import time.
        monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", path)
        kube_module.configure(path)
        try:
            yield api
        finally:
            ACTOR_CLIENTS.close()
            kube_module.close()


ADMISSION_ENV = "HEADWATER_TEST_ADMISSION"
"""Comma-separated admission plugins the emulator plays for every api test, as a
kube-apiserver with ``--enable-admission-plugins`` would (e.g. OpenShift's defaults):
``OwnerReferencesPermissionEnforcement`` (see ``owner_references_admission.py``)."""


def install_admission_plugins(api: BackgroundEmulator) -> None:
    """Install the plugins ``$HEADWATER_TEST_ADMISSION`` names; an unknown name fails."""
    for name in filter(None, os.environ.get(ADMISSION_ENV, "").split(",")):
        if name.strip() != owner_references_admission.PLUGIN:
            raise pytest.UsageError(f"{ADMISSION_ENV}: unknown admission plugin {name!r}; "
                                    f"known: {owner_references_admission.PLUGIN}")
        owner_references_admission.install(api)


@pytest.fixture
def kube(emulator: BackgroundEmulator) -> kube_module.Kube:
    """The async Kubernetes client of Headwater, talking to the emulator."""
    return kube_module.get_client()


@pytest.fixture
def namespace(emulator: BackgroundEmulator) -> str:
    """The namespace tests and the operator use (it exists in the emulator)."""
    return "default"


CreateDeployment = Callable[..., Awaitable[None]]


@pytest.fixture
def hello_deployment(kube: kube_module.Kube, namespace: str) -> CreateDeployment:
    """``await hello_deployment(name="nightly", **spec)``: the hello Flow and a Deployment of it.

    The minimal pair most lifecycle tests need; extra Deployment ``spec`` fields (history,
    concurrency, ...) are passed as keyword arguments.
    """

    async def create(name: str = "nightly", **spec: Any) -> None:
        await kube.create(kube_module.FLOWS, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "Flow", "metadata": {"name": "hello"},
            "spec": {"image": "example/flow:1", "entrypoint": "flows/hello.py:hello"},
        }, namespace=namespace)
        await kube.create(kube_module.DEPLOYMENTS, {
            "apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
            "metadata": {"name": name}, "spec": {"flowRef": {"name": "hello"}, **spec},
        }, namespace=namespace)

    return create


@pytest.fixture
async def operator(emulator: BackgroundEmulator, namespace: str) -> AsyncIterator[OperatorHarness]:
    """The real operator, running in-process against the emulator (started)."""
    harness = OperatorHarness(namespaces=[namespace])
    before = asyncio.all_tasks()
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
        await _assert_no_leaked_tasks(before)


async def _assert_no_leaked_tasks(before: set[asyncio.Task[object]]) -> None:
    # kopf cancels its tasks on stop; give cancellations a few loop turns to settle.
    for _ in range(50):
        leaked = {t for t in asyncio.all_tasks() - before
                  if t is not asyncio.current_task() and not t.done()}
        if not leaked:
            return
        await asyncio.sleep(0.02)
    names = sorted(t.get_name() for t in leaked)
    raise AssertionError(f"the operator left tasks running after stop: {names}")


@pytest.fixture
def kubelet(kube: kube_module.Kube, emulator: BackgroundEmulator, namespace: str) -> Kubelet:
    """The scriptable kubelet stand-in for pods in ``namespace``."""
    return Kubelet(kube, emulator, namespace=namespace)


@pytest.fixture
def wait_for() -> WaitFor:
    """``await wait_for(predicate, timeout=10)``: poll until the predicate is truthy."""
    return _wait_for


class ApiWrites:
    """Counts the emulator's write requests since the fixture was created or reset."""

    def __init__(self, log: RequestLog) -> None:
        self._log = log
        self._mark = log.mark()

    def reset(self) -> None:
        """Count from now on."""
        self._mark = self._log.mark()

    def count(self, *, verb: str | None = None, resource: str | None = None,
              code: int | None = None) -> int:
        """Writes since the mark matching the criteria (``resource`` e.g. ``pods/status``)."""
        return self._log.count(verb=verb, resource=resource, code=code, writes_only=True,
                               since=self._mark)

    def counter(self) -> collections.Counter[tuple[str, str, int]]:
        """Writes since the mark by (verb, resource, code)."""
        return collections.Counter({key: n for key, n in self._log.counter(self._mark).items()
                                    if key[0] in ("create", "update", "patch", "delete",
                                                  "deletecollection")})


@pytest.fixture
def api_writes(emulator: BackgroundEmulator) -> ApiWrites:
    """The write counter (see :class:`ApiWrites`)."""
    return ApiWrites(emulator.requests)
