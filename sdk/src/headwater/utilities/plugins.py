"""Backends other distributions provide through entry points (the ``kubernetes`` block
store and concurrency backend come with headwater-operator); the SDK imports none of them.
"""

from __future__ import annotations

from typing import Any


def load_plugin(group: str, name: str, *, setting: str, what: str, choices: str,
                error: type[Exception]) -> Any:
    """The object registered as ``name`` in entry-point ``group``, which ``setting`` (an
    environment variable) chose; ``error`` naming the fix when nothing is registered:
    ``pip install headwater-operator`` for ``kubernetes``, else the ``choices``."""
    from importlib.metadata import entry_points

    found = entry_points(group=group, name=name)
    if found:
        return next(iter(found)).load()
    if name == "kubernetes":
        raise error(f"{setting}=kubernetes needs the Kubernetes {what}, which "
                    "headwater-operator provides: pip install headwater-operator (it "
                    f"registers 'kubernetes' in the entry-point group {group!r})")
    raise error(f"{setting}={name!r} names no {what}: use {choices}, or install the "
                f"package that registers {name!r} in the entry-point group {group!r}")
