"""x-kubernetes-list-type set and map uniqueness, as apiextensions-apiserver 1.32 checks it.

Cases after apiextensions-apiserver v0.32.9
``pkg/apiserver/schema/listtype/validation_test.go`` (which errors, at which paths); the
bodies follow ``field.Duplicate`` and ``field.Invalid``.
"""

from __future__ import annotations

from typing import Any

from headwater_dev.apiextensions.listtype import list_type_errors


def messages(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    return [error.message() for error in list_type_errors(schema, obj)]


def lists(**arrays: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": arrays}


SET = {"type": "array", "x-kubernetes-list-type": "set"}


def test_the_second_occurrence_of_each_repeated_set_item_is_reported_once() -> None:
    assert messages(lists(array=SET), {"array": ["a", "a", "b", "c", "d", "c"]}) == [
        'array[1]: Duplicate value: "a"', 'array[5]: Duplicate value: "c"']
    assert messages(lists(array=SET), {"array": ["a", "a", "a"]}) == [
        'array[1]: Duplicate value: "a"']
    assert messages(lists(array=SET), {"array": ["a", "b"]}) == []


def test_set_items_compare_by_go_type_scalars_and_by_json_compounds() -> None:
    assert messages(lists(array=SET), {"array": [1, 1.0, True]}) == []
    assert messages(lists(array=SET), {"array": [{"a": "b"}, {"a": "c"}, {"a": "b"}]}) == [
        'array[2]: Duplicate value: map[string]interface {}{"a":"b"}']
    assert messages(lists(array=SET), {"array": [[], [None], [None, None], [None]]}) == [
        "array[3]: Duplicate value: []interface {}{interface {}(nil)}"]
    assert messages(lists(array=SET), {"array": ["a", None, None]}) == [
        'array[2]: Duplicate value: "null"']


def test_lists_without_a_type_are_not_checked() -> None:
    assert messages(lists(array={"type": "array"}), {"array": ["a", "a"]}) == []
    assert messages({"type": "object"}, {"array": ["a", "a"]}) == []


def test_paths_through_additional_properties_and_items() -> None:
    schema = {"type": "object", "additionalProperties": SET}
    assert messages(schema, {"array": ["a", "b", "a"]}) == ['[array][2]: Duplicate value: "a"']
    nested = lists(array={"type": "array", "items": SET})
    assert messages(nested, {"array": [["a", "b", "a"], ["c", "c"]]}) == [
        'array[0][2]: Duplicate value: "a"', 'array[1][1]: Duplicate value: "c"']


MAP_ITEM = {"type": "object", "properties": {"a": {"type": "string"},
                                             "b": {"type": "string"},
                                             "c": {"type": "string"}}}


def map_list(*keys: str) -> dict[str, Any]:
    return {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": list(keys), "items": MAP_ITEM}


def test_map_list_keys_must_be_unique_and_the_duplicate_shows_the_key() -> None:
    obj = {"l": [{"a": "0", "c": "2"}, {"a": "1", "c": "1"}, {"a": "1", "c": "2"}, {}]}
    assert messages(lists(l=map_list("a")), obj) == [
        'l[2]: Duplicate value: map[string]interface {}{"a":"1"}']


def test_map_list_with_two_keys_and_an_undefined_key() -> None:
    obj = {"l": [{"a": "1", "b": "1", "c": "1"}, {"a": "1", "c": "2"},
                 {"a": "1", "c": "2", "b": "2"}, {"a": "1", "c": "2"}]}
    assert messages(lists(l=map_list("a", "c")), obj) == [
        'l[2]: Duplicate value: map[string]interface {}{"a":"1", "c":"2"}']
    missing = {"l": [{"b": "1"}, {"b": "2"}]}
    assert messages(lists(l=map_list("a")), missing) == [
        "l[1]: Duplicate value: map[string]interface {}{}"]


def test_map_list_items_must_be_objects() -> None:
    assert messages(lists(l=map_list("a")), {"l": ["x", {"a": "1"}]}) == [
        'l[0]: Invalid value: "x": must be an object for an array of list-type map']


def test_a_set_deep_below_plain_parts_is_still_checked() -> None:
    # Parts whose schema holds no set or map list are skipped; this one holds one, three
    # levels down, beside plain lists that may repeat values.
    schema = lists(
        plain={"type": "object", "properties": {"tags": {"type": "array"}}},
        deep={"type": "object", "additionalProperties": {"type": "array", "items": SET}})
    obj = {"plain": {"tags": ["a", "a"]}, "deep": {"k": [["x", "y"], ["z", "z"]]}}
    assert messages(schema, obj) == ['deep[k][1][1]: Duplicate value: "z"']
