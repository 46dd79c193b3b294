"""Make the ``kubernetes`` block store findable as headwater-operator declares it.

The SDK finds store plugins through ``importlib.metadata`` entry points (group
``headwater.stores``). headwater-operator declares ``kubernetes`` in
operator/pyproject.toml; an environment installed from an older checkout has the
distribution's metadata without it until it is reinstalled (``scripts/bootstrap.sh``).
:func:`registered_store_path` returns a directory holding a distribution whose
``entry_points.txt`` is exactly that declaration, read from the pyproject, to put on
``sys.path`` (or a child's ``PYTHONPATH``); None when the installed metadata already
has it. Either way the SDK loads the plugin the pyproject names, by its real mechanism.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

GROUP = "headwater.stores"
NAME = "kubernetes"
PYPROJECT = Path(__file__).resolve().parents[2] / "operator" / "pyproject.toml"


def declared_entry_point() -> str:
    """The ``kubernetes`` entry point operator/pyproject.toml declares."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    value: str = project["entry-points"][GROUP][NAME]
    return value


def registered_store_path(directory: Path) -> Path | None:
    """A directory (created under ``directory``) whose metadata registers the store; None
    when the installed headwater-operator already does."""
    declared = declared_entry_point()
    if any(ep.value == declared for ep in entry_points(group=GROUP, name=NAME)):
        return None
    info = directory / "headwater_operator_stores-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: headwater-operator-stores\nVersion: 0\n",
        encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{NAME} = {declared}\n",
                                           encoding="utf-8")
    return directory
