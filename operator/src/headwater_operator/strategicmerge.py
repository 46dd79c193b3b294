"""Strategic merge patch, as the Kubernetes API server applies it to built-in objects.

A strategic merge patch is a JSON merge patch (RFC 7386: objects merge key by key,
``null`` deletes) in which each list field follows its Go type's patch strategy, published
in the OpenAPI as ``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``:

* ``merge`` with a merge key (``containers`` by ``name``, ``volumeMounts`` by
  ``mountPath``, ``ports`` by ``containerPort``, ``env`` by ``name``): entries with the
  same key merge recursively, new ones are added; ``merge`` without a key (``finalizers``)
  unions scalar lists;
* no strategy (``tolerations``, ``command``, ``args``): the patch's list replaces the
  object's;
* directives: ``{"$patch": "replace"}`` (a map or list entry: replace instead of merge),
  ``{"$patch": "delete"}`` (a map: delete it; a list entry: delete the entry with that
  merge key), ``$setElementOrder/<list>`` (the order of a merged list),
  ``$deleteFromPrimitiveList/<list>`` (delete scalars from a merged list),
  ``$retainKeys`` (``retainKeys`` strategy: keep only the listed keys).

This module follows the behaviour of apimachinery v0.32.9
``pkg/util/strategicpatch/patch.go`` (``StrategicMergeMapPatchUsingLookupPatchMeta`` →
``mergeMap``, ``mergeSlice``, ``mergePatchIntoOriginal``, ``applyRetainKeysDirective``,
``normalizeElementOrder``) with the patch metadata of the pinned Kubernetes 1.32 OpenAPI
(:mod:`headwater_operator.k8sopenapi`) instead of Go struct tags, and words its errors as
``pkg/util/mergepatch/errors.go`` and ``third_party/forked/golang/json/fields.go`` do.
It is the operator's too: ``Deployment.spec.runTemplate.podOverrides`` is applied with it
(``flowruns/render.py``), so it must not import the emulator.

Not reproduced: Go's ``%v`` rendering of whole maps inside a few error messages
(``ErrNoMergeKey``, ``ErrBadPatchType``) prints Python-sorted ``map[k:v]`` text, which
matches Go's for flat maps only; numbers that differ only in int/float type compare as
Go compares them (``1`` is not ``1.0``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from headwater_operator import k8sopenapi

DIRECTIVE: Final = "$patch"
DELETE: Final = "delete"
REPLACE: Final = "replace"
MERGE: Final = "merge"
RETAIN_KEYS_STRATEGY: Final = "retainKeys"
DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList"
RETAIN_KEYS: Final = "$retainKeys"
SET_ELEMENT_ORDER: Final = "$setElementOrder"

# mergepatch/errors.go: the errors the API server answers 400 for, and 422 for
# (handlers/patch.go interpretStrategicMergePatchError); anything else is a 500.
ERR_BAD_JSON_DOC: Final = "invalid JSON document"
ERR_NO_LIST_OF_LISTS: Final = "lists of lists are not supported"
ERR_BAD_PRIMITIVE_LIST: Final = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS: Final = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER: Final = "invalid patch format of setElementOrder list"
ERR_NOT_MATCH_RETAIN_KEYS: Final = "patch content doesn't match retainKeys list"
_BAD_REQUEST: Final = frozenset({ERR_BAD_JSON_DOC, ERR_BAD_PRIMITIVE_LIST, ERR_BAD_RETAIN_KEYS,
                                 ERR_BAD_SET_ELEMENT_ORDER})
_UNPROCESSABLE: Final = frozenset({ERR_NO_LIST_OF_LISTS, ERR_NOT_MATCH_RETAIN_KEYS})


class StrategicMergeError(ValueError):
    """A patch that cannot be applied; ``code`` is the HTTP status the API server answers
    (400 for malformed directives, 422 for unsupported shapes, 500 otherwise)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        if message in _BAD_REQUEST:
            self.code = 400
        elif message in _UNPROCESSABLE:
            self.code = 422
        else:
            self.code = 500


