"""Make the plugins headwater-operator declares findable as operator/pyproject.toml says.

The SDK finds its plugins through ``importlib.metadata`` entry points: block/variable
stores in the group ``headwater.stores``, concurrency backends in
``headwater.concurrency``; headwater-operator declares ``kubernetes`` in both in
operator/pyproject.toml. An environment installed from an older checkout has the
distribution's metadata without them until it is reinstalled (``scripts/bootstrap.sh``).
:func:`registered_entry_point_path` returns a directory holding a distribution whose
``entry_points.txt`` is exactly that declaration, read from the pyproject, to put on
``sys.path`` (or a child's ``PYTHONPATH``); None when the installed metadata already
has it. Either way the SDK loads the plugin the pyproject names, by its real mechanism.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

GROUP = "headwater.stores"
CONCURRENCY_GROUP = "headwater.concurrency"
NAME = "kubernetes"
PYPROJECT = Path(__file__).resolve().parents[2] / "operator" / "pyproject.toml"


def declared_entry_point(group: str = GROUP, name: str = NAME) -> str:
    """The entry point ``name`` of ``group`` that operator/pyproject.toml declares."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    value: str = project["entry-points"][group][name]
    return value


def registered_entry_point_path(directory: Path, group: str = GROUP,
                                name: str = NAME) -> Path | None:
    """A directory (created under ``directory``) whose metadata registers entry point
    ``name`` of ``group``; None when the installed headwater-operator already does."""
    declared = declared_entry_point(group, name)
    if any(ep.value == declared for ep in entry_points(group=group, name=name)):
        return None
    slug = group.replace(".", "_").replace("-", "_")
    info = directory / f"headwater_operator_{slug}-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: headwater-operator-{slug.replace('_', '-')}\n"
        "Version: 0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {declared}\n",
                                           encoding="utf-8")
    return directory


def registered_store_path(directory: Path) -> Path | None:
    """As :func:`registered_entry_point_path` for the ``kubernetes`` block store."""
    return registered_entry_point_path(directory, GROUP, NAME)
