"""The emulated API server's ``generateName``: unique names, drawn again on a collision."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from headwater_operator.devcluster.resources import ResourceSpec, default_resources
from headwater_operator.devcluster.store import (
    GENERATE_NAME_ATTEMPTS,
    NAME_SUFFIX_ALPHABET,
    ApiError,
    ObjectStore,
    random_name_suffix,
)

EVENT = {"involvedObject": {"kind": "FlowRun", "name": "r"}, "reason": "Started"}


def _events_spec() -> ResourceSpec:
    return next(s for s in default_resources() if s.plural == "events" and s.group == "")


def _store(suffixes: Iterator[str]) -> ObjectStore:
    return ObjectStore(default_resources(), name_suffix=lambda: next(suffixes))


def test_suffix_uses_the_api_servers_alphabet() -> None:
    suffix = random_name_suffix()
    assert len(suffix) == 5
    assert set(suffix) <= set(NAME_SUFFIX_ALPHABET)


def test_a_taken_generated_name_is_drawn_again() -> None:
    store = _store(iter(["bbbbb", "bbbbb", "ccccc"]))
    spec = _events_spec()
    first = store.create(spec, "ns", {**EVENT, "metadata": {"generateName": "kopf-event-"}})
    second = store.create(spec, "ns", {**EVENT, "metadata": {"generateName": "kopf-event-"}})
    assert first["metadata"]["name"] == "kopf-event-bbbbb"
    assert second["metadata"]["name"] == "kopf-event-ccccc"


def test_generate_name_gives_up_with_already_exists_after_its_attempts() -> None:
    store = _store(iter(["bbbbb"] * (GENERATE_NAME_ATTEMPTS + 1)))
    spec = _events_spec()
    store.create(spec, "ns", {**EVENT, "metadata": {"generateName": "e-"}})
    with pytest.raises(ApiError) as caught:
        store.create(spec, "ns", {**EVENT, "metadata": {"generateName": "e-"}})
    assert caught.value.code == 409
    assert "retry the create" in str(caught.value)


def test_a_long_prefix_is_cut_so_the_name_fits_63_characters() -> None:
    store = _store(iter(["bbbbb"]))
    created = store.create(_events_spec(), "ns",
                           {**EVENT, "metadata": {"generateName": "x" * 80}})
    assert created["metadata"]["name"] == "x" * 58 + "bbbbb"
