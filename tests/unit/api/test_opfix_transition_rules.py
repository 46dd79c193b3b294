"""Transition rules (``oldSelf``) of the CRDs, evaluated against the object they replace.

The API server evaluates a transition rule on update only, where the old object has a
value at the same place (apiextensions-apiserver v0.32.9
``pkg/apiserver/schema/cel/validation.go``); ``cel_errors(new, old)`` does the same.
"""

from __future__ import annotations

from typing import Any

import pytest
from headwater_operator.api.validation import cel_errors, validate_manifest


def flowrun(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": "r"}, "spec": spec}


BY_DEPLOYMENT = flowrun(deploymentRef={"name": "nightly"})
BY_FLOW = flowrun(flowRef={"name": "etl"})


def test_an_unchanged_reference_passes_and_a_create_skips_transition_rules() -> None:
    assert cel_errors(BY_DEPLOYMENT, old=BY_DEPLOYMENT) == []
    assert cel_errors(flowrun(deploymentRef={"name": "nightly"}, cancel=True),
                      old=BY_DEPLOYMENT) == []
    assert cel_errors(BY_DEPLOYMENT) == []
    assert validate_manifest(BY_DEPLOYMENT) == []


@pytest.mark.parametrize(("old", "new", "field"), [
    (BY_DEPLOYMENT, flowrun(deploymentRef={"name": "hourly"}), "spec.deploymentRef"),
    (BY_FLOW, flowrun(flowRef={"name": "other"}), "spec.flowRef"),
])
def test_a_reference_cannot_be_repointed(old: dict[str, Any], new: dict[str, Any],
                                         field: str) -> None:
    assert cel_errors(new, old=old) == [f"{field}: is immutable"]


SWAP = ("spec: spec.deploymentRef and spec.flowRef cannot be swapped, added or removed: "
        "what a run executes is fixed at creation; create a new FlowRun instead")


@pytest.mark.parametrize(("old", "new"), [(BY_DEPLOYMENT, BY_FLOW), (BY_FLOW, BY_DEPLOYMENT)],
                         ids=["deployment-to-flow", "flow-to-deployment"])
def test_the_references_cannot_be_swapped(old: dict[str, Any], new: dict[str, Any]) -> None:
    # Each reference's `self == oldSelf` is silent here: neither exists on both sides.
    assert cel_errors(new, old=old) == [SWAP]
