"""Every CRD the chart renders passes the emulator's CRD validation (Kubernetes 1.32's)."""

from __future__ import annotations

from chartkit import Render
from headwater_dev.apiextensions.crddefaults import (
    default_crd,
    prepare_for_create,
)
from headwater_dev.apiextensions.crdvalidation import validate_crd


def test_rendered_crds_are_accepted(render: Render) -> None:
    # Every CRD the chart can render, in both install modes.
    crds = [m for values in ({"replicas": 2}, {"replicas": 2, "watchNamespaces": ["a"]})
            for m in render(values) if m["kind"] == "CustomResourceDefinition"]
    assert {crd["metadata"]["name"] for crd in crds} == {
        "flows.headwater.dev", "deployments.headwater.dev", "schedules.headwater.dev",
        "flowruns.headwater.dev", "blocks.headwater.dev", "variables.headwater.dev",
        "concurrencylimits.headwater.dev", "automations.headwater.dev"}
    for crd in crds:
        errors = validate_crd(prepare_for_create(default_crd(crd)))
        assert [e.message() for e in errors] == [], crd["metadata"]["name"]
