"""objectmeta: ValidateObjectMetaAccessor and ValidateObjectMetaAccessorUpdate
(apimachinery v0.32.9 pkg/api/validation/objectmeta.go)."""

from __future__ import annotations

from headwater_dev.builtins import (
    names,
    validate_object_meta,
    validate_object_meta_update,
)
from headwater_dev.fielderrors import FieldError


def messages(errors: list[FieldError]) -> list[str]:
    return [error.message() for error in errors]


def meta(**fields: object) -> dict[str, object]:
    return {"name": "a", "namespace": "ns", **fields}


def check(value: dict[str, object], *, namespaced: bool = True,
          core: bool = False) -> list[str]:
    return messages(validate_object_meta(value, namespaced=namespaced,
                                         name_rule=names.name_is_dns_subdomain, core=core))


def test_name_or_generate_name_is_required_and_checked() -> None:
    assert check({"namespace": "ns"}) == [
        "metadata.name: Required value: name or generateName is required"]
    assert check(meta(name="UP"))[0].startswith(
        'metadata.name: Invalid value: "UP": a lowercase RFC 1123 subdomain')
    assert check(meta(generateName="run-")) == []


def test_namespace_present_iff_namespaced() -> None:
    assert check({"name": "a"}) == ["metadata.namespace: Required value"]
    assert check(meta(), namespaced=False) == [
        "metadata.namespace: Forbidden: not allowed on this type"]
    assert check(meta(namespace="a.b")) == [
        'metadata.namespace: Invalid value: "a.b": must not contain dots']


def test_labels_annotations_and_their_sizes() -> None:
    assert check(meta(labels={"k": "v" * 64})) == [
        'metadata.labels: Invalid value: "' + "v" * 64
        + '": must be no more than 63 characters']
    assert check(meta(annotations={"Example.COM/Key": "x"})) == []
    assert check(meta(annotations={"a": "x" * (256 * 1024)})) == [
        "metadata.annotations: Too long: may not be more than 262144 bytes"]


def test_owner_references_complete_and_one_controller() -> None:
    ref = {"apiVersion": "headwater.dev/v1", "kind": "FlowRun", "name": "r", "uid": "u",
           "controller": True}
    assert check(meta(ownerReferences=[ref])) == []
    assert check(meta(ownerReferences=[{"apiVersion": "v1", "kind": "X"}])) == [
        'metadata.ownerReferences.name: Invalid value: "": name must not be empty',
        'metadata.ownerReferences.uid: Invalid value: "": uid must not be empty']
    twice = check(meta(ownerReferences=[ref, {**ref, "name": "s"}]))
    assert len(twice) == 1
    assert twice[0].endswith('Only one reference can have Controller set to true. Found '
                             '"true" in references for FlowRun/r and FlowRun/s')


def test_finalizers_qualified_and_core_standard_names() -> None:
    assert check(meta(finalizers=["kopf.zalando.org/KopfFinalizerMarker"]), core=True) == []
    assert check(meta(finalizers=["custom"]), core=True) == [
        'metadata.finalizers[0]: Invalid value: "custom": name is neither a standard '
        "finalizer name nor is it fully qualified"]
    assert check(meta(finalizers=["orphan", "foregroundDeletion"])) == [
        'metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: '
        "finalizer orphan and foregroundDeletion cannot be both set"]


def test_update_rules() -> None:
    old = meta(uid="1", resourceVersion="5", generation=2)
    assert messages(validate_object_meta_update(
        meta(uid="1", resourceVersion="5", generation=2), old)) == []
    assert messages(validate_object_meta_update(
        meta(name="b", uid="1", resourceVersion="", generation=1), old)) == [
        'metadata.resourceVersion: Invalid value: "": must be specified for an update',
        "metadata.generation: Invalid value: 1: must not be decremented",
        'metadata.name: Invalid value: "b": field is immutable']
    deleting = {**old, "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a/b"]}
    assert messages(validate_object_meta_update(
        {**deleting, "finalizers": ["a/b", "c/d"]}, deleting)) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is '
        'being deleted, found new finalizers []string{"c/d"}']
