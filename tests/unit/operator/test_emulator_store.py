"""The emulated API server's store: ``generateName`` (unique names, drawn again on a
collision) and paged lists (``limit``/``continue``, their errors, an expired token)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from headwater_dev.resources import ResourceSpec, default_resources
from headwater_dev.store import (
    GENERATE_NAME_ATTEMPTS,
    NAME_SUFFIX_ALPHABET,
    ApiError,
    ObjectStore,
    random_name_suffix,
)

EVENT = {"involvedObject": {"kind": "FlowRun", "name": "r", "namespace": "ns"},
         "reason": "Started"}


def _events_spec() -> ResourceSpec:
    return next(s for s in default_resources() if s.plural == "events" and s.group == "")


def _with_namespace(store: ObjectStore, name: str = "ns") -> ObjectStore:
    """``store`` with the namespace objects are created in (the API server refuses creates
    in a namespace that does not exist)."""
    namespaces = next(s for s in default_resources() if s.plural == "namespaces")
    store.create(namespaces, None, {"metadata": {"name": name}})
    return store


def _store(suffixes: Iterator[str]) -> ObjectStore:
    return _with_namespace(ObjectStore(default_resources(), name_suffix=lambda: next(suffixes)))


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


# --- paged lists (limit / continue) -----------------------------------------------------
def _configmaps_spec() -> ResourceSpec:
    return next(s for s in default_resources() if s.plural == "configmaps" and s.group == "")


def _store_with_configmaps(count: int, **options: Any) -> tuple[ObjectStore, ResourceSpec]:
    store = _with_namespace(ObjectStore(default_resources(), **options))
    spec = _configmaps_spec()
    for index in reversed(range(count)):  # stored out of order: the list sorts
        store.create(spec, "ns", {"metadata": {"name": f"c{index}"}})
    return store, spec


def test_a_paged_list_returns_every_object_once_in_order_with_the_first_pages_version(
) -> None:
    store, spec = _store_with_configmaps(5)
    pages: list[list[str]] = []
    versions: list[int] = []
    token: str | None = None
    while True:
        items, rv, token = store.list_objects(spec, "ns", limit=2, continue_token=token)
        pages.append([item["metadata"]["name"] for item in items])
        versions.append(rv)
        if token is None:
            break
        # A write between pages: later pages still report the first page's version.
        store.patch(spec, "ns", "c4", "merge", {"data": {"page": str(len(pages))}})
    assert pages == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert versions == [versions[0]] * 3
    assert versions[0] < store.resource_version
    assert items[0]["data"] == {"page": "2"}  # objects show their current state


def test_without_a_limit_a_list_is_unpaged() -> None:
    store, spec = _store_with_configmaps(3)
    items, rv, token = store.list_objects(spec, "ns")
    assert [item["metadata"]["name"] for item in items] == ["c0", "c1", "c2"]
    assert token is None
    assert store.list_objects(spec, "ns") == (items, rv, None)
    items, _, token = store.list_objects(spec, "ns", limit="3")
    assert len(items) == 3
    assert token is None  # exactly one page: nothing remains


@pytest.mark.parametrize("limit", ["0", "-2", "ten", 0])
def test_a_limit_that_is_not_a_positive_integer_is_bad_request(limit: int | str) -> None:
    store, spec = _store_with_configmaps(1)
    with pytest.raises(ApiError) as caught:
        store.list_objects(spec, "ns", limit=limit)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert "limit" in caught.value.message


@pytest.mark.parametrize("token", ["not a token", "eyJydiI6IDF9", "W10="])
def test_a_continue_token_that_does_not_decode_is_bad_request(token: str) -> None:
    store, spec = _store_with_configmaps(1)
    with pytest.raises(ApiError) as caught:
        store.list_objects(spec, "ns", limit=1, continue_token=token)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert "continue" in caught.value.message


def test_a_continue_token_older_than_the_compacted_history_is_gone() -> None:
    store, spec = _store_with_configmaps(3, history_limit=3)
    _, _, token = store.list_objects(spec, "ns", limit=1)
    assert token is not None
    for index in range(3):
        store.patch(spec, "ns", "c0", "merge", {"data": {"k": str(index)}})
    # The history (3 events) still reaches back to the token's version: served.
    assert store.list_objects(spec, "ns", limit=1, continue_token=token)[0]
    store.patch(spec, "ns", "c0", "merge", {"data": {"k": "compacted"}})
    with pytest.raises(ApiError) as caught:
        store.list_objects(spec, "ns", limit=1, continue_token=token)
    assert (caught.value.code, caught.value.reason) == (410, "Expired")


def _configmaps() -> ResourceSpec:
    return next(s for s in default_resources() if s.plural == "configmaps")


def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"]}


def test_the_garbage_collector_follows_owner_references_as_they_change() -> None:
    """Its graph of owners is kept at every write: a dependent re-owned by a patch goes
    with its new owner, not its old one; one owned twice goes with the last of them."""
    store = _with_namespace(ObjectStore(default_resources()))
    spec = _configmaps()
    first = store.create(spec, "ns", {"metadata": {"name": "first"}})
    second = store.create(spec, "ns", {"metadata": {"name": "second"}})
    store.create(spec, "ns", {"metadata": {"name": "moved",
                                           "ownerReferences": [_owner_ref(first)]}})
    store.create(spec, "ns", {"metadata": {"name": "shared", "ownerReferences": [
        _owner_ref(first), _owner_ref(second)]}})
    store.patch(spec, "ns", "moved", "merge",
                {"metadata": {"ownerReferences": [_owner_ref(second)]}})

    def names() -> set[str]:
        return {obj["metadata"]["name"] for obj in store.list_objects(spec, "ns")[0]}

    store.delete(spec, "ns", "first")
    assert names() == {"second", "moved", "shared"}
    store.delete(spec, "ns", "second")
    assert names() == set()
