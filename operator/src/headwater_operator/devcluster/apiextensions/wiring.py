"""Where the emulator takes its CRD checks and built-in OpenAPI definitions from.

INTEGRATION SCAFFOLD: the CRD validation, the CRD defaulting and the pinned built-in
definitions are being written in parallel branches; this module is replaced when they
land, and nothing may ship while it still holds these placeholders.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from headwater_operator.devcluster.fielderrors import FieldError
from headwater_operator.devcluster.resources import ResourceSpec


def validate_crd(crd: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[FieldError]:
    """Placeholder until the CRD validation lands."""
    return []


def default_crd(crd: Mapping[str, Any]) -> dict[str, Any]:
    """Placeholder until the CRD defaulting lands."""
    return copy.deepcopy(dict(crd))


def builtin_openapi() -> tuple[Mapping[str, Any], Any]:
    """Placeholder until the pinned definitions land: no built-in schemas."""
    def definition_of(spec: ResourceSpec) -> str | None:
        return None
    return {}, definition_of
