"""``ConcurrencyLimit``: a concurrency or rate limit shared by every pod of a namespace.

The object's name is the limit's name, as flows pass it to ``concurrency()`` and
``rate_limit()``. It declares the limit; the slots are ``coordination.k8s.io/v1`` Leases
``hw-limit-<name>-<slot>`` that the flow-run pods create, renew and delete themselves
(``headwater_operator.leaselimits``, docs/concurrency.md). The operator never reads or
writes it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, field_validator

from headwater_operator.api.common import ObjectMeta, SpecModel, StatusModel
from headwater_operator.api.errors import FieldValueError
from headwater_operator.api.resource import (
    AGE_COLUMN,
    PrinterColumn,
    Resource,
    name_length_rule,
    name_limit_message,
)

CONCURRENCY_LIMIT_NAME_MAX_LENGTH = 200
"""Longest limit name: its Leases ``hw-limit-<name>-<slot>`` must stay within the 253
characters of an object name (a DNS-1123 subdomain)."""
_NAME_LIMIT_WHY = "so that the names of their Leases (hw-limit-<name>-<slot>) fit in 253"


class ConcurrencyLimitSpec(SpecModel):
    """How many slots the limit has, and how fast taken slots decay."""

    limit: StrictInt = Field(
        ge=0,
        description="Number of slots. A `concurrency()` block holds `occupy` slots while it "
        "runs; 0 lets nothing through.",
    )
    slot_decay_per_second: StrictFloat = Field(
        default=0.0,
        ge=0,
        description="Slots a `rate_limit()` call takes come free at this rate (a rate "
        "limit); 0 (the default): no decay, `rate_limit()` refuses the limit.",
    )
    active: StrictBool = Field(
        default=True,
        description="An inactive limit never blocks: `concurrency()` and `rate_limit()` "
        "take no slot. Default true.",
    )


class ConcurrencyLimitStatus(StatusModel):
    """Observed state of a ConcurrencyLimit (none is written: its Leases are the slots)."""


class ConcurrencyLimit(Resource):
    """A named concurrency or rate limit shared by the pods of the namespace (Prefect's
    global concurrency limits)."""

    KIND: ClassVar[str] = "ConcurrencyLimit"
    PLURAL: ClassVar[str] = "concurrencylimits"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwcl", "hwlimit")
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Limit", ".spec.limit", "integer", "Number of slots."),
        PrinterColumn("Decay", ".spec.slotDecayPerSecond", "number",
                      "Slots freed per second (rate limits)."),
        AGE_COLUMN,
    )
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = (
        name_length_rule("ConcurrencyLimit", CONCURRENCY_LIMIT_NAME_MAX_LENGTH,
                         _NAME_LIMIT_WHY),
    )

    kind: Literal["ConcurrencyLimit"] = Field(
        default="ConcurrencyLimit", description="Kind of this object: `ConcurrencyLimit`."
    )
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Standard metadata.")
    spec: ConcurrencyLimitSpec = Field(description="Desired state: slots and decay.")
    status: ConcurrencyLimitStatus = Field(
        default_factory=ConcurrencyLimitStatus,
        description="Observed state (none is written today).",
    )

    @field_validator("metadata")
    @classmethod
    def _lease_sized_name(cls, meta: ObjectMeta) -> ObjectMeta:
        if meta.name is not None and len(meta.name) > CONCURRENCY_LIMIT_NAME_MAX_LENGTH:
            raise FieldValueError("name", name_limit_message(
                "ConcurrencyLimit", CONCURRENCY_LIMIT_NAME_MAX_LENGTH, _NAME_LIMIT_WHY) + (
                f"; {meta.name[:20]!r}... has {len(meta.name)}"))
        return meta
