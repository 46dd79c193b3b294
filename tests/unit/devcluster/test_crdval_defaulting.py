"""The v1 defaults and the strategy's status handling that run before CRD validation.

apiextensions-apiserver v0.32.9 pkg/apis/apiextensions/v1/defaults.go and
pkg/registry/customresourcedefinition/strategy.go.
"""

from __future__ import annotations

from crdval_helpers import create_errors, widget_crd
from headwater_dev.apiextensions.crddefaults import (
    default_crd,
    prepare_for_create,
    prepare_for_update,
)


def test_names_conversion_and_stored_versions_are_defaulted() -> None:
    crd = default_crd(widget_crd())
    assert crd["spec"]["names"] == {"plural": "widgets", "kind": "Widget", "singular": "widget",
                                    "listKind": "WidgetList"}
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["status"] == {"storedVersions": ["v1"]}
    assert "served" not in default_crd(widget_crd(versions=[{"name": "v1"}]))["spec"][
        "versions"][0]


def test_webhook_service_port_defaults_to_443() -> None:
    crd = default_crd(widget_crd(conversion={"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"service": {"namespace": "ns", "name": "svc"}}}}))
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443


def test_validation_runs_after_defaulting() -> None:
    # Without the defaults, singular and listKind would be "Required value".
    assert create_errors(widget_crd()) == []


def test_create_drops_the_sent_status_and_update_keeps_the_stored_one() -> None:
    sent = widget_crd()
    sent["status"] = {"storedVersions": ["v0"], "acceptedNames": {"plural": "x"}}
    assert prepare_for_create(sent)["status"] == {"storedVersions": ["v1"]}
    old = prepare_for_create(widget_crd())
    new = widget_crd(versions=[{"name": "v2", "served": True, "storage": True}])
    assert prepare_for_update(new, old)["status"] == {"storedVersions": ["v1", "v2"]}
