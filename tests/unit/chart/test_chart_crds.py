"""The chart installs exactly the generated CRDs, guarded by crds.install and crds.keep.

Comparison is of parsed objects, not bytes: the template re-serializes each CRD (to add
the release's labels and the keep annotation), so key order and quoting change while
the object the API server receives must not. Everything except those added labels and
annotations must be equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from chartkit import CHART_DIR, REPO_ROOT, Manifest, Render

CHART_LABELS = {
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
}
KEEP = "helm.sh/resource-policy"


def _generated_crds() -> dict[str, Manifest]:
    crds: dict[str, Manifest] = {}
    for path in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                crds[doc["metadata"]["name"]] = doc
    return crds


def _without_chart_metadata(crd: Manifest, original: Manifest) -> Manifest:
    """``crd`` minus the labels/annotations the chart adds (unless the original had them)."""
    meta: dict[str, Any] = crd["metadata"]
    orig_meta = original["metadata"]
    for field, added in (("labels", CHART_LABELS), ("annotations", {KEEP})):
        kept = {
            k: v
            for k, v in meta.get(field, {}).items()
            if k not in added or k in orig_meta.get(field, {})
        }
        if kept:
            meta[field] = kept
        else:
            meta.pop(field, None)
    return crd


def _headwater_crds(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {
        m["metadata"]["name"]: m
        for m in manifests
        if m["kind"] == "CustomResourceDefinition" and m["spec"]["group"] == "headwater.dev"
    }


def test_rendered_crds_equal_the_generated_ones(render: Render) -> None:
    generated = _generated_crds()
    assert set(generated) == {
        "flows.headwater.dev",
        "deployments.headwater.dev",
        "schedules.headwater.dev",
        "flowruns.headwater.dev",
        "blocks.headwater.dev",
        "variables.headwater.dev",
        "concurrencylimits.headwater.dev", "automations.headwater.dev",
    }
    rendered = _headwater_crds(render())
    assert set(rendered) == set(generated)
    for name, crd in rendered.items():
        assert _without_chart_metadata(crd, generated[name]) == generated[name], name


def test_chart_copy_of_crds_is_byte_identical_to_crds_dir() -> None:
    # The chart can only read files inside itself, hence the copy; it must never drift.
    copies = {p.name: p.read_bytes() for p in (CHART_DIR / "files" / "crds").glob("*.yaml")}
    originals = {p.name: p.read_bytes() for p in (REPO_ROOT / "crds").glob("*.yaml")}
    assert copies == originals, "regenerate with `python -m headwater_operator.crdgen`"


def test_crds_are_kept_on_uninstall_by_default(render: Render) -> None:
    crds = [m for m in render({"replicas": 2}) if m["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 8  # the eight Headwater kinds, and nothing else with HA
    for crd in crds:
        assert crd["metadata"]["annotations"][KEEP] == "keep", crd["metadata"]["name"]
        assert crd["metadata"]["labels"]["app.kubernetes.io/instance"] == "hw"


def test_crds_keep_false_lets_uninstall_delete_them(render: Render) -> None:
    crds = [
        m
        for m in render({"crds": {"install": True, "keep": False}})
        if m["kind"] == "CustomResourceDefinition"
    ]
    assert len(crds) == 8
    for crd in crds:
        assert KEEP not in crd["metadata"].get("annotations", {}), crd["metadata"]["name"]


def test_crds_install_false_renders_no_crds(render: Render) -> None:
    manifests = render({"crds": {"install": False, "keep": True}})
    assert [m for m in manifests if m["kind"] == "CustomResourceDefinition"] == []
    # ...while the operator itself is still installed.
    assert [m["kind"] for m in manifests if m["kind"] == "Deployment"] == ["Deployment"]


def test_crd_files_are_single_documents() -> None:
    # The template reads each file with fromYaml, which sees only one document.
    for path in Path(CHART_DIR / "files" / "crds").glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(docs) == 1, f"{path.name} holds {len(docs)} documents"
