"""CRD spec rules (apiextensions-apiserver v0.32.9 validation.go), messages as a 1.32 server's.

Expected strings are built from the Go source's literals (and, where Kubernetes' own tests
state them, from those: validation_test.go TestValidateCustomResourceDefinitionStoredVersions).
"""

from __future__ import annotations

import copy

from crdval_helpers import SCHEMA, create_errors, update_errors, widget_crd

DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
           "with an alphabetic character, and end with an alphanumeric character (e.g. "
           "'my-name',  or 'abc-123', regex used for validation is "
           "'[a-z]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
             "characters, '-' or '.', and must start and end with an alphanumeric character "
             "(e.g. 'example.com', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def _version(name: str, storage: bool) -> dict[str, object]:
    return {"name": name, "served": True, "storage": storage,
            "schema": {"openAPIV3Schema": copy.deepcopy(SCHEMA)},
            "subresources": {"status": {}}}


def _go_version(name: str, storage: bool) -> str:
    return ("apiextensions.CustomResourceDefinitionVersion{"
            f'Name:"{name}", Served:true, Storage:{str(storage).lower()}, Deprecated:false, '
            "DeprecationWarning:(*string)(nil), "
            "Schema:(*apiextensions.CustomResourceValidation)(nil), "
            "Subresources:(*apiextensions.CustomResourceSubresources)(nil), "
            "AdditionalPrinterColumns:[]apiextensions.CustomResourceColumnDefinition(nil), "
            "SelectableFields:[]apiextensions.SelectableField(nil)}")


def test_a_valid_crd_passes() -> None:
    assert create_errors(widget_crd()) == []


def test_the_name_is_plural_dot_group() -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "widget.example.com"
    assert create_errors(crd) == [
        'metadata.name: Invalid value: "widget.example.com": '
        'must be spec.names.plural+"."+spec.group']
    del crd["metadata"]["name"]
    assert create_errors(crd) == ["metadata.name: Required value: name or generateName is required"]


def test_the_group_is_a_dns_subdomain_with_a_dot() -> None:
    crd = widget_crd(group="example")
    crd["metadata"]["name"] = "widgets.example"
    assert create_errors(crd) == [
        'spec.group: Invalid value: "example": should be a domain with at least one dot']
    crd = widget_crd(group="Example.com")
    assert create_errors(crd) == [
        'metadata.name: Invalid value: "widgets.example.com": '
        'must be spec.names.plural+"."+spec.group',
        f'spec.group: Invalid value: "Example.com": {SUBDOMAIN}']


def test_the_scope_is_cluster_or_namespaced() -> None:
    assert create_errors(widget_crd(scope="Global")) == [
        'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"']
    assert create_errors(widget_crd(scope="")) == ["spec.scope: Required value"]


def test_names_are_dns_labels_and_kind_differs_from_list_kind() -> None:
    crd = widget_crd(names={"plural": "widgets", "kind": "Widget", "listKind": "Widget",
                            "shortNames": ["w_1"], "categories": ["All"]})
    assert create_errors(crd) == [
        f'spec.names.shortNames[0]: Invalid value: "w_1": {DNS1035}',
        'spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same',
        f'spec.names.categories[0]: Invalid value: "All": {DNS1035}']
    crd = widget_crd(names={"plural": "widgets", "kind": "9Widget"})
    assert create_errors(crd) == [
        f'spec.names.singular: Invalid value: "9widget": {DNS1035}',
        'spec.names.kind: Invalid value: "9Widget": may have mixed case, but should otherwise '
        f"match: {DNS1035}",
        'spec.names.listKind: Invalid value: "9WidgetList": may have mixed case, but should '
        f"otherwise match: {DNS1035}"]


def test_missing_names_are_required_after_defaulting() -> None:
    crd = widget_crd(names={"plural": "widgets"})
    assert create_errors(crd) == ["spec.names.singular: Required value",
                                  "spec.names.kind: Required value",
                                  "spec.names.listKind: Required value"]


def test_exactly_one_storage_version() -> None:
    crd = widget_crd(versions=[_version("v1", True), _version("v2", True)])
    assert create_errors(crd) == [
        "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{"
        f'{_go_version("v1", True)}, {_go_version("v2", True)}}}: '
        "must have exactly one version marked as storage version",
        'status.storedVersions: Invalid value: []string{"v1"}: must have the storage version v2']
    crd = widget_crd(versions=[_version("v1", False)])
    assert create_errors(crd) == [
        "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{"
        f'{_go_version("v1", False)}}}: must have exactly one version marked as storage version',
        "status.storedVersions: Invalid value: []string(nil): must have at least one stored "
        "version"]


