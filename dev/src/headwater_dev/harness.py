"""Run the real operator in-process, and wait for what it does.

Used by the api-test fixtures and by ``headwater dev``: :class:`OperatorHarness` starts
:func:`headwater_operator.runner.run_operator` as a task in the current event loop
(namespaced, without leader election unless asked) and stops it cleanly; it is started
once the controllers have listed everything. :func:`wait_for` polls a condition.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

import kopf
from headwater_operator import runner
from headwater_operator.controllers.manager import CONTROLLERS, Manager

T = TypeVar("T")

# Failures that only mean "not there yet" while polling a condition.
NOT_YET: tuple[type[BaseException], ...] = (LookupError, AttributeError, TypeError)


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,  # noqa: ASYNC109 - a plain number reads best in tests
    *,
    interval: float = 0.02,
    message: str | None = None,
) -> T:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that.

    ``KeyError``/``IndexError``/``AttributeError``/``TypeError`` and
    :class:`headwater_operator.kube.NotFound` while polling mean "not yet". On timeout,
    raises ``AssertionError`` with the last value or error, so a failing test says what
    it saw instead of only that it waited.
    """
    from headwater_operator import kube

    not_yet: tuple[type[BaseException], ...] = (*NOT_YET, kube.NotFound)
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = predicate()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return result  # type: ignore[return-value,unused-ignore]
            last = result
        except not_yet as exc:
            last = exc
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise AssertionError(f"{what} did not hold within {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)


class OperatorHarness:
    """The operator as a task of the current loop: ``start``, ``stop``, ``restart``."""

    def __init__(
        self,
        *,
        namespaces: Collection[str] = ("default",),
        controllers: Collection[str] = CONTROLLERS,
        leader_election: runner.LeaderElectionConfig | None = None,
        tune: Callable[[kopf.OperatorSettings], None] | None = None,
        startup_timeout: float = 15.0,
        stop_timeout: float = 15.0,
        config_error_grace_seconds: float | None = None,
        run_store: str | None = None,
        health_port: int | None = None,
        crd_poll_seconds: float = 0.2,
    ) -> None:
        self.namespaces = list(namespaces)
        self.health_port = health_port
        """Serve ``/healthz`` and ``/readyz`` there (None: no probe server)."""
        self.crd_poll_seconds = crd_poll_seconds
        """How often the operator looks for CRDs it waits for (quick in tests)."""
        self.controllers = tuple(controllers)
        self.leader_election = leader_election
        self.tune = tune
        self.manager: Manager | None = None
        """The controllers of the current run (set as it starts)."""
        self.config_error_grace_seconds = config_error_grace_seconds
        """The operator's ``--config-error-grace-seconds`` (None: its default); read at
        each start."""
        self.run_store = run_store
        """The operator's ``--run-store``: the default run store of runs whose Deployment
        names none (None: no default); read at each start."""
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.starts = 0
        self._task: asyncio.Task[None] | None = None
        self._stop_flag: asyncio.Event | None = None

    @property
    def running(self) -> bool:
        """Whether the operator task is alive."""
        return self._task is not None and not self._task.done()

    def settings(self) -> kopf.OperatorSettings:
        """Fresh kopf settings for one run: quick retries, so tests do not wait for
        backoffs (``runner.build_settings`` then applies the production conventions)."""
        settings = kopf.OperatorSettings()
        settings.networking.error_backoffs = [0.1, 0.2, 0.5]
        if self.tune is not None:
            self.tune(settings)
        return settings

    async def start(self) -> None:
        """Start the operator and wait until its controllers have listed everything."""
        if self.running:
            raise RuntimeError("the operator is already running; stop() or restart() it")
        self._stop_flag = asyncio.Event()
        ready = asyncio.Event()

        def keep(manager: Manager) -> None:
            self.manager = manager

        self._task = asyncio.create_task(runner.run_operator(
            namespaces=self.namespaces, stop_flag=self._stop_flag, ready_flag=ready,
            settings=self.settings(), controllers=self.controllers,
            leader_election=self.leader_election, on_manager=keep,
            config_error_grace_seconds=self.config_error_grace_seconds,
            run_store=self.run_store, health_port=self.health_port,
            crd_poll_seconds=self.crd_poll_seconds),
            name="headwater-operator")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({waiter, self._task}, timeout=self.startup_timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self._task.result()  # re-raise why it exited
            raise RuntimeError("the operator exited during startup")
        if not ready.is_set():
            await self.stop()
            raise TimeoutError(f"the operator was not ready within {self.startup_timeout}s")
        self.starts += 1

    async def stop(self) -> None:
        """Ask kopf to stop and wait for it; re-raises what crashed the operator."""
        if self._task is None or self._stop_flag is None:
            return
        self._stop_flag.set()
        task, self._task = self._task, None
        try:
            async with asyncio.timeout(self.stop_timeout):
                await task  # cancelled with this wait when it times out
        except TimeoutError as exc:
            raise TimeoutError(f"the operator did not stop within {self.stop_timeout}s") from exc

    async def restart(self) -> None:
        """Stop and start again: everything is listed again, as after a restart."""
        await self.stop()
        await self.start()
