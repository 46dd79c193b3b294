"""Choosing where slots are counted: HEADWATER_CONCURRENCY_BACKEND and the plugin it
names (headwater.concurrency.backends)."""

from __future__ import annotations

from typing import Any

import pytest
from headwater.concurrency import backends
from headwater.concurrency.limits import ConcurrencySlotAcquisitionError


@pytest.mark.parametrize(("value", "parsed"), [
    (None, ("in-process", None)),
    ("", ("in-process", None)),
    ("  In-Process ", ("in-process", None)),
    ("kubernetes", ("kubernetes", None)),
    ("kubernetes:", ("kubernetes", None)),
    ("Kubernetes:data", ("kubernetes", "data")),
])
def test_parse_setting(value: str | None, parsed: tuple[str, str | None]) -> None:
    assert backends.parse_setting(value) == parsed


@pytest.mark.parametrize(("value", "message"), [
    (":data", "names no backend before ':'"),
    ("in-process:data", "'in-process' takes no argument"),
])
def test_a_bad_setting_says_what_to_write(value: str, message: str) -> None:
    with pytest.raises(ConcurrencySlotAcquisitionError, match=message):
        backends.parse_setting(value)


def test_in_process_needs_no_backend() -> None:
    assert backends.current({}) is None
    assert backends.current({"HEADWATER_CONCURRENCY_BACKEND": "in-process"}) is None


def _no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    backends.reset()


def test_kubernetes_without_headwater_operator_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _no_entry_points(monkeypatch)
    with pytest.raises(ConcurrencySlotAcquisitionError,
                       match="pip install headwater-operator"):
        backends.current({"HEADWATER_CONCURRENCY_BACKEND": "kubernetes"})


def test_an_unknown_backend_lists_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_entry_points(monkeypatch)
    with pytest.raises(ConcurrencySlotAcquisitionError,
                       match=r"'redis' names no concurrency backend: use in-process or kubernetes"):
        backends.current({"HEADWATER_CONCURRENCY_BACKEND": "redis"})


def test_the_plugin_gets_the_namespace_and_is_built_once_per_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    built: list[str | None] = []

    class EntryPoint:
        def load(self) -> Any:
            return lambda argument: built.append(argument) or object()

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group, name: [EntryPoint()]
                        if (group, name) == ("headwater.concurrency", "kubernetes") else [])
    backends.reset()
    try:
        env = {"HEADWATER_CONCURRENCY_BACKEND": "kubernetes", "HEADWATER_NAMESPACE": "data"}
        first = backends.current(env)
        assert backends.current(env) is first
        backends.current({"HEADWATER_CONCURRENCY_BACKEND": "kubernetes:other",
                          "HEADWATER_NAMESPACE": "data"})
        assert built == ["data", "other"]
    finally:
        backends.reset()
