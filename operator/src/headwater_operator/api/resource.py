"""The envelope every Headwater object shares: apiVersion, kind, metadata, spec, status.

Each kind also declares, as class variables, what the CRD generator needs beyond the
schema (plural, short names, printer columns, root-level CEL rules), so everything about
a kind lives next to its model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


@dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get`` output (CRD ``additionalPrinterColumns``)."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    description: str
    priority: int = 0
    format: str = ""
    """OpenAPI format hint (``name``, ``int64``, …); empty for none."""


def name_length_rule(kind: str, limit: int, why: str) -> dict[str, str]:
    """A root CEL rule (``ROOT_VALIDATIONS``): names of ``kind`` have at most ``limit``
    characters, because ``why``. A CRD schema may not restrict ``metadata`` itself, so the
    rule sits at the root, where ``self.metadata.name`` is reachable; the server reports
    root rules at no field, so the message names it."""
    return {"rule": f"!has(self.metadata.name) || self.metadata.name.size() <= {limit}",
            "message": f"metadata.name: {name_limit_message(kind, limit, why)}"}


def name_limit_message(kind: str, limit: int, why: str) -> str:
    """What :func:`name_length_rule` and the models say about a name that is too long."""
    return f"{kind} names are limited to {limit} characters {why}"


AGE_COLUMN = PrinterColumn(
    "Age", ".metadata.creationTimestamp", "date", "Time since the object was created."
)


class Resource(BaseModel):
    """Base of the four kinds. Subclasses add ``kind``, ``metadata``, ``spec`` and ``status``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]]
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = ()
    """CEL rules evaluated on the whole object (``self.metadata.name`` is reachable there)."""

    api_version: Literal["headwater.dev/v1alpha1"] = Field(
        default="headwater.dev/v1alpha1",
        description="APIVersion of this object: `headwater.dev/v1alpha1`.",
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as the Kubernetes API expects it: camelCase keys, JSON types, no nulls."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
