"""A custom resource's metadata round-tripped through ObjectMeta, as apiextensions 1.32 does.

After apiextensions-apiserver v0.32.9 ``pkg/apiserver/schema/objectmeta/algorithm.go``
(``GetObjectMetaWithOptions``/``SetObjectMeta``), Go's ``encoding/json``
``UnmarshalTypeError`` wording and ``time.Parse`` with ``time.RFC3339``.
"""

from __future__ import annotations

from typing import Any

import pytest
from headwater_dev.apiextensions.objectmeta import (
    MetadataDecodeError,
    decode_object_meta,
)


def refusal(metadata: Any) -> str:
    with pytest.raises(MetadataDecodeError) as refused:
        decode_object_meta(metadata)
    return str(refused.value)


def test_omitempty_fields_disappear_and_known_ones_stay() -> None:
    decoded = decode_object_meta({
        "name": "a", "namespace": "", "generation": 0, "labels": {}, "annotations": None,
        "finalizers": [], "deletionGracePeriodSeconds": 0, "uid": "u",
        "managedFields": [{"manager": "m", "operation": "Update", "fieldsV1": {"f:x": {}},
                           "time": None}]})
    assert decoded.meta == {
        "name": "a", "deletionGracePeriodSeconds": 0, "uid": "u",
        "managedFields": [{"manager": "m", "operation": "Update", "fieldsV1": {"f:x": {}}}]}
    assert decoded.unknown == []


def test_unknown_fields_are_named_from_the_metadata_and_in_key_order() -> None:
    decoded = decode_object_meta({"zz": 1, "name": "a", "aa": 2,
                                  "ownerReferences": [{"uid": "u", "blockOwner": True}]},
                                 "spec.template")
    assert decoded.unknown == ["spec.template.metadata.aa",
                               "spec.template.metadata.ownerReferences[0].blockOwner",
                               "spec.template.metadata.zz"]
    assert decoded.meta["ownerReferences"] == [{"apiVersion": "", "kind": "", "name": "",
                                                "uid": "u"}]


def test_times_are_normalised_to_utc_seconds() -> None:
    assert decode_object_meta({"creationTimestamp": "2024-03-01T01:30:00.999+02:00"}).meta == {
        "creationTimestamp": "2024-02-29T23:30:00Z"}
    assert decode_object_meta({"creationTimestamp": "0001-01-01T00:00:00Z"}).meta == {}


@pytest.mark.parametrize(("metadata", "message"), [
    ({"labels": {"a": 1}},
     "json: cannot unmarshal number into Go struct field ObjectMeta.labels of type string"),
    ({"labels": "a=b"}, "json: cannot unmarshal string into Go struct field ObjectMeta.labels "
                        "of type map[string]string"),
    ({"name": ["a"]},
     "json: cannot unmarshal array into Go struct field ObjectMeta.name of type string"),
    ({"generation": "1"},
     "json: cannot unmarshal string into Go struct field ObjectMeta.generation of type int64"),
    ({"finalizers": "x"},
     "json: cannot unmarshal string into Go struct field ObjectMeta.finalizers of type "
     "[]string"),
    ({"ownerReferences": [{"controller": "yes"}]},
     "json: cannot unmarshal string into Go struct field OwnerReference.ownerReferences."
     "controller of type bool"),
    ({"uid": 5, "generation": "x"},
     "json: cannot unmarshal string into Go struct field ObjectMeta.generation of type int64"),
    ("x", "json: cannot unmarshal string into Go value of type v1.ObjectMeta"),
])
def test_a_wrong_type_is_the_first_error_go_meets(metadata: Any, message: str) -> None:
    assert refusal(metadata) == message


@pytest.mark.parametrize(("value", "message"), [
    ("tomorrow", 'parsing time "tomorrow" as "2006-01-02T15:04:05Z07:00": cannot parse '
                 '"tomorrow" as "2006"'),
    ("2024-05-01", 'parsing time "2024-05-01" as "2006-01-02T15:04:05Z07:00": cannot parse '
                   '"" as "T"'),
    ("2024-05-01T10:00:00", 'parsing time "2024-05-01T10:00:00" as '
                            '"2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00"'),
    ("2024-13-01T10:00:00Z", 'parsing time "2024-13-01T10:00:00Z": month out of range'),
    ("2023-02-29T10:00:00Z", 'parsing time "2023-02-29T10:00:00Z": day out of range'),
    ("2024-05-01T10:00:00Zjunk", 'parsing time "2024-05-01T10:00:00Zjunk": extra text: '
                                 '"junk"'),
])
def test_a_bad_time_stops_the_decode_with_time_parses_words(value: str, message: str) -> None:
    assert refusal({"creationTimestamp": value}) == message


def test_a_time_error_wins_over_an_earlier_type_error() -> None:
    # Go's decoder returns an UnmarshalJSON error at once; a saved type error is lost.
    assert refusal({"annotations": {"a": 1}, "creationTimestamp": "x"}).startswith(
        'parsing time "x"')
