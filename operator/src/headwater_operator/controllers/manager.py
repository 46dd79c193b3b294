"""The manager: every controller of the operator, fed by one set of shared informers.

:class:`Manager` is what the leader runs (:func:`headwater_operator.runner.run_operator`
starts it when this process holds the Lease, or at once without leader election). It
owns, for the watched namespaces:

* the **shared informers** (:class:`~headwater_operator.informer.InformerFactory`), one
  LIST + WATCH per kind: Flows, Deployments, Schedules, FlowRuns, Blocks, Variables,
  Headwater's pods (server-side label selector) and Secrets (metadata only: their data
  never reaches the operator) — no kind is watched twice;
* the **stores** of Deployments, Flows, Blocks and Variables (whole objects, few of
  them), which the FlowRun and Deployment controllers read instead of asking the API
  server;
* the **controllers**, each a work queue with workers
  (:class:`~headwater_operator.runtime.Controller`): FlowRuns
  (:mod:`.flowruns`), Schedules (:mod:`.schedules`), Deployments and Flows
  (:mod:`.deployments`), Deployments' triggers (:mod:`.triggers`), and Automations
  (:mod:`.automations`, which consumes the FlowRun informer too).

Start-up order, and why: handlers are registered first (the stores before the
controllers, so a controller's callback sees the store already updated), then the
informers start and the workers wait until **every informer has delivered its first
LIST**. A controller's first reconcile therefore sees everything that existed: a
Schedule finds its Deployment and its active runs (``Forbid`` after a restart must see
them), a FlowRun its Deployment. Watch events that arrive meanwhile only wake keys.

Stopping: :meth:`Manager.stop` lets reconciles in flight finish for a short grace
period, then cancels everything. Nothing is persisted; the next leader lists afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from headwater_operator import kube
from headwater_operator.clock import Clock
from headwater_operator.controllers.automations import AutomationController, NotifierLoader
from headwater_operator.controllers.deployments import DeploymentController, FlowController
from headwater_operator.controllers.flowruns import FlowRunController
from headwater_operator.controllers.schedules import ScheduleController
from headwater_operator.controllers.signals import NULL_OBSERVER, EventRecorder, Observer
from headwater_operator.controllers.triggers import TriggerController
from headwater_operator.flowruns.settings import DEFAULT_CONFIG_ERROR_GRACE
from headwater_operator.informer import InformerFactory, Store
from headwater_operator.runtime import Controller

logger = logging.getLogger(__name__)

CONTROLLERS = ("flowruns", "schedules", "deployments", "flows", "triggers", "automations")
"""Every controller, by name (``--controllers`` may run a subset: benchmarks)."""
STOP_GRACE_SECONDS = 2.0
"""How long a stopping manager lets reconciles in flight finish before cancelling."""


class Reconciler(Protocol):
    """What the manager needs of a controller: its work queue, and its watch handlers."""

    @property
    def queue(self) -> Controller[Any]: ...

    def register(self, informers: InformerFactory) -> None: ...


@dataclass(frozen=True)
class Options:
    """How the manager runs (the operator's command line decides)."""

    namespaces: tuple[str, ...] | None
    """The watched namespaces; None for the whole cluster."""
    controllers: Collection[str] = CONTROLLERS
    config_error_grace: timedelta = DEFAULT_CONFIG_ERROR_GRACE
    run_store: str | None = None
    """The default run store (``--run-store``) of runs whose Deployment names none."""
    ui_url: str | None = None
    """The UI's public address (``--ui-url``), passed to flow-run pods."""
    clock: Clock | None = None
    watch_timeout_seconds: int = 300
    notifier: NotifierLoader | None = None
    """Loads a namespace's notification block by name (blocking), for automations."""


class Manager:
    """The informers, stores and controllers of one leadership term (see the module)."""

    def __init__(self, client: kube.Kube, options: Options, *, events: EventRecorder,
                 observer: Observer = NULL_OBSERVER) -> None:
        unknown = set(options.controllers) - set(CONTROLLERS)
        if unknown:
            raise ValueError(f"unknown controllers {sorted(unknown)}; choose among "
                             f"{', '.join(CONTROLLERS)}")
        self.options = options
        self.informers = InformerFactory(client, options.namespaces,
                                         watch_timeout_seconds=options.watch_timeout_seconds)
        self.deployment_store = Store()
        self.flow_store = Store()
        self.informers.informer(kube.DEPLOYMENTS).add_handler(self.deployment_store.on_event)
        self.informers.informer(kube.FLOWS).add_handler(self.flow_store.on_event)
        self.block_store = Store()
        self.variable_store = Store()
        if "flowruns" in options.controllers:
            self.informers.informer(kube.BLOCKS).add_handler(self.block_store.on_event)
            self.informers.informer(kube.VARIABLES).add_handler(self.variable_store.on_event)
        clock, wanted = options.clock, set(options.controllers)
        self.flowruns = FlowRunController(
            client, deployments=self.deployment_store, flows=self.flow_store, events=events,
            blocks=self.block_store, variables=self.variable_store,
            observer=observer, clock=clock, config_error_grace=options.config_error_grace,
            run_store=options.run_store, ui_url=options.ui_url)
        self.schedules = ScheduleController(client, events=events, observer=observer,
                                            clock=clock)
        self.deployments = DeploymentController(
            client, deployments=self.deployment_store, flows=self.flow_store, events=events,
            observer=observer, clock=clock)
        self.flows = FlowController(client, flows=self.flow_store,
                                    deployments=self.deployments, events=events,
                                    observer=observer, clock=clock)
        self.triggers = TriggerController(client, deployments=self.deployment_store,
                                          events=events, observer=observer, clock=clock)
        self.automations = AutomationController(
            client, deployments=self.deployment_store, events=events, observer=observer,
            clock=clock, notifier=options.notifier, ui_url=options.ui_url)
        by_name: dict[str, Reconciler] = {"flowruns": self.flowruns, "schedules": self.schedules,
                   "deployments": self.deployments, "flows": self.flows,
                   "triggers": self.triggers, "automations": self.automations}
        self.running = [by_name[name] for name in CONTROLLERS if name in wanted]
        for controller in self.running:
            controller.register(self.informers)
        self.synced = asyncio.Event()
        """Set once every informer listed what exists and the workers have started."""
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def queues(self) -> list[Controller[Any]]:
        """The work queues of the running controllers (for metrics)."""
        return [controller.queue for controller in self.running]

    async def start(self) -> None:
        """Start the informers, wait for their first LIST, then start the workers."""
        self._tasks.append(asyncio.create_task(self.informers.run(), name="informers"))
        waiter = asyncio.ensure_future(self.informers.wait_synced())
        await asyncio.wait({waiter, self._tasks[0]}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            self._tasks[0].result()  # the informers ended: say why
        for controller in self.running:
            self._tasks.append(asyncio.create_task(controller.queue.run(),
                                                   name=f"{controller.queue.name} controller"))
        logger.info("listed %s; controllers started: %s", ", ".join(
            f"{len(informer)} {informer.resource.plural}"
            for informer in self.informers.informers),
            ", ".join(controller.queue.name for controller in self.running))
        self.synced.set()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Let reconciles in flight finish for ``grace`` seconds, then cancel everything."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await asyncio.gather(*(controller.queue.drain(grace)
                                       for controller in self.running))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.automations.aclose()

    async def run(self) -> None:
        """Start, then run until cancelled (or until a part of it fails); then stop."""
        try:
            await self.start()
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop(grace=0)
