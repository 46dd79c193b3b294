"""Signal routes: one owner of SIGINT/SIGTERM per program, kopf's handlers undone."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest
from headwater_operator import shutdown


def test_a_route_stops_once_and_only_notes_later_signals(
        caplog: pytest.LogCaptureFixture) -> None:
    stops: list[signal.Signals] = []
    route = shutdown.once(stops.append, what="the sandbox")
    with caplog.at_level(logging.WARNING, logger="headwater_operator.shutdown"):
        route(signal.SIGTERM)
        route(signal.SIGINT)
        route(signal.SIGINT)
    assert stops == [signal.SIGTERM]
    assert caplog.messages == [
        "SIGINT received while the sandbox is stopping (after SIGTERM); it exits as soon as "
        "its shutdown is done"] * 2


def test_exit_code_is_128_plus_the_signal_or_the_programs_own() -> None:
    assert shutdown.exit_code(signal.SIGINT, 0) == 130
    assert shutdown.exit_code(signal.SIGTERM, 1) == 143
    assert shutdown.exit_code(None, 1) == 1


async def test_the_innermost_route_gets_the_signal_and_survives_other_handlers() -> None:
    loop = asyncio.get_running_loop()
    outer: list[signal.Signals] = []
    inner: list[signal.Signals] = []
    with shutdown.signal_route(outer.append):
        with shutdown.signal_route(inner.append):
            # What kopf does when an operator starts: its own handler over ours.
            loop.add_signal_handler(signal.SIGTERM, lambda: None)
            shutdown.reroute()
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
        assert shutdown.has_route()
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.05)
    assert (inner, outer) == ([signal.SIGTERM], [signal.SIGINT])
    assert not shutdown.has_route()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


async def test_an_operators_own_route_does_not_count_as_the_programs() -> None:
    stops: list[signal.Signals] = []
    with shutdown.signal_route(stops.append, program=False):
        assert not shutdown.has_route()  # a second operator in the process takes its own
        with shutdown.signal_route(stops.append):
            assert shutdown.has_route()