# --- patch metadata from the OpenAPI ----------------------------------------------------
@dataclass(frozen=True)
class PatchMeta:
    """The schema a value is merged with, and the strategy of the field holding it."""

    schema: Mapping[str, Any] | None
    """``None``: free-form (no schema), merged as plain JSON with no list strategy."""
    name: str = ""
    strategies: tuple[str, ...] = ()
    merge_key: str = ""

    def for_struct(self, key: str) -> PatchMeta:
        """``LookupPatchMetadataForStruct``: the metadata of field ``key`` of this struct."""
        if self.schema is None:
            return PatchMeta(None)
        properties = self.schema.get("properties")
        if properties is None:
            if "additionalProperties" in self.schema:
                raise StrategicMergeError(
                    "merging an object in json but data type is not struct, instead is: map")
            return PatchMeta(None)
        field = properties.get(key)
        if field is None:
            # encoding/json falls back to a case-insensitive match of the field name.
            field = next((value for name, value in properties.items()
                          if name.lower() == key.lower()), None)
        if field is None:
            raise StrategicMergeError(
                f"unable to find api field in struct {self.name} for the json field "
                f"{_go_quote(key)}")
        return _meta_of_field(field)

    def for_slice(self, key: str) -> PatchMeta:
        """``LookupPatchMetadataForSlice``: the element metadata of list field ``key``."""
        field = self.for_struct(key)
        if field.schema is None:
            return field
        items = field.schema.get("items")
        element = _meta_of(items) if isinstance(items, Mapping) else PatchMeta(None)
        return PatchMeta(element.schema, element.name, field.strategies, field.merge_key)

    def strategy(self) -> str:
        """``extractRetainKeysPatchStrategy``: the strategy other than ``retainKeys``."""
        strategies = [s for s in self.strategies if s]
        if len(strategies) > 2 or (len(strategies) == 2
                                   and RETAIN_KEYS_STRATEGY not in strategies):
            raise StrategicMergeError(f"unexpected patch strategy: [{' '.join(strategies)}]")
        others = [s for s in strategies if s != RETAIN_KEYS_STRATEGY]
        return others[0] if others else ""


def _meta_of(schema: Mapping[str, Any]) -> PatchMeta:
    name = k8sopenapi.ref_name(schema)
    resolved = k8sopenapi.resolve(schema)
    free_form = "properties" not in resolved and "additionalProperties" not in resolved
    return PatchMeta(None if free_form and resolved.get("type") != "array" else resolved,
                     _go_name(name) if name else "")


def _meta_of_field(field: Mapping[str, Any]) -> PatchMeta:
    meta = _meta_of(field)
    strategies = str(field.get("x-kubernetes-patch-strategy") or "").split(",")
    return PatchMeta(meta.schema, meta.name, tuple(strategies),
                     str(field.get("x-kubernetes-patch-merge-key") or ""))


def _go_name(definition: str) -> str:
    return definition.rsplit(".", 1)[-1]


def meta_for_definition(definition: str) -> PatchMeta:
    """The root metadata of an object of the named definition."""
    return PatchMeta(k8sopenapi.definitions()[definition], _go_name(definition))


