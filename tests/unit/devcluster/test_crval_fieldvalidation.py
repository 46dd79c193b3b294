"""fieldValidation=Strict/Warn for custom resources: duplicate and unknown fields, as in 1.32.

The strict decoder's paths follow sigs.k8s.io/json 9aa6b5e7a4b3 ``kubernetes_patch.go``
(``newFieldError``: the path of the object, a dot, the repeated key); the message and
the order (duplicates, then the sorted unknown fields) follow apiextensions-apiserver
v0.32.9 ``schemaCoercingDecoder.Decode``, apimachinery ``strictDecodingError`` and
apiserver ``transformDecodeError``.
"""

from __future__ import annotations

import json

import pytest
from headwater_dev import fielderrors as fe
from headwater_dev.apiextensions.fieldvalidation import (
    decode_error_message,
    duplicate_fields,
    patch_strict_error,
    strict_decoding_message,
    strict_decoding_warnings,
    strict_errors,
)
from headwater_dev.apiextensions.pruning import unknown_fields

# The body of field_validation_test.go's crdInvalidBody (duplicates in spec and a port).
CRD_INVALID_BODY = """
{
    "apiVersion": "stable.example.com/v1", "kind": "NoxuItem",
    "metadata": {"name": "n", "resourceVersion": "1"},
    "spec": {
        "unknown1": "val1",
        "unknownDupe": "valDupe",
        "unknownDupe": "valDupe2",
        "knownField1": "val1",
        "knownField1": "val2",
        "ports": [{"name": "portName", "containerPort": 8080, "protocol": "TCP",
                   "hostPort": 8081, "hostPort": 8082, "unknownNested": "val"}]
    }
}"""

SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "knownField1": {"type": "string"},
    "ports": {"type": "array", "items": {"type": "object", "properties": {
        name: {"type": "string"} for name in (
            "name", "protocol", "hostIP", "containerPort", "hostPort")}}}}}}}


def test_duplicates_are_named_by_path_in_the_order_the_decoder_meets_them() -> None:
    assert duplicate_fields(CRD_INVALID_BODY) == [
        "spec.unknownDupe", "spec.knownField1", "spec.ports[0].hostPort"]


def test_a_key_repeated_twice_more_is_reported_once() -> None:
    assert duplicate_fields('{"a": 1, "a": 2, "a": 3, "b": {"a": [], "a": {}}}') == [
        "a", "b.a"]
    assert duplicate_fields(b'[{"x": 1, "x": 2}]') == ["[0].x"]
    assert duplicate_fields('{"a": {"b": 1}, "c": [1, {"d": true}]}') == []


def test_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        duplicate_fields('{"a": }')


@pytest.mark.parametrize("body", ['{"a": NaN}', '{"a": [Infinity]}', '{"a": -Infinity}'])
def test_constants_python_reads_but_json_has_not_are_a_value_error(body: str) -> None:
    # Python's json module reads these; Go's decoder and the scanner do not.
    with pytest.raises(ValueError, match="invalid JSON"):
        duplicate_fields(body)


def test_the_strict_message_lists_duplicates_then_unknown_fields() -> None:
    obj = json.loads(CRD_INVALID_BODY)
    errors = strict_errors(duplicate_fields(CRD_INVALID_BODY), unknown_fields(SCHEMA, obj))
    assert errors == [
        'duplicate field "spec.unknownDupe"', 'duplicate field "spec.knownField1"',
        'duplicate field "spec.ports[0].hostPort"',
        'unknown field "spec.ports[0].unknownNested"', 'unknown field "spec.unknown1"',
        'unknown field "spec.unknownDupe"']
    assert strict_decoding_warnings(errors) == errors
    assert decode_error_message("NoxuItem", "v1", strict_decoding_message(errors[3:4])) == (
        'NoxuItem in version "v1" cannot be handled as a NoxuItem: strict decoding error: '
        'unknown field "spec.ports[0].unknownNested"')


def test_a_strict_patch_is_a_422_on_the_patch_field_with_the_patched_object() -> None:
    error = patch_strict_error({"spec": {"x": 1}, "kind": "K"}, ['unknown field "spec.x"'])
    status = fe.invalid_error("", "", "", [error])
    assert status.code == 422
    assert status.message == (
        ' "" is invalid: patch: Invalid value: "{\\"kind\\":\\"K\\",\\"spec\\":{\\"x\\":1}}": '
        'strict decoding error: unknown field "spec.x"')