def test_version_names_are_unique_dns_labels() -> None:
    crd = widget_crd(versions=[_version("v1", True), _version("v1", False)])
    assert create_errors(crd) == [
        "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{"
        f'{_go_version("v1", True)}, {_go_version("v1", False)}}}: '
        "must contain unique version names"]
    crd = widget_crd(versions=[_version("V1", True)])
    assert create_errors(crd) == [f'spec.versions[0].name: Invalid value: "V1": {DNS1035}',
                                  f'spec.version: Invalid value: "V1": {DNS1035}']


def test_every_version_needs_a_schema() -> None:
    crd = widget_crd()
    del crd["spec"]["versions"][0]["schema"]
    assert create_errors(crd) == [
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]


def test_deprecation_warning_only_on_deprecated_versions() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["deprecationWarning"] = "gone soon"
    assert create_errors(crd) == [
        'spec.versions[0].deprecationWarning: Invalid value: "gone soon": can only be set for '
        "deprecated versions"]


def test_printer_columns_have_known_types_formats_and_dot_paths() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Size", "type": "int", "format": "percent", "jsonPath": "spec.size"},
        {"name": "", "type": "", "jsonPath": ""}]
    assert create_errors(crd) == [
        'spec.additionalPrinterColumns[0].type: Invalid value: "int": must be one of '
        "boolean,date,integer,number,string",
        'spec.additionalPrinterColumns[0].format: Invalid value: "percent": must be one of '
        "byte,date,date-time,double,float,int32,int64,password",
        'spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.size": must be a '
        "simple json path starting with .",
        "spec.additionalPrinterColumns[1].name: Required value",
        "spec.additionalPrinterColumns[1].type: Required value: must be one of "
        "boolean,date,integer,number,string",
        "spec.additionalPrinterColumns[1].JSONPath: Required value"]


def test_scale_paths_are_under_spec_and_status() -> None:
    crd = widget_crd()
    crd["spec"]["versions"][0]["subresources"]["scale"] = {
        "specReplicasPath": ".replicas", "statusReplicasPath": "status.replicas",
        "labelSelectorPath": ".metadata.labels"}
    assert create_errors(crd) == [
        'spec.subresources.scale.specReplicasPath: Invalid value: ".replicas": should be a json '
        "path under .spec",
        'spec.subresources.scale.statusReplicasPath: Invalid value: "status.replicas": must be '
        "a simple json path starting with .",
        'spec.subresources.scale.labelSelectorPath: Invalid value: ".metadata.labels": should '
        "be a json path under either .spec or .status"]


def test_conversion_strategy_and_webhook_fields() -> None:
    assert create_errors(widget_crd(conversion={"strategy": "Magic"})) == [
        'spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", '
        '"Webhook"']
    assert create_errors(widget_crd(conversion={"strategy": "Webhook"})) == [
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to "
        "Webhook",
        "spec.conversion.conversionReviewVersions: Required value"]
    crd = widget_crd(conversion={"strategy": "None", "webhook": {
        "conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://convert"}}})
    assert create_errors(crd) == [
        "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not "
        "set to Webhook",
        "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy "
        "is not set to Webhook"]
    crd = widget_crd(conversion={"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v2"], "clientConfig": {"url": "https://convert"}}})
    assert create_errors(crd) == [
        'spec.conversion.conversionReviewVersions: Invalid value: []string{"v2"}: must include '
        "at least one of v1, v1beta1"]


def test_preserve_unknown_fields_must_be_false_in_v1() -> None:
    crd = widget_crd(preserveUnknownFields=True)
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "default"] = {}
    assert create_errors(crd) == [
        "spec.preserveUnknownFields: Invalid value: true: must be false in order to use "
        "defaults in the schema",
        "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set "
        "x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead"]


def test_protected_groups_need_api_approval() -> None:
    crd = widget_crd(group="widgets.k8s.io")
    crd["metadata"]["name"] = "widgets.widgets.k8s.io"
    assert create_errors(crd) == [
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups "
        'must have approval annotation "api-approved.kubernetes.io", see '
        "https://github.com/kubernetes/enhancements/pull/1111"]
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    assert create_errors(crd) == []


def test_update_keeps_group_and_plural() -> None:
    old = widget_crd()
    new = widget_crd(group="example.org")
    assert update_errors(new, old) == [
        'spec.group: Invalid value: "example.org": field is immutable']
    assert update_errors(widget_crd(), old) == []


def test_update_with_a_removed_stored_version() -> None:
    old = widget_crd()
    new = widget_crd(versions=[_version("v2", True)])
    assert update_errors(new, old) == [
        'status.storedVersions[0]: Invalid value: "v1": must appear in spec.versions']
