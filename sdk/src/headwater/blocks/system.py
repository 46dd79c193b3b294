"""The system blocks at Prefect's import path: ``Secret``, ``JSON``, ``String``,
``DateTime``.

``Secret.load(name)`` reads the block ``name`` from the current store and, when there is
none, the value injected into the pod the way Headwater did before blocks
(``HEADWATER_SECRET_<NAME>`` or a file under ``HEADWATER_SECRETS_DIR``, see
:mod:`headwater.secrets`), so flows written for either keep working.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator

from headwater import secrets
from headwater.blocks import stores
from headwater.blocks.core import Block
from headwater.exceptions import BlockNotFoundError, InvalidNameError, MissingSecretError

__all__ = ["JSON", "DateTime", "Secret", "String"]


class Secret(Block):
    """A secret value: kept apart from the block document, masked in every repr, log,
    state, run record and summary.

    ``value`` takes a string, or any JSON value (stored as its JSON text); ``get()``
    returns the string, or the object or list for a JSON object or array.
    """

    _block_type_name = "Secret"
    _description = ("A secret value, kept in the store's secret storage and masked in "
                    "logs and run records.")

    value: SecretStr = Field(description="A value that should be kept secret.")

    @field_validator("value", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        if isinstance(value, str | SecretStr):
            return value
        try:
            return json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a Secret's value must be a string or JSON: {exc}") from None

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        parsed = self.get()
        if isinstance(parsed, dict | list):
            for leaf in _string_leaves(parsed):
                secrets.remember(leaf)

    def get(self) -> Any:
        """The secret value: the string, or the object or list a JSON value was saved as."""
        raw = self.value.get_secret_value()
        if raw[:1] in ("{", "["):
            try:
                return json.loads(raw)
            except ValueError:
                pass
        return raw

    @property
    def name(self) -> str | None:
        """The name this secret was loaded or saved as."""
        return self._block_document_name

    @classmethod
    def _load(cls, name: str, validate: bool) -> Self:
        try:
            stores.validate_block_name(name)
        except InvalidNameError:
            where = "(not a block name, so no block store was read)"
        else:
            try:
                return super()._load(name, validate)
            except MissingSecretError:
                raise
            except BlockNotFoundError:
                where = f"in {stores.current().blocks.description}"
        value = secrets.injected_secret(name)
        if value is None:
            raise MissingSecretError(
                f"Secret {name!r} not found: no block of that name {where}, and no value "
                f"injected into this process: save one (`Secret(value=...).save({name!r})`)"
                f", or {secrets.injection_hint(name)}.", name)
        secret = cls(value=SecretStr(value))
        secret._block_document_name = name
        return secret


def _string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _string_leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _string_leaves(item)]
    return []


class JSON(Block):
    """Any JSON value."""

    _block_type_name = "JSON"
    value: Any = Field(description="A JSON-compatible value.")


class String(Block):
    """A string value."""

    _block_type_name = "String"
    value: str = Field(description="A string value.")


class DateTime(Block):
    """A date and time (timezone-aware or not, kept as given)."""

    _block_type_name = "Date Time"
    value: datetime = Field(description="An ISO 8601-compatible datetime value.")
