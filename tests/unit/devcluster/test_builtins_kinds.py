"""The other served kinds: Events (core/v1 and events.k8s.io/v1), Leases, Namespaces,
ConfigMaps, Secrets, ServiceAccounts, kopf peerings (kubernetes
pkg/apis/core/validation/{events,validation}.go, pkg/apis/coordination/validation, and
k8s.io/apiserver pkg/registry/rest BeforeCreate's generic metadata check)."""

from __future__ import annotations

from typing import Any

from headwater_dev.builtins import validate_builtin
from headwater_dev.fielderrors import invalid_error

CORE_EVENTS = ("", "v1", "events")
EVENTS = ("events.k8s.io", "v1", "events")
LEASES = ("coordination.k8s.io", "v1", "leases")


def errors(kind: tuple[str, str, str], obj: dict[str, Any],
           old: dict[str, Any] | None = None) -> list[str]:
    return [e.message() for e in validate_builtin(kind, obj, old)]


def core_event(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "run-a.17a", "namespace": "ns"},
            "involvedObject": {"kind": "FlowRun", "name": "run-a", "namespace": "ns"},
            "reason": "PodCreated", "message": "created", "type": "Normal", **fields}


def test_core_event_namespace_must_match_the_involved_object() -> None:
    assert errors(CORE_EVENTS, core_event()) == []
    event = core_event(involvedObject={"kind": "FlowRun", "name": "r", "namespace": "other"})
    assert errors(CORE_EVENTS, event) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace']


def test_core_events_get_the_generic_name_check_only_after_the_strategy() -> None:
    assert errors(CORE_EVENTS, core_event(metadata={"name": "a/b", "namespace": "ns"})) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def test_events_v1_reason_and_note_lengths() -> None:
    event = {"metadata": {"name": "e", "namespace": "ns"},
             "eventTime": "2024-01-01T00:00:00.000000Z", "type": "Normal",
             "regarding": {"kind": "Pod", "name": "p", "namespace": "ns"},
             "reportingController": "headwater.dev/operator", "reportingInstance": "op-1",
             "action": "Create", "reason": "R" * 129, "note": "n" * 1025}
    assert errors(EVENTS, event) == [
        'reason: Invalid value: "": can have at most 128 characters',
        'message: Invalid value: "": can have at most 1024 characters']


def test_lease_durations() -> None:
    lease = {"metadata": {"name": "headwater", "namespace": "ns"},
             "spec": {"leaseDurationSeconds": -5, "leaseTransitions": -1}}
    assert errors(LEASES, lease) == [
        "spec.leaseDurationSeconds: Invalid value: -5: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]


def test_namespaces_configmaps_secrets_serviceaccounts() -> None:
    assert errors(("", "v1", "namespaces"), {"metadata": {"name": "team.a"}}) == [
        'metadata.name: Invalid value: "team.a": must not contain dots']
    assert errors(("", "v1", "configmaps"), {
        "metadata": {"name": "c", "namespace": "ns"}, "data": {"bad key": "v"}})[0].startswith(
        'data[bad key]: Invalid value: "bad key": a valid config key must consist of')
    assert errors(("", "v1", "secrets"), {
        "metadata": {"name": "s", "namespace": "ns"}, "type": "kubernetes.io/tls",
        "data": {}}) == ["data[tls.crt]: Required value", "data[tls.key]: Required value"]
    assert errors(("", "v1", "serviceaccounts"), {
        "metadata": {"name": "Etl", "namespace": "ns"}})[0].startswith(
        'metadata.name: Invalid value: "Etl": a lowercase RFC 1123 subdomain')


def test_immutable_configmaps_keep_their_data() -> None:
    old = {"metadata": {"name": "c", "namespace": "ns", "resourceVersion": "1"},
           "immutable": True, "data": {"a": "1"}}
    new = {**old, "data": {"a": "2"}}
    assert errors(("", "v1", "configmaps"), new, old) == [
        "data: Forbidden: field is immutable when `immutable` is set"]


def test_kopf_peerings_get_only_the_generic_metadata_check() -> None:
    peering = {"metadata": {"name": "headwater", "namespace": "ns"}, "status": {"x": 1}}
    assert errors(("kopf.dev", "v1", "kopfpeerings"), peering) == []
    assert errors(("kopf.dev", "v1", "clusterkopfpeerings"), peering) == [
        "metadata.namespace: Forbidden: not allowed on this type"]


def test_the_422_reads_as_the_api_server_writes_it() -> None:
    event = core_event(involvedObject={"kind": "FlowRun", "name": "r", "namespace": "b"})
    status = invalid_error("Event", "", "run-a.17a",
                           validate_builtin(CORE_EVENTS, event)).status()
    assert status["message"] == ('Event "run-a.17a" is invalid: involvedObject.namespace: '
                                 'Invalid value: "b": does not match event.namespace')
    assert status["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "involvedObject.namespace",
        "message": 'Invalid value: "b": does not match event.namespace'}]
