"""Headwater's own CRDs pass; the ones it shipped before the root-metadata fix are refused.

The refusal's path is ``spec.validation.openAPIV3Schema…``: the v1 object is converted to
the internal form before validation, and a single version's schema moves to the top
level (apiextensions-apiserver v0.32.9 pkg/apis/apiextensions/v1/conversion.go); Kubernetes'
own TestNonStructuralSchemaConditionForCRDV1 expects the same prefix for v1 creates.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from crdval_helpers import create_errors

REPO = Path(__file__).resolve().parents[3]
CRD_FILES = sorted((REPO / "crds").glob("*.yaml")) + sorted(
    (REPO / "charts" / "headwater" / "files" / "crds").glob("*.yaml"))
# The commit that removed the root metadata description: its parent shipped it.
METADATA_FIX = "a30ef65"


def _crds(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text)
            if doc and doc.get("kind") == "CustomResourceDefinition"]


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_headwater_crds_are_accepted(path: Path) -> None:
    (crd,) = _crds(path.read_text())
    assert create_errors(crd) == []


def test_the_crds_before_the_metadata_fix_are_refused() -> None:
    names = ["deployments", "flowruns", "flows", "schedules"]
    for name in names:
        text = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{METADATA_FIX}~1:crds/{name}.headwater.dev.yaml"],
            capture_output=True, text=True, check=True).stdout
        (crd,) = _crds(text)
        assert create_errors(crd) == [
            "spec.validation.openAPIV3Schema.properties[metadata]: Forbidden: must not specify "
            "anything other than name and generateName, but metadata is implicitly specified"]
