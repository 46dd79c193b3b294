"""The store's copies: a caller never shares an object with the store, and merge patches
follow RFC 7386 without touching their arguments."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from headwater_dev.resources import BUILTIN_RESOURCES, ResourceSpec
from headwater_dev.store import ObjectStore, WatchEvent, merge_patch

WIDGETS = ResourceSpec("example.com", "v1", "widgets", "Widget", schema={
    "type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}},
            "limits": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}},
    status_subresource=True)


def widget_store() -> ObjectStore:
    store = ObjectStore([*BUILTIN_RESOURCES, WIDGETS])
    namespaces = next(s for s in BUILTIN_RESOURCES if s.plural == "namespaces")
    store.create(namespaces, None, {"metadata": {"name": "default"}})
    return store


# RFC 7386, Appendix A: (target, patch, result).
RFC_7386_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_7386_EXAMPLES)
def test_merge_patch_is_rfc_7386_and_changes_neither_argument(
        target: Any, patch: Any, result: Any) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    merged = merge_patch(target, patch)
    assert merged == result
    assert (target, patch) == (target_before, patch_before)


def test_a_merged_object_shares_nothing_with_the_target_or_the_patch() -> None:
    target = {"spec": {"tags": ["a"], "limits": {"cpu": "1"}}}
    patch = {"spec": {"limits": {"memory": "1Gi"}}, "extra": {"list": [{"k": "v"}]}}
    merged = merge_patch(target, patch)
    merged["spec"]["tags"].append("b")
    merged["spec"]["limits"]["cpu"] = "2"
    merged["extra"]["list"][0]["k"] = "changed"
    assert target == {"spec": {"tags": ["a"], "limits": {"cpu": "1"}}}
    assert patch == {"spec": {"limits": {"memory": "1Gi"}}, "extra": {"list": [{"k": "v"}]}}


def test_neither_a_created_object_nor_its_body_is_the_stored_one() -> None:
    store = widget_store()
    events: list[WatchEvent] = []
    store.subscribe(WIDGETS, events.append)
    body = {"metadata": {"name": "w"}, "spec": {"size": 1, "tags": ["a"]}}
    created = store.create(WIDGETS, "default", body)
    body["spec"]["tags"].append("from the body")
    created["spec"]["tags"].append("from the answer")
    stored = store.get(WIDGETS, "default", "w")
    assert stored["spec"]["tags"] == ["a"]
    assert events[0].object["spec"]["tags"] == ["a"]
    stored["spec"]["tags"].append("from a read")
    assert store.get(WIDGETS, "default", "w")["spec"]["tags"] == ["a"]


def test_a_patch_body_and_a_patched_answer_are_not_the_stored_object() -> None:
    store = widget_store()
    store.create(WIDGETS, "default", {"metadata": {"name": "w"}, "spec": {"size": 1}})
    patch = {"spec": {"limits": {"cpu": "1"}, "tags": ["x"]}}
    patched = store.patch(WIDGETS, "default", "w", "merge", patch)
    patch["spec"]["limits"]["cpu"] = "changed in the body"
    patch["spec"]["tags"].append("changed in the body")
    patched["spec"]["limits"]["cpu"] = "changed in the answer"
    status = {"status": {"phase": "Done"}}
    store.patch(WIDGETS, "default", "w", "merge", status, subresource="status")
    status["status"]["phase"] = "changed in the body"
    stored = store.get(WIDGETS, "default", "w")
    assert stored["spec"]["limits"] == {"cpu": "1"}
    assert stored["spec"]["tags"] == ["x"]
    assert stored["status"] == {"phase": "Done"}
