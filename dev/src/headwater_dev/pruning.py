"""The store's entry to structural pruning, which lives in :mod:`.apiextensions.pruning`.

Kept so the callers written against ``prune_resource(obj, schema)`` keep working; new
code calls :func:`headwater_dev.apiextensions.pruning.prune`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headwater_dev.apiextensions.pruning import prune


def prune_resource(obj: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Prune a whole custom resource by its ``openAPIV3Schema`` (a new object)."""
    return prune(schema, obj)


__all__ = ["prune_resource"]
