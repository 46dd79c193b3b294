"""``Variable``: one named JSON value (Prefect's Variables), kept in the cluster.

A variable's name is what flows pass to ``Variable.get``; it may hold ``_``, which an
object name may not. :func:`variable_object_name` maps it to the object's name, one way
and without collisions: a name that is already a valid object name is used as it is;
any other gets a readable stem plus a hash of the whole name, and the variable's own
name is kept in ``spec.name`` (whoever reads the object checks it, so a hand-made
object that happens to have the derived name is never mistaken for the variable).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, WithJsonSchema, model_validator

from headwater_operator.api.common import (
    DNS_SUBDOMAIN_PATTERN,
    ObjectMeta,
    SpecModel,
    StatusModel,
)
from headwater_operator.api.errors import FieldValueError
from headwater_operator.api.resource import AGE_COLUMN, PrinterColumn, Resource

VARIABLE_NAME_PATTERN = r"^[a-z0-9_-]+$"
"""Variable names as Prefect 3 allows them: lowercase letters, digits, ``_`` and ``-``."""
VARIABLE_NAME_MAX_LENGTH = 255
_STEM_LENGTH = 200
_HASH_LENGTH = 10
_SUBDOMAIN_RE = re.compile(DNS_SUBDOMAIN_PATTERN)
_VARIABLE_NAME_RE = re.compile(VARIABLE_NAME_PATTERN)

JsonAny = Annotated[
    Any,
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True, "nullable": True}),
]
"""Any JSON value (object, list, string, number, boolean or null), kept as it is."""


def check_variable_name(name: str) -> str:
    """Accept a variable name; a ValueError names the rule otherwise."""
    if not (0 < len(name) <= VARIABLE_NAME_MAX_LENGTH) or not _VARIABLE_NAME_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid variable name: use at most "
                         f"{VARIABLE_NAME_MAX_LENGTH} lowercase letters, digits, '_' and "
                         "'-', e.g. 'last_sync'")
    return name


def variable_object_name(name: str) -> str:
    """The name of the Variable object that holds variable ``name``.

    ``name`` itself when it is a valid object name (a DNS-1123 subdomain); otherwise
    (``_``, a leading or trailing ``-``) its ``_`` replaced by ``-`` and trimmed, plus
    ``-`` and the first 10 hex digits of its SHA-256, so ``last_sync`` and ``last-sync``
    are two objects: ``last-sync-<hash>`` and ``last-sync``.
    """
    if _SUBDOMAIN_RE.fullmatch(name) and len(name) <= 253:
        return name
    stem = name.replace("_", "-").strip("-")[:_STEM_LENGTH].strip("-") or "variable"
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_LENGTH]
    return f"{stem}-{digest}"


class VariableSpec(SpecModel):
    """A variable's value, and its name when the object's name cannot be it."""

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=VARIABLE_NAME_MAX_LENGTH,
        pattern=VARIABLE_NAME_PATTERN,
        description="The variable's name when it is not the object's (one with `_`, e.g. "
        "`last_sync`, is kept in an object named `last-sync-<hash>`; the CLI and "
        "`Variable.set` choose it). Unset: the variable is named as the object.",
    )
    value: JsonAny = Field(
        description="The value: any JSON (object, list, string, number, boolean, null), "
        "e.g. `{since: '2026-01-01'}`."
    )


class VariableStatus(StatusModel):
    """Observed state of a Variable (the operator writes none today)."""


class Variable(Resource):
    """A named JSON value that flows read with `Variable.get` (Prefect's Variables)."""

    KIND: ClassVar[str] = "Variable"
    PLURAL: ClassVar[str] = "variables"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwvar", "hwv")
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (AGE_COLUMN,)

    kind: Literal["Variable"] = Field(
        default="Variable", description="Kind of this object: `Variable`."
    )
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: VariableSpec = Field(description="Desired state: the value.")
    status: VariableStatus = Field(
        default_factory=VariableStatus, description="Observed state (none is written today)."
    )

    @model_validator(mode="after")
    def _name_matches_object(self) -> Variable:
        name, object_name = self.spec.name, self.metadata.name
        if name is not None and object_name and variable_object_name(name) != object_name:
            raise FieldValueError("spec.name", (
                f"variable {name!r} belongs in an object named "
                f"{variable_object_name(name)!r}, not {object_name!r}; rename the object or "
                "drop spec.name"))
        return self

    @property
    def variable_name(self) -> str:
        """The variable's name: ``spec.name``, else the object's."""
        return self.spec.name or self.metadata.name or ""
