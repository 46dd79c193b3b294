"""The orders pipeline's objects for api tests that run it for real.

``tests/api/flows/run_store_pipeline.py:pipeline`` (three tasks, a retry, a cache hit, a
subflow, two artifacts, an asset) as a Flow, a Deployment of it and one FlowRun, for the
run-store and UI api tests.
"""

from __future__ import annotations

from typing import Any

from headwater_operator import kube as kube_module

ENTRYPOINT = "tests/api/flows/run_store_pipeline.py:pipeline"


async def create_orders_run(kube: kube_module.Kube, namespace: str, run: str,
                            deployment_spec: dict[str, Any]) -> None:
    """Create the Flow and Deployment ``orders`` (``deployment_spec`` added to its spec)
    and the FlowRun ``run`` of it for the day 2026-12-01."""
    await kube.create(kube_module.FLOWS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
        "metadata": {"name": "orders"},
        "spec": {"image": "example/orders:1", "entrypoint": ENTRYPOINT},
    }, namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": "orders"},
        "spec": {"flowRef": {"name": "orders"}, **deployment_spec},
    }, namespace=namespace)
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": run},
        "spec": {"deploymentRef": {"name": "orders"}, "parameters": {"day": "2026-12-01"}},
    }, namespace=namespace)
