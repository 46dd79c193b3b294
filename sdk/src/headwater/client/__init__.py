"""Prefect's ``prefect.client`` import paths that flow files use for type annotations.

Headwater has no API client: the Kubernetes API is its control plane. Only the names a
flow file imports to annotate its hooks are provided, as the engine's own run records::

    from headwater.client.schemas.objects import FlowRun, TaskRun
"""
