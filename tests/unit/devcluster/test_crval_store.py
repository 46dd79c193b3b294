"""The store decodes custom resources as apiextensions-apiserver 1.32 does on every write.

Unknown fields and unknown metadata fields are dropped, and metadata that cannot be
decoded into ObjectMeta is a 400 BadRequest worded as ``transformDecodeError`` words it.
"""

from __future__ import annotations

from typing import Any

import pytest
from headwater_dev.resources import BUILTIN_RESOURCES, ResourceSpec
from headwater_dev.store import ApiError, ObjectStore

WIDGETS = ResourceSpec("example.com", "v1", "widgets", "Widget", schema={
    "type": "object", "properties": {"spec": {"type": "object", "properties": {
        "size": {"type": "integer"}}}}})


def widget(**metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", **metadata}, "spec": {"size": 1, "colour": "red"}}


def widget_store() -> ObjectStore:
    """A store serving the built-in kinds and widgets, with the namespace ``default``."""
    store = ObjectStore([*BUILTIN_RESOURCES, WIDGETS])
    namespaces = next(s for s in BUILTIN_RESOURCES if s.plural == "namespaces")
    store.create(namespaces, None, {"metadata": {"name": "default"}})
    return store


def test_created_custom_resources_are_pruned_metadata_included() -> None:
    store = widget_store()
    created = store.create(WIDGETS, "default", widget(bogus=1, labels={}))
    assert created["spec"] == {"size": 1}
    assert "bogus" not in created["metadata"]
    assert "labels" not in created["metadata"]


def test_metadata_of_the_wrong_type_is_a_bad_request() -> None:
    store = widget_store()
    with pytest.raises(ApiError) as refused:
        store.create(WIDGETS, "default", widget(labels={"tier": 1}))
    assert (refused.value.code, refused.value.reason) == (400, "BadRequest")
    assert refused.value.message == (
        'Widget in version "v1" cannot be handled as a Widget: json: cannot unmarshal number '
        "into Go struct field ObjectMeta.labels of type string")
