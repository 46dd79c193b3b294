"""Building blocks shared by the four kinds: base models, references, conditions, metadata.

Two base classes encode the API's strictness rules in one place:

* :class:`SpecModel` forbids unknown fields. The API server would silently *prune* an
  unknown field (a typo such as ``concurency``), so the user's intent would vanish
  without a word; rejecting it here (and in ``validate_manifest``) gives the same result
  as ``kubectl``'s strict field validation.
* :class:`StatusModel` ignores unknown fields, so an older operator can still read a
  status written by a newer one during a rolling upgrade.

Both use camelCase aliases on the wire and accept snake_case names in Python. Scalar
fields use pydantic's strict types (``StrictInt``, ``StrictBool``) so that ``paused: "yes"``
is an error, as it is for the API server, instead of being coerced to ``True``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

from headwater_operator.api.enums import ConditionStatus

FREE_FORM_SCHEMA: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
"""Schema of an object whose keys are not known in advance (parameters, pod patches)."""

FreeForm = Annotated[dict[str, Any], WithJsonSchema(FREE_FORM_SCHEMA)]
"""A JSON object kept as-is: the API server preserves every key under it."""

QUANTITY_PATTERN = (r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
                    r"([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
"""A non-negative resource quantity, from Kubernetes' quantity grammar (apimachinery
v0.32.9 ``pkg/api/resource/quantity.go``: ``<signedNumber><suffix>``, ``parseQuantityString``
and the suffixes of ``suffix.go`` ``newSuffixer``/``fastLookup``):

* a number ``<digits>``, ``<digits>.<digits>``, ``<digits>.`` or ``.<digits>`` (ASCII
  digits only: ``[0-9]``, not a digit class, which in Python also matches other scripts);
* then at most one suffix: binary ``Ki Mi Gi Ti Pi Ei``, decimal ``n u m k M G T P E``
  (decimal kilo is a lower-case ``k``: ``1K`` is refused, ``1Ki`` is binary), or an
  exponent ``e``/``E`` with an optionally signed integer (``1e3``, ``1E-3``).

The parser accepts a leading ``-`` too, but a container's requests and limits must be
``>= 0`` (kubernetes ``pkg/apis/core/validation/validation.go``
``ValidateNonnegativeQuantity``: "must be greater than or equal to 0"), and resources
are all Headwater uses quantities for, so only ``+`` is allowed here. Where the parser is
laxer still (``"."``, ``"+"`` or a bare ``"Ki"`` parse as zero), the pattern refuses:
those are mistakes, not quantities.
"""
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)


def check_quantity(value: int | str) -> int | str:
    """Accept a non-negative Kubernetes quantity: an integer or a string such as ``500m``.

    ``fullmatch``: Python's ``$`` also matches before a final newline, Go's does not.
    """
    if isinstance(value, str) and not _QUANTITY_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a quantity; use e.g. '500m', '2', '512Mi' or "
                         "'4Gi' (decimal kilo is a lower-case 'k', binary is 'Ki')")
    if isinstance(value, int) and value < 0:
        raise ValueError(f"{value} is negative; requests and limits must be >= 0")
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
        }
    ),
]
"""A Kubernetes resource quantity such as ``500m``, ``2Gi`` or ``1``."""

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class SpecModel(BaseModel):
    """Base of everything users write: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )


class StatusModel(BaseModel):
    """Base of everything the operator writes: camelCase aliases, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class OpenModel(BaseModel):
    """A Kubernetes object we describe only partly: declared fields checked, others kept.

    Used for core Kubernetes types (volumes, volume mounts) whose full schema would
    dwarf our own; the CRD marks them ``x-kubernetes-preserve-unknown-fields``.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class LocalObjectReference(SpecModel):
    """A reference to another object, by name, in the same namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the referenced object in the same namespace, e.g. `hello`.",
    )


class Condition(StatusModel):
    """One observation of an object's state, as in every Kubernetes API."""

    type: str = Field(description="Condition type in CamelCase, e.g. `Ready`.")
    status: ConditionStatus = Field(description="`True`, `False` or `Unknown`.")
    reason: str | None = Field(
        default=None,
        description="Machine-readable CamelCase reason for the last transition, e.g. "
        "`FlowNotFound`.",
    )
    message: str | None = Field(
        default=None, description="Human-readable explanation: what happened and what to do."
    )
    last_transition_time: datetime | None = Field(
        default=None, description="When the condition last changed status (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The `metadata.generation` the condition was computed from.",
    )


class OwnerReference(StatusModel):
    """A reference to the object that owns this one (used for garbage collection)."""

    api_version: str = Field(description="API version of the owner.")
    kind: str = Field(description="Kind of the owner.")
    name: str = Field(description="Name of the owner.")
    uid: str = Field(description="UID of the owner.")
    controller: bool | None = Field(default=None, description="True on the managing owner.")
    block_owner_deletion: bool | None = Field(
        default=None, description="True when the owner cannot be deleted before this object."
    )


class ObjectMeta(BaseModel):
    """The subset of Kubernetes object metadata Headwater reads; other keys are kept."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str | None = Field(default=None, description="Object name, unique in its namespace.")
    generate_name: str | None = Field(
        default=None, description="Prefix for a server-generated name when `name` is unset."
    )
    namespace: str | None = Field(default=None, description="Namespace of the object.")
    uid: str | None = Field(default=None, description="Server-assigned unique ID.")
    resource_version: str | None = Field(
        default=None, description="Opaque version for optimistic concurrency."
    )
    generation: int | None = Field(
        default=None, description="Incremented by the server on every spec change."
    )
    creation_timestamp: AwareDatetime | None = Field(
        default=None, description="When the object was created."
    )
    deletion_timestamp: AwareDatetime | None = Field(
        default=None, description="When deletion was requested, if it was."
    )
    # Collections default to None, not empty: a wire form with `finalizers: []` sent in an
    # update would silently remove other controllers' finalizers.
    labels: dict[str, str] | None = Field(default=None, description="Labels of the object.")
    annotations: dict[str, str] | None = Field(
        default=None, description="Annotations of the object."
    )
    owner_references: list[OwnerReference] | None = Field(
        default=None, description="Objects that own this one."
    )
    finalizers: list[str] | None = Field(default=None, description="Finalizers of the object.")
