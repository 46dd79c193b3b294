"""decoding: the typed decoder's 400s (sigs.k8s.io/json decode.go UnmarshalTypeError,
apimachinery Quantity/Time/MicroTime UnmarshalJSON, k8s.io/apiserver transformDecodeError)
and strict unknown fields (kubernetes_patch.go)."""

from __future__ import annotations

from typing import Any

from headwater_dev.builtins import (
    decode_error_message,
    schema_errors,
    strict_error_message,
    unknown_builtin_fields,
)
from headwater_dev.builtins.decoding import RFC3339, parse_time_error

PODS = ("", "v1", "pods")
LEASES = ("coordination.k8s.io", "v1", "leases")


def pod(**container: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "flow", "image": "x", **container}]}}


def test_wrong_scalar_types_name_the_innermost_struct_and_the_full_path() -> None:
    assert decode_error_message(PODS, pod(ports=[{"containerPort": "80"}])) == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into '
        "Go struct field ContainerPort.spec.containers.ports.containerPort of type int32")
    assert schema_errors(PODS, pod(ports=[{"containerPort": 1.5}])) == [
        "json: cannot unmarshal number 1.5 into Go struct field "
        "ContainerPort.spec.containers.ports.containerPort of type int32"]
    assert schema_errors(PODS, {"spec": "x"}) == [
        "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"]
    assert schema_errors(PODS, pod(env={"A": "1"})) == [
        "json: cannot unmarshal object into Go struct field Container.spec.containers.env of "
        "type []v1.EnvVar"]
    assert schema_errors(PODS, {"metadata": {"labels": {"a": 1}}}) == [
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of "
        "type string"]


def test_nulls_are_accepted() -> None:
    assert schema_errors(PODS, pod(ports=None, env=[None], image=None)) == []


def test_quantities_and_micro_times_fail_with_their_own_messages() -> None:
    assert schema_errors(PODS, pod(resources={"limits": {"cpu": "lots"}})) == [
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]
    lease = {"metadata": {"name": "l"}, "spec": {"renewTime": "2024-01-01T00:00:00Z"}}
    assert schema_errors(LEASES, lease) == [
        'parsing time "2024-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot '
        'parse "Z" as ".000000"']
    assert parse_time_error("2024-01-01T00:00:00.5Z", RFC3339) is None
    assert parse_time_error("yesterday", RFC3339) == (
        'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" '
        'as "2006"')


def test_unknown_fields_are_strict_errors_only() -> None:
    obj = pod(imagePullPolcy="Always")
    assert schema_errors(PODS, obj) == []
    assert unknown_builtin_fields(PODS, obj) == [
        'unknown field "spec.containers[0].imagePullPolcy"']
    assert strict_error_message(PODS, obj) == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field '
        '"spec.containers[0].imagePullPolcy"')
