"""kustomize ``images:`` rewrites ``Flow.spec.image`` (issue #10 item 10), checked with
the real kustomize embedded in kubectl 1.32 (kustomize v5.5.0).

kustomize's images transformer only rewrites the fields its configuration names, by
default containers' and initContainers' ``image`` (kubernetes-sigs/kustomize
examples/transformerconfigs/README.md, "Images transformer"); a Flow's ``spec.image``
needs a field spec ``{kind: Flow, path: spec/image}`` in a ``configurations`` file.
The repository ships it as the Component ``examples/components/flow-images``; the
examples include it, and transformer configurations of included kustomizations and
components are merged into the including one (api/internal/target/kusttarget.go
``accumulateDirectory`` merges each sub-accumulator, ``runTransformers`` configures the
built-in transformers from the merged config), so an overlay needs only ``images:``.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import REPO_ROOT
from pinned_tools import pinned_tool

EXAMPLES = REPO_ROOT / "examples"
COMPONENT = EXAMPLES / "components" / "flow-images"
RUNTIME = "ghcr.io/headwater-dev/headwater-runtime"
OVERRIDE = {"name": RUNTIME, "newName": "registry.example.com/data/flows", "newTag": "1.4.0"}


@functools.cache
def _kubectl() -> str:
    return pinned_tool("kubectl")


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([_kubectl(), "kustomize", str(directory)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"kubectl kustomize {directory}:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def _overlay(tmp_path: Path, **kustomization: Any) -> Path:
    # kustomize refuses absolute paths; directories outside the root are allowed.
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return tmp_path


def _rel(tmp_path: Path, target: Path) -> str:
    return os.path.relpath(target, tmp_path)


def _flow_images(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {d["metadata"]["name"]: d["spec"]["image"] for d in docs if d["kind"] == "Flow"}


@pytest.mark.parametrize("example", ["quickstart", "pipeline", "assets"])
def test_an_overlay_of_an_example_rewrites_its_flow_image(tmp_path: Path, example: str) -> None:
    original = _kustomize(EXAMPLES / example)
    overlay = _overlay(tmp_path, resources=[_rel(tmp_path, EXAMPLES / example)],
                       images=[OVERRIDE])
    docs = _kustomize(overlay)
    flows = _flow_images(docs)
    assert flows, f"examples/{example} has no Flow"
    assert set(flows.values()) == {"registry.example.com/data/flows:1.4.0"}
    # Nothing else changes.
    assert [d for d in docs if d["kind"] != "Flow"] == [
        d for d in original if d["kind"] != "Flow"]


def test_the_component_teaches_images_about_any_flow(tmp_path: Path) -> None:
    flow = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow",
            "metadata": {"name": "ingest"},
            "spec": {"image": "ghcr.io/acme/flows:1", "entrypoint": "flows.ingest:ingest"}}
    (tmp_path / "flow.yaml").write_text(yaml.safe_dump(flow))
    digest = "sha256:" + "a" * 64
    pinned = {"name": "ghcr.io/acme/flows", "digest": digest}
    bare = _overlay(tmp_path, resources=["flow.yaml"], images=[pinned])
    # Without the field spec kustomize leaves a Flow alone: what the docs used to promise
    # did not happen.
    assert _flow_images(_kustomize(bare)) == {"ingest": "ghcr.io/acme/flows:1"}
    taught = _overlay(tmp_path, resources=["flow.yaml"], images=[pinned],
                      components=[_rel(tmp_path, COMPONENT)])
    assert _flow_images(_kustomize(taught)) == {"ingest": f"ghcr.io/acme/flows@{digest}"}


def test_an_images_entry_in_an_example_itself_rewrites_its_flow(tmp_path: Path) -> None:
    # What the documented `kustomize edit set image` writes into the example.
    copy = tmp_path / "examples"
    shutil.copytree(EXAMPLES, copy)
    kustomization = copy / "quickstart" / "kustomization.yaml"
    data = yaml.safe_load(kustomization.read_text())
    data["images"] = [{"name": RUNTIME, "newName": "localhost:5000/flows", "newTag": "dev"}]
    kustomization.write_text(yaml.safe_dump(data))
    assert _flow_images(_kustomize(copy / "quickstart")) == {
        "hello": "localhost:5000/flows:dev"}
