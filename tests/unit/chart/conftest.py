"""Fixtures for the Helm chart tests: a real helm binary and cached `helm template` runs.

The helm and kubectl binaries are installed by ``scripts/install-helm.sh`` from session
fixtures (``pinned_tools``), so a bare ``pytest`` works on a fresh clone. If that install
fails the tests FAIL (they are never skipped): CI must prove the chart renders.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartkit import (
    CHART_DIR,
    NAMESPACE,
    RELEASE,
    SCENARIOS,
    Manifest,
    Render,
    RenderError,
)
from pinned_tools import pinned_tool


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the pinned helm binary (installed on first use)."""
    return pinned_tool("helm")


@pytest.fixture(scope="session")
def kubectl() -> str:
    """Path of the pinned kubectl 1.32 binary (installed on first use)."""
    return pinned_tool("kubectl")


def _run_template(
    helm: str, values: dict[str, Any], workdir: Path
) -> subprocess.CompletedProcess[str]:
    values_file = workdir / f"values-{abs(hash(json.dumps(values, sort_keys=True)))}.json"
    # JSON is YAML, and it keeps types exact (no "yes" → true surprises).
    values_file.write_text(json.dumps(values))
    return subprocess.run(
        [
            helm,
            "template",
            RELEASE,
            str(CHART_DIR),
            "--namespace",
            NAMESPACE,
            "--values",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def render(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """Render the chart with ``values`` and return its manifests (cached per values)."""
    workdir = tmp_path_factory.mktemp("helm-values")
    cache: dict[str, list[Manifest]] = {}

    def _render(values: dict[str, Any] | None = None) -> list[Manifest]:
        key = json.dumps(values or {}, sort_keys=True)
        if key not in cache:
            proc = _run_template(helm, values or {}, workdir)
            assert proc.returncode == 0, f"helm template failed for {key}:\n{proc.stderr}"
            cache[key] = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
        # Copies, so a test that mutates a manifest cannot corrupt another test's view.
        copied: list[Manifest] = json.loads(json.dumps(cache[key]))
        return copied

    return _render


@pytest.fixture(scope="session")
def render_error(helm: str, tmp_path_factory: pytest.TempPathFactory) -> RenderError:
    """Render the chart with ``values`` that must be rejected; return helm's error text."""
    workdir = tmp_path_factory.mktemp("helm-bad-values")

    def _render_error(values: dict[str, Any]) -> str:
        proc = _run_template(helm, values, workdir)
        assert proc.returncode != 0, f"helm template accepted invalid values {values}"
        return proc.stderr

    return _render_error


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that asks for ``scenario`` once per entry of :data:`SCENARIOS`."""
    if "scenario" in metafunc.fixturenames:
        metafunc.parametrize("scenario", list(SCENARIOS), ids=list(SCENARIOS))


@pytest.fixture
def scenario_manifests(scenario: str, render: Render) -> list[Manifest]:
    """The manifests of the chart rendered with the values of ``scenario``."""
    return render(SCENARIOS[scenario])
