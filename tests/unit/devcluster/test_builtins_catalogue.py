"""The builtins catalogue entries (tests/catalogue/builtins) agree with the validators."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from headwater_dev.builtins import validate_builtin
from headwater_dev.fielderrors import invalid_error

CATALOGUE = Path(__file__).resolve().parents[2] / "catalogue" / "builtins"
RESOURCES = {("v1", "Pod"): (("", "v1", "pods"), ""),
             ("v1", "ConfigMap"): (("", "v1", "configmaps"), ""),
             ("v1", "Event"): (("", "v1", "events"), ""),
             ("coordination.k8s.io/v1", "Lease"): (("coordination.k8s.io", "v1", "leases"),
                                                   "coordination.k8s.io")}


@pytest.mark.parametrize("path", sorted(CATALOGUE.glob("*.yaml")), ids=lambda p: p.stem)
def test_entry_matches_the_validators(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    obj = case["object"]
    key, group = RESOURCES[(obj["apiVersion"], obj["kind"])]
    status = invalid_error(obj["kind"], group, obj["metadata"]["name"],
                           validate_builtin(key, obj)).status()
    assert status["message"] == case["expect"]["message"]
    assert [{"field": c["field"], "reason": c["reason"]}
            for c in status["details"]["causes"]] == case["expect"]["causes"]


def test_there_are_at_least_six_entries() -> None:
    assert len(list(CATALOGUE.glob("*.yaml"))) >= 6
