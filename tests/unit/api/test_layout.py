"""``operator/`` must never shadow the standard library's ``operator`` module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_operator_directory_is_not_a_python_package() -> None:
    assert (REPO / "operator" / "pyproject.toml").exists()
    assert not (REPO / "operator" / "__init__.py").exists()


def test_stdlib_operator_and_both_packages_import_from_the_repo_root() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import operator, headwater_operator, headwater; operator.add"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
