"""In-process concurrency and rate limits: declared limits, slots held and given back,
waiting, decay, undeclared names, and the errors a user sees."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest
from headwater import flow, task
from headwater.concurrency import asyncio as aconcurrency
from headwater.concurrency import declare_limit, limits, read_limit
from headwater.concurrency.sync import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    concurrency,
    rate_limit,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """A clock the test moves; every test starts with no declared limits."""
    fake = Clock()
    monkeypatch.setattr(limits, "monotonic", fake)
    monkeypatch.delenv("HEADWATER_CONCURRENCY_LIMITS", raising=False)
    limits.REGISTRY.clear()
    yield fake
    limits.REGISTRY.clear()


def slots(name: str) -> float:
    limit = read_limit(name)
    assert limit is not None
    return limit.active_slots


def test_an_undeclared_limit_takes_nothing_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    ran = []
    with caplog.at_level(logging.WARNING, "headwater.concurrency"), concurrency("nowhere"):
        ran.append(1)
    rate_limit("nowhere")
    assert ran == [1]
    assert "Concurrency limits ['nowhere'] do not exist - skipping acquisition." in caplog.text
    assert read_limit("nowhere") is None  # nothing was created by use


def test_strict_raises_for_an_undeclared_limit_and_says_how_to_declare_it() -> None:
    with (pytest.raises(ConcurrencySlotAcquisitionError,
                        match=r"HEADWATER_CONCURRENCY_LIMITS.*declare_limit"),
          concurrency("nowhere", strict=True)):
        pass
    with pytest.raises(ConcurrencySlotAcquisitionError):
        rate_limit("nowhere", strict=True)


def test_slots_are_held_inside_the_block_and_given_back_after_it() -> None:
    declare_limit("database", 2)
    with concurrency("database", occupy=2):
        assert slots("database") == 2
        with pytest.raises(AcquireConcurrencySlotTimeoutError, match="timed out after 0"), \
                concurrency("database", timeout_seconds=0):
            pass
    assert slots("database") == 0
    with pytest.raises(RuntimeError), concurrency("database"):
        raise RuntimeError("the block failed")
    assert slots("database") == 0  # given back on errors too


def test_a_waiter_proceeds_when_the_holder_releases() -> None:
    declare_limit("gpu", 1)
    holding = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with concurrency("gpu"):
            order.append("holder in")
            holding.set()
            release.wait()
            order.append("holder out")

    def waiter() -> None:
        holding.wait()
        with concurrency("gpu"):
            order.append("waiter in")

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for thread in threads:
        thread.start()
    holding.wait()
    release.set()
    for thread in threads:
        thread.join()
    assert order == ["holder in", "holder out", "waiter in"]


def test_all_named_limits_are_taken_together_or_not_at_all() -> None:
    declare_limit("a", 1)
    declare_limit("b", 1)
    with concurrency("b"), pytest.raises(AcquireConcurrencySlotTimeoutError), \
            concurrency(["a", "b"], timeout_seconds=0):
        pass
    assert slots("a") == 0  # "a" was not kept while "b" was busy
    with concurrency(["a", "b", "undeclared"]):  # declared ones are taken, no error
        assert (slots("a"), slots("b")) == (1, 1)


def test_requests_that_can_never_be_granted_are_errors() -> None:
    declare_limit("small", 1)
    with pytest.raises(ConcurrencySlotAcquisitionError, match="occupy=2 is more than"), \
            concurrency("small", occupy=2):
        pass
    with pytest.raises(ConcurrencySlotAcquisitionError, match="slot decay"):
        rate_limit("small")
    with pytest.raises(ValueError, match="occupy must be"), concurrency("small", occupy=0):
        pass


def test_an_inactive_limit_never_blocks() -> None:
    declare_limit("paused", 1, active=False)
    with concurrency("paused"), concurrency("paused", timeout_seconds=0):
        pass


def test_rate_limit_lets_a_burst_through_then_the_decay_rate(clock: Clock) -> None:
    declare_limit("api", 2, slot_decay_per_second=0.5)
    rate_limit("api")
    rate_limit("api")
    with pytest.raises(AcquireConcurrencySlotTimeoutError):
        rate_limit("api", timeout_seconds=0)
    clock.now += 1.0  # half a slot decayed: still full
    with pytest.raises(AcquireConcurrencySlotTimeoutError):
        rate_limit("api", timeout_seconds=0)
    clock.now += 1.0  # one slot decayed
    rate_limit("api", timeout_seconds=0)
    assert slots("api") == 2


def test_async_rate_limit_waits_for_decay_without_blocking_the_loop(
        clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        pauses.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(limits, "async_sleep", fake_sleep)
    declare_limit("api", 1, slot_decay_per_second=2.0)

    async def main() -> None:
        await aconcurrency.rate_limit("api")
        await aconcurrency.rate_limit("api")

    asyncio.run(main())
    assert pauses == [0.5]  # one slot at 2 per second


def test_async_concurrency_holds_slots_shared_with_sync_code() -> None:
    declare_limit("db", 1)

    async def main() -> None:
        async with aconcurrency.concurrency("db"):
            assert slots("db") == 1
            with pytest.raises(AcquireConcurrencySlotTimeoutError), \
                    concurrency("db", timeout_seconds=0):
                pass
        assert slots("db") == 0

    asyncio.run(main())


def test_limits_declared_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_CONCURRENCY_LIMITS",
                       '{"db": 3, "api": {"limit": 10, "slot_decay_per_second": 1.5}}')
    limits.REGISTRY.clear()
    db, api = read_limit("db"), read_limit("api")
    assert db is not None
    assert api is not None
    assert (db.limit, db.slot_decay_per_second, db.active) == (3, 0.0, True)
    assert (api.limit, api.slot_decay_per_second) == (10, 1.5)


@pytest.mark.parametrize(("text", "message"), [
    ("[1]", "must be a JSON object"),
    ("{db", "is not JSON"),
    ('{"db": -1}', "limit 'db': 'limit' must be a whole number"),
    ('{"db": {"slots": 2}}', "unknown fields \\['slots'\\]"),
    ('{"db": {"limit": 2, "slot_decay_per_second": -1}}', "'slot_decay_per_second' must"),
])
def test_bad_declarations_name_the_limit_and_the_field(monkeypatch: pytest.MonkeyPatch,
                                                        text: str, message: str) -> None:
    monkeypatch.setenv("HEADWATER_CONCURRENCY_LIMITS", text)
    limits.REGISTRY.clear()
    with pytest.raises(ValueError, match=message), concurrency("db"):
        pass


def test_tasks_on_the_task_runner_hold_the_process_wide_limit() -> None:
    declare_limit("warehouse", 1)
    held: list[float] = []

    @task
    def load(n: int) -> int:
        with concurrency("warehouse", timeout_seconds=None):
            held.append(slots("warehouse"))
        return n

    @flow
    def pipeline() -> list[int]:
        return [f.result() for f in load.map(range(8))]

    assert pipeline() == list(range(8))
    assert held == [1.0] * 8  # each task run held the one slot alone
    assert slots("warehouse") == 0
