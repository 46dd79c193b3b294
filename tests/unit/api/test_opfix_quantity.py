"""Resource quantities: what the CRD pattern and the model accept is what a pod accepts.

The cases come from apimachinery v0.32.9 ``pkg/api/resource/quantity.go``
(``parseQuantityString``, ``ParseQuantity``) and ``suffix.go`` (the suffix tables), plus
the pod rule that requests and limits are never negative.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from headwater_operator.api.common import QUANTITY_PATTERN, check_quantity
from headwater_operator.api.validation import validate_manifest

ACCEPTED = [
    "0", "1", "250", "+1",
    "1.5", "1.", ".5", "+.5", "0.1m",
    "500m", "1u", "3n", "1k", "1M", "1G", "1T", "1P", "1E",  # decimal SI ("E" is exa)
    "1Ki", "512Mi", "1.5Gi", "2Ti", "1Pi", "1Ei",  # binary SI
    "1e3", "1E3", "1e-3", "1E+3", "1.5e3", "12e0",  # decimal exponent
    "1.G",  # parseQuantityString: "we currently allow 1.G"
]
REFUSED = [
    "1K", "2KB", "1ki", "1mi", "1KiB", "1Mm", "1k8",  # not a suffix of the tables
    "1e", "1e+", "1e1.5", "1E3.0",  # an exponent needs an integer
    "", ".", "+", "Ki", "e5",  # the parser reads these as 0; they are mistakes
    "-1", "-500m", "-0.5Gi",  # requests and limits must be >= 0
    " 1", "1 Gi", "1Gi ", "1Gi\n", "0x10", "1,5", "1_000",
    "\u0661", "1\u0660Mi",  # Arabic-Indic digits: not ASCII digits
]


@pytest.mark.parametrize("value", ACCEPTED)
def test_quantities_kubernetes_parses_are_accepted(value: str) -> None:
    assert check_quantity(value) == value
    assert validate_manifest(flow(value)) == []


@pytest.mark.parametrize("value", REFUSED, ids=repr)
def test_what_a_pod_would_refuse_is_refused_at_apply_time(value: str) -> None:
    with pytest.raises(ValueError, match=r"quantity|negative"):
        check_quantity(value)
    errors = validate_manifest(flow(value))
    assert errors
    assert errors[0].startswith("spec.resources.requests.memory: "), errors


def test_the_crd_pattern_is_plain_re2_and_anchored() -> None:
    # The API server evaluates it with Go's regexp (RE2): no \d (Unicode in Python), no
    # look-around, anchored at both ends.
    assert QUANTITY_PATTERN.startswith("^")
    assert QUANTITY_PATTERN.endswith("$")
    assert not re.search(r"\\d|\(\?[=!<]", QUANTITY_PATTERN)


def test_integer_quantities_must_not_be_negative() -> None:
    assert check_quantity(2) == 2
    with pytest.raises(ValueError, match="negative"):
        check_quantity(-1)


def flow(memory: str) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
            "metadata": {"name": "quantity"},
            "spec": {"image": "ghcr.io/acme/etl:1.0", "entrypoint": "etl.flows:ingest",
                     "resources": {"requests": {"memory": memory}}}}
