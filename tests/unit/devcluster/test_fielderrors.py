"""Field errors read as the API server's: the Go formatting rules of apimachinery 1.32."""

from __future__ import annotations

from headwater_dev import fielderrors as fe


def test_bodies_follow_the_error_type() -> None:
    assert fe.required("spec.image").message() == "spec.image: Required value"
    assert fe.forbidden("spec.x", "may not be set").message() == "spec.x: Forbidden: may not be set"
    assert fe.invalid("spec.retries", -1, "should be greater than or equal to 0").message() == (
        "spec.retries: Invalid value: -1: should be greater than or equal to 0")
    assert fe.too_long("metadata.name", 63).message() == (
        "metadata.name: Too long: may not be more than 63 bytes")
    assert fe.too_many("spec.l", 5, 3).message() == "spec.l: Too many: 5: must have at most 3 items"
    assert fe.not_supported("spec.p", "x", ["A", "B"]).message() == (
        'spec.p: Unsupported value: "x": supported values: "A", "B"')


def test_values_print_as_go_prints_them() -> None:
    assert fe.go_quote('a"b\n\x01é') == '"a\\"b\\n\\x01é"'
    assert [fe.go_float(v) for v in (1.5, 3.0, 100000.0, 1e6, 1e-5)] == [
        "1.5", "3", "100000", "1e+06", "1e-05"]
    assert fe.go_syntax({"b": [1, None], "a": True}) == (
        'map[string]interface {}{"a":true, "b":[]interface {}{1, interface {}(nil)}}')
    # field/errors.go ErrorBody: a nil value becomes the string "null", printed with %q;
    # the "<nil>: Invalid value: \"null\": some validation rules were not checked" error
    # every CRD user has seen shows it.
    assert fe.invalid("x", None, "d").message() == 'x: Invalid value: "null": d'


def test_paths_use_dots_indexes_and_keys() -> None:
    assert fe.format_path(["spec", "containers", 0, "name"]) == "spec.containers[0].name"
    assert fe.format_path(["spec", "validation", "openAPIV3Schema", "properties",
                           fe.key("metadata")]) == (
        "spec.validation.openAPIV3Schema.properties[metadata]")


def test_invalid_status_has_the_api_servers_shape() -> None:
    errors = [fe.required("spec.image"), fe.required("spec.image"),
              fe.invalid("spec.retries", -1, "must be positive")]
    status = fe.invalid_error("Flow", "headwater.dev", "hello", errors).status()
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        'Flow.headwater.dev "hello" is invalid: [spec.image: Required value, '
        "spec.retries: Invalid value: -1: must be positive]")
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueRequired", "message": "Required value", "field": "spec.image"}
    single = fe.invalid_error("Pod", "", "p", [fe.required("spec.containers")])
    assert single.message == 'Pod "p" is invalid: spec.containers: Required value'
