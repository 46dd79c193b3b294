"""strategicmerge: apimachinery v0.32.9 pkg/util/strategicpatch/patch.go behaviour with the
pinned 1.32 OpenAPI's merge keys (the cases mirror patch_test.go's families)."""

from __future__ import annotations

from typing import Any

import pytest
from headwater_operator.strategicmerge import StrategicMergeError, apply_strategic_merge_patch

PODS = ("", "v1", "pods")


def base() -> dict[str, Any]:
    return {"metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x/a"]},
            "spec": {"containers": [{
                "name": "flow", "image": "i:1",
                "ports": [{"containerPort": 80, "name": "http"}],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}],
                "tolerations": [{"key": "t", "operator": "Exists"}]}}


def patch(body: dict[str, Any]) -> dict[str, Any]:
    return apply_strategic_merge_patch(PODS, base(), body)


def test_a_port_merges_by_container_port() -> None:
    result = patch({"spec": {"containers": [
        {"name": "flow", "ports": [{"containerPort": 80, "protocol": "UDP"}]}]}})
    assert result["spec"]["containers"][0]["ports"] == [
        {"containerPort": 80, "name": "http", "protocol": "UDP"}]


def test_delete_directive_and_null_remove() -> None:
    result = patch({"metadata": {"labels": {"a": None}}, "spec": {"containers": [
        {"name": "flow", "env": [{"name": "A", "$patch": "delete"}]}]}})
    assert result["metadata"]["labels"] == {}
    assert result["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]


def test_replace_directive_and_replace_strategy() -> None:
    result = patch({"spec": {"containers": [{"name": "flow", "env": [
        {"$patch": "replace"}, {"name": "C", "value": "3"}]}],
        "tolerations": [{"key": "u", "operator": "Exists"}]}})
    assert result["spec"]["containers"][0]["env"] == [{"name": "C", "value": "3"}]
    assert result["spec"]["tolerations"] == [{"key": "u", "operator": "Exists"}]


def test_primitive_lists_union_and_delete_from_primitive_list() -> None:
    assert patch({"metadata": {"finalizers": ["x/b"]}})["metadata"]["finalizers"] == [
        "x/b", "x/a"]
    assert patch({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/a"]}})[
        "metadata"]["finalizers"] == []


def test_set_element_order() -> None:
    result = patch({"spec": {"$setElementOrder/containers": [{"name": "flow"}, {"name": "s"}],
                             "containers": [{"name": "s", "image": "s"}]}})
    assert [c["name"] for c in result["spec"]["containers"]] == ["flow", "s"]


def test_errors_carry_the_api_server_status_code() -> None:
    with pytest.raises(StrategicMergeError) as missing_key:
        patch({"spec": {"containers": [{"image": "x"}]}})
    assert missing_key.value.message == (
        "map: map[image:x] does not contain declared merge key: name")
    with pytest.raises(StrategicMergeError) as retain:
        patch({"metadata": {"$retainKeys": ["name"], "labels": {}}})
    assert (retain.value.code, retain.value.message) == (
        400, "invalid patch format of retainKeys")
    with pytest.raises(KeyError):
        apply_strategic_merge_patch(("headwater.dev", "v1", "flows"), {}, {})
