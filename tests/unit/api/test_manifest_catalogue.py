"""Every example manifest is valid; every manifest in invalid/ is rejected, naming the field.

Each file in ``invalid/`` starts with comment lines:

* ``# layer: schema|cel|model|envelope`` — the first layer that must reject it. ``schema``
  and ``cel`` mean the API server itself refuses it on ``kubectl apply``; ``model`` means
  only Headwater (operator, CLI) can tell, e.g. a cron expression that does not parse.
* ``# expect: <text>`` — a substring of the error line, which starts with the field path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater.contract import API_VERSION
from headwater_operator.api import KINDS, parse_resource
from headwater_operator.api.validation import (
    cel_errors,
    model_errors,
    schema_errors,
    validate_manifest,
)

REPO = Path(__file__).resolve().parents[3]
INVALID_DIR = Path(__file__).parent / "invalid"


def _example_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((REPO / "examples").rglob("*.y*ml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if isinstance(doc, dict) and doc.get("apiVersion") == API_VERSION:
                docs.append((f"{path.relative_to(REPO)}#{index}", doc))
    return docs


EXAMPLES = _example_docs()


def test_examples_cover_every_kind() -> None:
    assert {doc["kind"] for _, doc in EXAMPLES} >= set(KINDS)


@pytest.mark.parametrize(("where", "doc"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_passes_schema_cel_and_models(where: str, doc: dict[str, Any]) -> None:
    assert schema_errors(doc) == []
    assert cel_errors(doc) == []
    assert model_errors(doc) == []
    assert validate_manifest(doc) == []
    assert parse_resource(doc).kind == doc["kind"]


def _header(path: Path, key: str) -> str:
    match = re.search(rf"^# {key}: (.+)$", path.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, f"{path.name} lacks a '# {key}:' header line"
    return match.group(1).strip()


INVALID = sorted(INVALID_DIR.glob("*.yaml"))


def test_catalogue_is_broad() -> None:
    assert len(INVALID) >= 20
    kinds = {yaml.safe_load(p.read_text(encoding="utf-8"))["kind"] for p in INVALID}
    assert kinds >= set(KINDS)
    layers = {_header(p, "layer") for p in INVALID}
    assert layers >= {"schema", "cel", "model"}


def _matching(errors: list[str], expect: str) -> list[str]:
    return [line for line in errors if expect in line]


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_manifest_is_rejected_naming_the_field(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    expect, layer = _header(path, "expect"), _header(path, "layer")
    field = expect.split(": ", 1)[0]

    errors = validate_manifest(doc)
    assert _matching(errors, expect), f"{path.name}: {expect!r} not in {errors}"
    assert any(line.startswith(f"{field}: ") for line in errors)

    if layer == "envelope":
        return
    # The models are the source of truth: whatever the CRD rejects, they reject too.
    assert model_errors(doc), f"{path.name}: the pydantic models accept it"
    if layer == "schema":
        assert _matching(schema_errors(doc), expect)
    elif layer == "cel":
        assert schema_errors(doc) == []
        assert _matching(cel_errors(doc), expect)
    else:
        # Only Headwater can catch these; the API server would accept the object.
        assert schema_errors(doc) == []
        assert cel_errors(doc) == []
        assert _matching(model_errors(doc), expect)


def test_validate_manifest_rejects_non_objects_and_foreign_api_versions() -> None:
    assert validate_manifest(["not", "a", "mapping"]) == [
        "<root>: expected a Kubernetes object (a mapping), got list"
    ]
    errors = validate_manifest({"apiVersion": "batch/v1", "kind": "CronJob"})
    assert errors[0].startswith("apiVersion: expected 'headwater.dev/v1alpha1'")


def test_model_errors_are_not_repeated_for_fields_the_schema_reported() -> None:
    doc = {
        "apiVersion": API_VERSION,
        "kind": "FlowRun",
        "metadata": {"name": "r"},
        "spec": {"deploymentRef": {"name": "hello"}, "retries": -1},
    }
    errors = validate_manifest(doc)
    assert [line for line in errors if line.startswith("spec.retries:")] == [
        "spec.retries: -1 is less than the minimum of 0"
    ]
