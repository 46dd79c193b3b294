"""Every CRD the chart renders decodes as the Go type apiextensions.k8s.io/v1
CustomResourceDefinition with no strict decoding error, so ``kubectl apply`` (which sends
``fieldValidation=Strict``) and ``helm install`` take them from a Kubernetes 1.32 server."""

from __future__ import annotations

from typing import Any

import pytest
from chartkit import Render
from headwater_dev.builtins import decode

CRDS = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")


@pytest.mark.parametrize("values", [
    {},
    {"replicas": 2},
    {"replicas": 3, "watchNamespaces": ["team-a", "team-b"]},
], ids=["defaults", "cluster-wide-ha", "namespaced-ha"])
def test_rendered_crds_decode_without_strict_errors(render: Render,
                                                    values: dict[str, Any]) -> None:
    crds = [m for m in render(values) if m["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 8
    for crd in crds:
        decoded = decode(CRDS, crd)
        assert (decoded.error, decoded.unknown) == (None, ()), crd["metadata"]["name"]
        assert decoded.obj == crd