# --- public entry points -----------------------------------------------------------------
def apply_strategic_merge_patch(kind_key: k8sopenapi.KindKey, obj: Mapping[str, Any],
                                patch: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` patched by ``patch`` with the merge strategies of built-in ``kind_key``
    (group, version, plural); raises :class:`StrategicMergeError` (and ``KeyError`` for a
    kind the pinned OpenAPI does not know: custom resources take no strategic patches)."""
    definition = k8sopenapi.definition_name(kind_key)
    if definition is None:
        raise KeyError(f"no pinned OpenAPI definition for {kind_key}")
    return strategic_merge(definition, obj, patch)


def strategic_merge(definition: str, obj: Mapping[str, Any],
                    patch: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` (an object of OpenAPI definition ``definition``) patched by ``patch``.

    Neither argument is modified. ``StrategicMergeMapPatchUsingLookupPatchMeta``: the
    server's options (``MergeParallelList``, ``IgnoreUnmatchedNulls``).
    """
    if not isinstance(patch, Mapping):
        raise StrategicMergeError(ERR_BAD_JSON_DOC)
    return _merge_map(copy.deepcopy(dict(obj)), copy.deepcopy(dict(patch)),
                      meta_for_definition(definition))


# --- mergeMap ------------------------------------------------------------------------------
def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any],
               meta: PatchMeta) -> dict[str, Any]:
    if DIRECTIVE in patch:
        return _map_directive(patch[DIRECTIVE], patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_set_element_orders(original, patch, meta)
    for patch_key, patch_value in list(patch.items()):
        key = patch_key
        is_delete_list = patch_key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if is_delete_list:
            key = _extract_key(patch_key, DELETE_FROM_PRIMITIVE_LIST)
        if patch_value is None:
            original.pop(key, None)
            continue
        if key not in original:
            if not is_delete_list:
                _set_without_directives(original, key, _discard_nulls(patch_value))
            continue
        current = original[key]
        if type(current) is not type(patch_value):
            if not is_delete_list:
                _set_without_directives(original, key, _discard_nulls(patch_value))
            continue
        if isinstance(current, dict):
            field = meta.for_struct(key)
            original[key] = _merge_map_field(current, patch_value, field)
        elif isinstance(current, list):
            field = meta.for_slice(key)
            original[key] = _merge_slice_field(current, patch_value, field, is_delete_list)
        else:
            _set_without_directives(original, key, patch_value)
    return original


def _map_directive(directive: Any, patch: dict[str, Any]) -> dict[str, Any]:
    """``handleDirectiveInMergeMap``."""
    if directive == REPLACE:
        del patch[DIRECTIVE]
        return patch
    if directive == DELETE:
        return {}
    raise StrategicMergeError(f"unknown patch type: {_go_value(directive)} in map: "
                              f"{_go_value(patch)}")


def _merge_map_field(original: dict[str, Any], patch: dict[str, Any],
                     field: PatchMeta) -> dict[str, Any]:
    """``mergeMapHandler``."""
    if field.strategy() == REPLACE:
        return patch
    return _merge_map(original, patch, field)


def _merge_slice_field(original: list[Any], patch: list[Any], field: PatchMeta,
                       is_delete_list: bool) -> list[Any]:
    """``mergeSliceHandler``: only ``merge`` lists (and delete lists) merge."""
    if field.strategy() == MERGE or is_delete_list:
        return _merge_slice(original, patch, field, is_delete_list)
    return patch


def _set_without_directives(target: dict[str, Any], key: str, value: Any) -> None:
    kept, keep = _remove_directives(value)
    if keep:
        target[key] = kept
    else:
        target.pop(key, None)


def _remove_directives(value: Any) -> tuple[Any, bool]:
    """``removeDirectives``: a map with ``$patch`` vanishes, recursively."""
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return None, False
        for key in list(value):
            kept, keep = _remove_directives(value[key])
            if keep:
                value[key] = kept
            else:
                del value[key]
        return value, True
    if isinstance(value, list):
        return [kept for kept, keep in map(_remove_directives, value) if keep], True
    return value, True


def _discard_nulls(value: Any) -> Any:
    """``discardNullValuesFromPatch``: a new value takes no ``null`` keys."""
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for nested in value.values():
            _discard_nulls(nested)
    elif isinstance(value, list):
        for nested in value:
            _discard_nulls(nested)
    return value


def _extract_key(key: str, prefix: str) -> str:
    """``extractKey``: ``$setElementOrder/containers`` → ``containers``."""
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise StrategicMergeError(ERR_BAD_PRIMITIVE_LIST if prefix == DELETE_FROM_PRIMITIVE_LIST
                                  else ERR_BAD_SET_ELEMENT_ORDER)
    return rest


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``applyRetainKeysDirective``: clear what ``$retainKeys`` does not list."""
    if RETAIN_KEYS not in patch:
        return
    retained = patch.pop(RETAIN_KEYS)
    if not isinstance(retained, list):
        raise StrategicMergeError(ERR_BAD_RETAIN_KEYS)
    keep = [k for k in retained if isinstance(k, str)]
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in keep:
            raise StrategicMergeError(ERR_BAD_RETAIN_KEYS)
    for key in [k for k in original if k not in keep]:
        del original[key]


# --- $setElementOrder ---------------------------------------------------------------------
def _merge_set_element_orders(original: dict[str, Any], patch: dict[str, Any],
                              meta: PatchMeta) -> None:
    """``mergePatchIntoOriginal``: merge each ordered list and put it in the given order."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise StrategicMergeError(
                f"expected a []interface {{}}, but received a {_go_type(order)}")
        list_key = _extract_key(key, SET_ELEMENT_ORDER)
        found_original, found_patch = list_key in original, list_key in patch
        current, patched = original.get(list_key), patch.get(list_key)
        for value in (current if found_original else [], patched if found_patch else []):
            if not isinstance(value, list):
                raise StrategicMergeError(
                    f"expected a []interface {{}}, but received a {_go_type(value)}")
        field = meta.for_slice(list_key)
        field.strategy()  # an unexpected strategy fails before anything merges
        _validate_set_element_order(patched or [], order, field.merge_key)
        if found_original and not found_patch:
            merged = list(current or [])
        elif found_patch and not found_original:
            merged = _remove_directives(patched)[0]
        elif found_original and found_patch:
            merged = _merge_slice_field(current or [], patched or [], field, False)
        else:
            continue
        element = _slice_element_type(current or [], patched or [])
        if field.merge_key:
            in_patch, server_only = _partition_maps(merged, order, field.merge_key)
        else:
            in_patch, server_only = _partition_primitives(merged, order)
        original[list_key] = _normalize_element_order(
            in_patch, server_only, order, current or [], merge_key=field.merge_key,
            element=element)
        patch.pop(list_key, None)


def _validate_set_element_order(patch_list: list[Any], order: list[Any],
                                merge_key: str) -> None:
    """``validatePatchWithSetOrderList``: the patch's items in the order's order."""
    if not order or not patch_list:
        return
    items = _extract_to_delete_items(patch_list)[0] if merge_key else patch_list
    patch_index = order_index = 0
    while patch_index < len(items) and order_index < len(order):
        if isinstance(items[patch_index], dict) and DIRECTIVE in items[patch_index]:
            patch_index += 1
            continue
        if _merge_key_equal(items[patch_index], order[order_index], merge_key):
            patch_index += 1
        order_index += 1
    if patch_index < len(items) and order_index >= len(order):
        raise StrategicMergeError(
            f"The order in patch list:\n{_go_value(patch_list)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{_go_value(order)}\n")


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for side in (left, right):
        if not isinstance(side, dict):
            raise StrategicMergeError(
                f"expected a map[string]interface {{}}, but received a {_go_type(side)}")
        if merge_key not in side:
            raise StrategicMergeError(_no_merge_key(side, merge_key))
    return _same(left[merge_key], right[merge_key])


# --- mergeSlice -------------------------------------------------------------------------------
def _merge_slice(original: list[Any], patch: list[Any], field: PatchMeta,
                 is_delete_list: bool) -> list[Any]:
    if not original and not patch:
        return original
    element = _slice_element_type(original, patch)
    merge_key = field.merge_key
    if element is not dict:
        if is_delete_list:
            return [v for v in original if not any(_same(v, d) for d in patch)]
        merged = _deduplicate_scalars(original + patch)
        in_patch, server_only = _partition_primitives(merged, patch)
        return _normalize_element_order(in_patch, server_only, patch, original, merge_key="",
                                        element=element)
    if not merge_key:
        raise StrategicMergeError(f"cannot merge lists without merge key for {field.name}")
    # As in Go, the directives leave a new original (entries deleted, or the replacement)
    # and a new patch (its plain entries; none after a replace) for all that follows.
    original, patch = _apply_list_directives(original, patch, merge_key)
    merged = _merge_by_key(original, patch, merge_key, field)
    in_patch, server_only = _partition_maps(merged, patch, merge_key)
    return _normalize_element_order(in_patch, server_only, patch, original,
                                    merge_key=merge_key, element=element)


def _apply_list_directives(original: list[Any], patch: list[Any],
                           merge_key: str) -> tuple[list[Any], list[Any]]:
    """``mergeSliceWithSpecialElements``: ``$patch: delete`` entries and ``replace``."""
    plain = []
    replace = False
    for item in patch:
        directive = item.get(DIRECTIVE, _MISSING)
        if directive is _MISSING:
            plain.append(item)
        elif directive == DELETE:
            if merge_key not in item:
                raise StrategicMergeError(_no_merge_key(item, merge_key))
            original = [entry for entry in original
                        if not _same(entry.get(merge_key, _MISSING), item[merge_key])]
        elif directive == REPLACE:
            replace = True
        elif directive == MERGE:
            raise StrategicMergeError("merging lists cannot yet be specified in the patch")
        else:
            raise StrategicMergeError(f"unknown patch type: {_go_value(directive)} in map: "
                                      f"{_go_value(item)}")
    if replace:
        return plain, []
    return original, plain


def _merge_by_key(original: list[Any], patch: list[Any], merge_key: str,
                  field: PatchMeta) -> list[Any]:
    """``mergeSliceWithoutSpecialElements``."""
    merged = list(original)
    for item in patch:
        if merge_key not in item:
            raise StrategicMergeError(_no_merge_key(item, merge_key))
        index = _find_by_key(merged, merge_key, item[merge_key])
        if index is None:
            merged.append(item)
        else:
            merged[index] = _merge_map(merged[index], item, field)
    return merged


def _find_by_key(items: list[Any], merge_key: str, value: Any) -> int | None:
    """``findMapInSliceBasedOnKeyValue``."""
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise StrategicMergeError(f"value for key {index} is not a map")
        if merge_key in item and _same(item[merge_key], value):
            return index
    return None


def _deduplicate_scalars(values: list[Any]) -> list[Any]:
    """``deduplicateScalars``: Go's swap-with-last de-duplication (its order matters)."""
    values = list(values)
    last = len(values) - 1
    i = 0
    while i < last:
        j = i + 1
        while j <= last:
            if _same(values[i], values[j]):
                values[j] = values[last]
                values = values[:last]
                last -= 1
                j -= 1
            j += 1
        i += 1
    return values


def _slice_element_type(*lists: list[Any]) -> type:
    """``sliceElementType``: every element of the same JSON type, and no nested list."""
    found: type | None = None
    for items in lists:
        for item in items:
            current = type(item)
            if found is None:
                if current is list:
                    raise StrategicMergeError(ERR_NO_LIST_OF_LISTS)
                found = current
            elif current is not found:
                raise StrategicMergeError(
                    "list element types are not identical: "
                    + _go_value([list(items) for items in lists]))
    if found is None:
        raise StrategicMergeError("no elements in any of the given slices")
    return found


# --- ordering (normalizeElementOrder) ---------------------------------------------------------
def _partition_primitives(items: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    in_by = [v for v in items if any(_same(v, b) for b in by)]
    rest = [v for v in items if not any(_same(v, b) for b in by)]
    return in_by, rest


def _partition_maps(items: list[Any], by: list[Any],
                    merge_key: str) -> tuple[list[Any], list[Any]]:
    in_by: list[Any] = []
    rest: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            raise StrategicMergeError(
                f"expected a map[string]interface {{}}, but received a {_go_type(item)}")
        if merge_key not in item:
            raise StrategicMergeError(_no_merge_key(item, merge_key))
        found = _find_by_key(by, merge_key, item[merge_key]) is not None
        (in_by if found else rest).append(item)
    return in_by, rest


def _index(items: list[Any], value: Any, merge_key: str, element: type) -> int:
    def key_of(item: Any) -> Any:
        if element is dict:
            return item.get(merge_key) if isinstance(item, dict) else None
        return item

    wanted = key_of(value)
    for position, item in enumerate(items):
        if _same(wanted, key_of(item)):
            return position
    return -1


def _extract_to_delete_items(items: list[Any]) -> tuple[list[Any], list[Any]]:
    keep: list[Any] = []
    delete: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            raise StrategicMergeError(
                f"expected a map[string]interface {{}}, but received a {_go_type(item)}")
        (delete if item.get(DIRECTIVE) == DELETE else keep).append(item)
    return keep, delete


def _normalize_slice_order(items: list[Any], order: list[Any], merge_key: str,
                           element: type) -> list[Any]:
    deleted: list[Any] = []
    if element is dict:
        for entry in [*items, *order]:
            if not isinstance(entry, dict) or merge_key not in entry:
                raise StrategicMergeError(_no_merge_key(entry, merge_key)
                                          if isinstance(entry, dict) else
                                          f"expected a map[string]interface {{}}, but "
                                          f"received a {_go_type(entry)}")
        items, deleted = _extract_to_delete_items(items)

    def less(a: Any, b: Any) -> bool:
        ia = _index(order, a, merge_key, element)
        if ia >= 0:
            ib = _index(order, b, merge_key, element)
            if ib >= 0:
                return ia < ib
        return True

    items = list(items)
    _go_stable_sort(items, less)
    return items + deleted


def _normalize_element_order(in_patch: list[Any], server_only: list[Any],
                             patch_order: list[Any], server_order: list[Any], *,
                             merge_key: str, element: type) -> list[Any]:
    """``normalizeElementOrder`` + ``mergeSortedSlice``: patch items in the patch's order,
    server-only items interleaved where the live object had them."""
    right = _normalize_slice_order(in_patch, patch_order, merge_key, element)
    left = _normalize_slice_order(server_only, server_order, merge_key, element)

    def before(a: Any, b: Any) -> bool:
        ia = _index(server_order, a, merge_key, element)
        ib = _index(server_order, b, merge_key, element)
        return ia >= 0 and ib >= 0 and ia < ib

    merged: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            merged.append(right[j])
            j += 1
        elif j >= len(right) or before(left[i], right[j]):
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged


def _go_stable_sort(items: list[Any], less: Callable[[Any, Any], bool]) -> None:
    """Go's ``sort.SliceStable`` (insertion sort in blocks of 20, then ``symMerge``): the
    patch code's ``less`` is not a strict order, so only Go's exact steps give Go's order."""
    n = len(items)
    block = 20
    a, b = 0, block
    while b <= n:
        _insertion_sort(items, a, b, less)
        a, b = b, b + block
    _insertion_sort(items, a, n, less)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            _sym_merge(items, a, a + block, b, less)
            a, b = b, b + 2 * block
        if a + block < n:
            _sym_merge(items, a, a + block, n, less)
        block *= 2


def _insertion_sort(items: list[Any], a: int, b: int, less: Callable[[Any, Any], bool]) -> None:
    for i in range(a + 1, b):
        j = i
        while j > a and less(items[j], items[j - 1]):
            items[j], items[j - 1] = items[j - 1], items[j]
            j -= 1


def _sym_merge(items: list[Any], a: int, m: int, b: int,
               less: Callable[[Any, Any], bool]) -> None:
    if m - a == 1:
        i, j = m, b
        while i < j:
            h = (i + j) >> 1
            if less(items[h], items[a]):
                i = h + 1
            else:
                j = h
        for k in range(a, i - 1):
            items[k], items[k + 1] = items[k + 1], items[k]
        return
    if b - m == 1:
        i, j = a, m
        while i < j:
            h = (i + j) >> 1
            if not less(items[m], items[h]):
                i = h + 1
            else:
                j = h
        for k in range(m, i, -1):
            items[k], items[k - 1] = items[k - 1], items[k]
        return
    mid = (a + b) >> 1
    n = mid + m
    start, r = (n - b, mid) if m > mid else (a, m)
    p = n - 1
    while start < r:
        c = (start + r) >> 1
        if not less(items[p - c], items[c]):
            start = c + 1
        else:
            r = c
    end = n - start
    if start < m < end:
        _rotate(items, start, m, end)
    if a < start < mid:
        _sym_merge(items, a, start, mid, less)
    if mid < end < b:
        _sym_merge(items, mid, end, b, less)


def _rotate(items: list[Any], a: int, m: int, b: int) -> None:
    i, j = m - a, b - m
    while i != j:
        if i > j:
            _swap_range(items, m - i, m, j)
            i -= j
        else:
            _swap_range(items, m - i, m + j - i, i)
            j -= i
    _swap_range(items, m - i, m, i)


def _swap_range(items: list[Any], a: int, b: int, n: int) -> None:
    for i in range(n):
        items[a + i], items[b + i] = items[b + i], items[a + i]


# --- Go's equality and formatting -----------------------------------------------------------
_MISSING: Final = object()


def _same(left: Any, right: Any) -> bool:
    """Go's ``==`` on decoded JSON values: the same dynamic type and value."""
    return type(left) is type(right) and bool(left == right)


def _no_merge_key(item: Mapping[str, Any], merge_key: str) -> str:
    """``mergepatch.ErrNoMergeKey``."""
    return f"map: {_go_value(item)} does not contain declared merge key: {merge_key}"


def _go_type(value: Any) -> str:
    """``reflect.TypeOf`` of a decoded JSON value, as ``%s`` prints it."""
    if value is None:
        return "%!s(<nil>)"
    return {dict: "map[string]interface {}", list: "[]interface {}", str: "string",
            bool: "bool", int: "int64", float: "float64"}.get(type(value), type(value).__name__)


def _go_value(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON value (maps print with sorted keys, as Go does)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_value(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    return str(value)


def _go_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


__all__ = [
    "PatchMeta",
    "StrategicMergeError",
    "apply_strategic_merge_patch",
    "meta_for_definition",
    "strategic_merge",
]
