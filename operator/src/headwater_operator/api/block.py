"""``Block``: a block document (typed, reusable configuration) kept in the cluster.

A Block holds what every block store holds for one block (docs/blocks.md, "The block
document"): the block's Python type, its non-secret fields (``data``), the fields whose
value is another Block (``blockRefs``, by name, in the same namespace) and the fields
whose value is secret (``secretRefs``: a key of a Kubernetes Secret). Secret *values* are
never in a Block: they stay in Secrets, so external-secrets and sealed-secrets can make
them, and the operator projects them into the flow-run pods of the Deployments that
declare the block (``Deployment.spec.blocks``).

What it must respect: a block's name is a DNS-1123 label (it names the block's directory
in the pod's mount and its Secret's ``headwater.dev/block`` label value), and a field
name is a Python identifier that appears in at most one of ``data``, ``blockRefs`` and
``secretRefs`` (it names a file in the mount, and the SDK's model sets it from one place).
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from headwater_operator.api.common import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    FreeForm,
    ObjectMeta,
    SpecModel,
    StatusModel,
)
from headwater_operator.api.errors import FieldValueError
from headwater_operator.api.resource import AGE_COLUMN, PrinterColumn, Resource

BLOCK_NAME_MAX_LENGTH = 63
"""A block's name is a DNS-1123 label: it is the value of its Secret's
``headwater.dev/block`` label, and label values have at most 63 characters (apimachinery
v0.32.9 pkg/util/validation/validation.go ``LabelValueMaxLength``)."""
_NAME_RULE = ("Block names are DNS-1123 labels: at most 63 lowercase letters, digits and "
              "'-', starting and ending with a letter or digit, e.g. 'warehouse'")

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
TYPE_PATTERN = rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$"
"""A block type: the Python class path ``module:QualName``, e.g. ``mypkg.blocks:Warehouse``."""
BLOCK_TYPE_RULE = ("a block type is the block's Python class path 'module:QualName', e.g. "
                   "'mypkg.blocks:SnowflakePandas' or 'headwater.blocks.system:JSON'")
FIELD_PATTERN = rf"^{_IDENTIFIER}$"
"""A block field: a Python identifier (it names a file in the pod's mount)."""
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
"""A Secret's data key (apimachinery pkg/util/validation ``IsConfigMapKey``)."""
MAX_REFERENCES = 64
"""At most this many nested blocks or secret fields per block: a bound the API server's
CEL cost estimate needs for the rules on the keys, and more than any block type has."""

_FIELD_RE = re.compile(FIELD_PATTERN)
_KEYS_RULE: dict[str, JsonValue] = {"rule": f"self.all(k, k.matches('{FIELD_PATTERN}'))",
              "message": "keys are field names: Python identifiers such as 'password'"}


def check_block_name(name: str) -> str:
    """Accept a block name (a DNS-1123 label); a ValueError names the rule otherwise."""
    if len(name) > BLOCK_NAME_MAX_LENGTH or not re.fullmatch(DNS_LABEL_PATTERN[1:-1], name):
        raise ValueError(f"{name!r} is not a valid block name: {_NAME_RULE}")
    return name


class BlockReference(SpecModel):
    """A nested block: another Block in the same namespace, by name."""

    name: str = Field(
        min_length=1,
        max_length=BLOCK_NAME_MAX_LENGTH,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the Block in the same namespace, e.g. `sf-creds`.",
    )


class SecretKeyReference(SpecModel):
    """Where a secret field's value is kept: one key of a Secret in the same namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the Secret in the same namespace, e.g. `warehouse-block`.",
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="The key in the Secret's `data` holding the value, e.g. `password`.",
    )


class BlockSpec(SpecModel):
    """Desired state of a Block: its type and fields (secret values stay in Secrets)."""

    type: str = Field(
        min_length=3,
        max_length=512,
        pattern=TYPE_PATTERN,
        description="The block's Python class, `module:QualName`, e.g. "
        "`headwater.blocks.system:JSON` or `mypkg.blocks:SnowflakePandas`. `Block.load` "
        "checks it is the class it is called on.",
    )
    data: FreeForm = Field(
        default_factory=dict,
        description="The non-secret fields, as JSON, e.g. `{account: xy12345, schema: raw}`.",
    )
    block_refs: dict[str, BlockReference] = Field(
        default_factory=dict,
        max_length=MAX_REFERENCES,
        json_schema_extra={"x-kubernetes-validations": [_KEYS_RULE]},
        description="Fields whose value is another Block, by name, in the same namespace: "
        "field name → `{name: <block>}`, e.g. `{connector: {name: sf-creds}}`. Loaded "
        "with the block, recursively.",
    )
    secret_refs: dict[str, SecretKeyReference] = Field(
        default_factory=dict,
        max_length=MAX_REFERENCES,
        json_schema_extra={"x-kubernetes-validations": [_KEYS_RULE]},
        description="Fields whose value is secret: field name → the Secret key holding it, "
        "e.g. `{password: {name: warehouse-block, key: password}}`. Values never appear "
        "in the Block; flow-run pods get them as files.",
    )

    @field_validator("block_refs", "secret_refs")
    @classmethod
    def _field_names(cls, refs: dict[str, object]) -> dict[str, object]:
        for field in refs:
            if not _FIELD_RE.fullmatch(field):
                raise FieldValueError(field, f"{field!r} is not a field name: use a Python "
                                      "identifier such as 'password'")
        return refs

    @model_validator(mode="after")
    def _one_place_per_field(self) -> BlockSpec:
        places = {"data": set(self.data), "blockRefs": set(self.block_refs),
                  "secretRefs": set(self.secret_refs)}
        seen: dict[str, str] = {}
        for place, fields in places.items():
            for field in sorted(fields):
                if field in seen:
                    raise ValueError(f"field {field!r} is in both spec.{seen[field]} and "
                                     f"spec.{place}; keep it in one of them")
                seen[field] = place
        return self


class BlockStatus(StatusModel):
    """Observed state of a Block (the operator writes none today)."""


class Block(Resource):
    """A block: typed, reusable configuration; secret fields are kept in Secrets."""

    KIND: ClassVar[str] = "Block"
    PLURAL: ClassVar[str] = "blocks"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hwblock", "hwb")
    PRINTER_COLUMNS: ClassVar[tuple[PrinterColumn, ...]] = (
        PrinterColumn("Type", ".spec.type", "string", "The block's Python class."),
        AGE_COLUMN,
    )
    ROOT_VALIDATIONS: ClassVar[tuple[dict[str, str], ...]] = (
        {"rule": "!has(self.metadata.name) || (self.metadata.name.size() <= "
                 f"{BLOCK_NAME_MAX_LENGTH} && self.metadata.name.matches("
                 f"'{DNS_LABEL_PATTERN}'))",
         "message": f"metadata.name: {_NAME_RULE}"},
    )

    kind: Literal["Block"] = Field(default="Block", description="Kind of this object: `Block`.")
    metadata: ObjectMeta = Field(
        default_factory=ObjectMeta, description="Standard metadata; the name is the block's."
    )
    spec: BlockSpec = Field(description="Desired state: type, fields and references.")
    status: BlockStatus = Field(
        default_factory=BlockStatus, description="Observed state (none is written today)."
    )

    @field_validator("metadata")
    @classmethod
    def _label_name(cls, meta: ObjectMeta) -> ObjectMeta:
        if meta.name is not None:
            try:
                check_block_name(meta.name)
            except ValueError as exc:
                raise FieldValueError("name", str(exc)) from None
        return meta
