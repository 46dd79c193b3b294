"""Who stops what on SIGINT and SIGTERM: one route per program, never kopf's own.

kopf installs its own SIGINT/SIGTERM handlers every time an operator starts in the main
thread (kopf 1.45 ``_core/reactor/running.py`` ``spawn_tasks``: ``loop.add_signal_handler``
with ``signal_flag.set_result``), replacing whatever the program had, and never removes
them. Two things went wrong because of that:

* a program that embeds the operator (``headwater dev``) lost its own handlers: Ctrl-C
  stopped only the operator while the sandbox kept running;
* a second signal called ``set_result`` on kopf's finished future again: an
  ``InvalidStateError`` traceback from the event loop, and nothing else happened.

So :func:`~headwater_operator.runner.run_operator` puts the current *route* back right
after kopf's start (:func:`reroute`). A route is a callable taking the signal; a program
declares it with :func:`signal_route` around everything it runs; without one,
``run_operator`` routes the signals to its own stop flag for the time it runs (the first
signal stops the operator, later ones are logged and change nothing), then restores
Python's defaults.

This module imports nothing heavy: the ``headwater`` command line uses it before kopf is
imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Route = Callable[[signal.Signals], object]
"""What to do when SIGINT or SIGTERM arrives (called in the event loop, with the signal)."""

_routes: list[tuple[Route, bool]] = []
"""The routes in force, innermost last, each with whether a program (not an operator)
declared it."""


def _handles_signals() -> bool:
    # asyncio delivers signals only to a loop in the main thread (elsewhere
    # add_signal_handler raises); the operator run in a test thread leaves them alone.
    return threading.current_thread() is threading.main_thread()


def _install(loop: asyncio.AbstractEventLoop, route: Route) -> None:
    for signum in SIGNALS:
        loop.add_signal_handler(signum, route, signum)


def _restore(loop: asyncio.AbstractEventLoop) -> None:
    if _routes:
        _install(loop, _routes[-1][0])
        return
    for signum in SIGNALS:
        loop.remove_signal_handler(signum)  # back to Python's default handlers


@contextlib.contextmanager
def signal_route(route: Route, *, program: bool = True) -> Iterator[None]:
    """Send SIGINT and SIGTERM of the running loop to ``route`` while the block runs.

    Routes nest; the innermost one is in force, also across operator (re)starts. On exit
    the enclosing route, or Python's defaults, come back. ``program=False`` marks an
    operator's own route, which does not stop another operator from taking its own.
    """
    if not _handles_signals():
        yield
        return
    loop = asyncio.get_running_loop()
    entry = (route, program)
    _routes.append(entry)
    _install(loop, route)
    try:
        yield
    finally:
        _routes.remove(entry)
        _restore(loop)


def has_route() -> bool:
    """Whether some program declared a route (then an operator must not take over)."""
    return any(program for _, program in _routes)


def reroute() -> None:
    """Put the current route back over handlers someone else installed (kopf's)."""
    if _routes and _handles_signals():
        _install(asyncio.get_running_loop(), _routes[-1][0])


def once(stop: Callable[[signal.Signals], object], *, what: str) -> Route:
    """A route that calls ``stop`` on the first signal and only logs the later ones.

    Stopping takes a few seconds (pods get SIGTERM and a grace period, kopf winds down):
    a second Ctrl-C must not start a second stop, nor end in a traceback.
    """
    received: list[signal.Signals] = []

    def route(signum: signal.Signals) -> None:
        if received:
            logger.warning("%s received while %s is stopping (after %s); it exits as soon as "
                           "its shutdown is done", signal.Signals(signum).name, what,
                           received[0].name)
            return
        received.append(signal.Signals(signum))
        stop(signal.Signals(signum))

    return route


def exit_code(received: signal.Signals | None, code: int) -> int:
    """The exit code of a program stopped by ``received`` (None: it ended by itself).

    The shell's convention, 128 + the signal's number (130 for SIGINT, 143 for
    SIGTERM): the caller learns the program was interrupted rather than done, so
    ``headwater dev && next-step`` does not go on after a Ctrl-C.
    """
    return 128 + int(received) if received is not None else code
