"""HTTP requests named by their Kubernetes verb, for the API request metric."""

from __future__ import annotations

import pytest
from headwater_operator.kube import api_verb


@pytest.mark.parametrize(
    ("method", "path", "query", "verb"),
    [
        ("GET", "/api/v1/namespaces/default/pods", {}, "list"),
        ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, "watch"),
        ("GET", "/api/v1/namespaces/default/pods/run-1", {}, "get"),
        ("GET", "/api/v1/namespaces/default/pods/run-1/log", {}, "get"),
        ("GET", "/apis/headwater.dev/v1alpha1/flowruns", {"watch": "1"}, "watch"),
        ("GET", "/apis/headwater.dev/v1alpha1/namespaces/ns/flowruns", {}, "list"),
        ("GET", "/api/v1/namespaces", {}, "list"),  # the namespaces collection itself
        ("GET", "/api/v1/namespaces/default", {}, "get"),
        ("GET", "/apis/headwater.dev/v1alpha1", {}, "get"),  # discovery
        ("GET", "/version", {}, "get"),
        ("POST", "/api/v1/namespaces/default/events", {}, "create"),
        ("PATCH", "/apis/headwater.dev/v1alpha1/namespaces/ns/flowruns/r/status", {}, "patch"),
        ("PUT", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", {}, "update"),
        ("DELETE", "/api/v1/namespaces/default/pods/run-1", {}, "delete"),
    ],
)
def test_requests_are_named_by_kubernetes_verb(
    method: str, path: str, query: dict[str, str], verb: str
) -> None:
    assert api_verb(method, path, query) == verb
