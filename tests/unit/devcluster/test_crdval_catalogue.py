"""The CRD entries of the refusal catalogue (tests/catalogue/crds) match validate_crd.

The lead's runner sends each entry to the emulator over HTTP; this checks the same
expectations directly against the validation, so a catalogue entry and the code can
never disagree unnoticed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_operator.devcluster import fielderrors as fe
from headwater_operator.devcluster.apiextensions.crddefaults import (
    default_crd,
    prepare_for_create,
    prepare_for_update,
)
from headwater_operator.devcluster.apiextensions.crdvalidation import validate_crd

CATALOGUE = Path(__file__).resolve().parents[2] / "catalogue" / "crds"
ENTRIES = sorted(CATALOGUE.glob("*.yaml"))


def test_the_catalogue_covers_enough_rule_families() -> None:
    assert len(ENTRIES) >= 12


@pytest.mark.parametrize("path", ENTRIES, ids=lambda p: p.stem)
def test_entry_matches_the_validation(path: Path) -> None:
    entry: dict[str, Any] = yaml.safe_load(path.read_text())
    obj = entry["object"]
    if entry["request"] == "update":
        (old,) = entry["setup"]
        stored = prepare_for_create(default_crd(old))
        errors = validate_crd(prepare_for_update(default_crd(obj), stored), stored)
    else:
        errors = validate_crd(prepare_for_create(default_crd(obj)))
    status = fe.invalid_error("CustomResourceDefinition", "apiextensions.k8s.io",
                              obj["metadata"]["name"], errors).status()
    expect = entry["expect"]
    assert (status["code"], status["reason"]) == (expect["code"], expect["reason"])
    assert status["message"] == expect["message"]
    assert [{"field": e.field, "reason": e.type.value} for e in errors] == expect["causes"]
