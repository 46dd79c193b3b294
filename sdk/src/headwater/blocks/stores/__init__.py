"""Where blocks and variables live: the store protocols, the block document, and
:func:`current`, which picks the stores from ``HEADWATER_BLOCK_STORE``.

A *block document* is what every store holds for one block (docs/blocks.md)::

    {"name": "warehouse", "type": "mypkg.blocks:SnowflakePandas",
     "data": {"account": "xy12345"}, "blocks": {"connector": "sf-creds"},
     "secrets": ["password"]}

``data`` holds the non-secret fields as JSON, ``blocks`` names the nested blocks (saved
by reference), ``secrets`` names the secret fields, whose values are never in the
document: each store keeps them apart (a 0600 file, a Kubernetes Secret, a mounted file).

Stores (``HEADWATER_BLOCK_STORE``):

* unset or ``auto``: in a flow-run pod (``HEADWATER_BLOCKS`` set) the blocks and
  variables the operator mounted, then the local store; elsewhere the local store.
* ``local``: files under ``$HEADWATER_HOME`` (:mod:`headwater.blocks.stores.local`).
* any other ``name[:argument]``: the plugin registered under ``name`` in the entry-point
  group ``headwater.stores`` (:data:`headwater.contract.STORES_ENTRY_POINT_GROUP`),
  called with the argument. headwater-operator registers ``kubernetes``
  (``kubernetes:<namespace>``); writing to a cluster is always asked for by name.

This module and the stores it defines use the standard library only: the operator and
its CLI import them, and they must not cost the SDK's cold start anything until a flow
uses a block.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from headwater import contract
from headwater.exceptions import BlockStoreError, InvalidNameError

__all__ = [
    "MISSING",
    "BlockDocument",
    "BlockStore",
    "Stores",
    "VariableStore",
    "check_variable_value",
    "current",
    "validate_block_name",
    "validate_variable_name",
]

# --- names ---------------------------------------------------------------------------

BLOCK_NAME_MAX: Final = 63
_BLOCK_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
BLOCK_NAME_RULE: Final = (
    "a block name is a DNS-1123 label: at most 63 lowercase letters, digits and '-', "
    "starting and ending with a letter or digit (e.g. 'warehouse', 'sf-creds')")

VARIABLE_NAME_MAX: Final = 255
"""Prefect 3's limit (``prefect.types.names.MAX_VARIABLE_NAME_LENGTH``)."""
_VARIABLE_NAME = re.compile(r"[a-z0-9_-]+")
VARIABLE_NAME_RULE: Final = (
    "a variable name is 1 to 255 lowercase letters, digits, '_' and '-' "
    "(Prefect 3's rule, e.g. 'batch_size')")
VARIABLE_VALUE_MAX: Final = 5000
"""Prefect 3's limit on a variable's value, in characters of its compact JSON encoding
(``prefect.types.MAX_VARIABLE_VALUE_LENGTH``)."""


def validate_block_name(name: object) -> str:
    """``name`` if it is a valid block name, else :class:`InvalidNameError` stating the rule."""
    if not isinstance(name, str) or len(name) > BLOCK_NAME_MAX \
            or not _BLOCK_NAME.fullmatch(name):
        raise InvalidNameError(f"invalid block name {name!r}: {BLOCK_NAME_RULE}")
    return name


def validate_variable_name(name: object) -> str:
    """``name`` if it is a valid variable name, else :class:`InvalidNameError`."""
    if not isinstance(name, str) or len(name) > VARIABLE_NAME_MAX \
            or not _VARIABLE_NAME.fullmatch(name):
        raise InvalidNameError(f"invalid variable name {name!r}: {VARIABLE_NAME_RULE}")
    return name


def check_variable_value(name: str, value: Any) -> str:
    """The compact JSON encoding of ``value``; ``ValueError`` naming the variable when the
    value is not JSON (str, int, float, bool, None, lists, objects with string keys) or
    its encoding is longer than :data:`VARIABLE_VALUE_MAX` characters."""
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                             allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"variable {name!r}: the value must be JSON (str, int, float, "
                         f"bool, None, list, dict with str keys): {exc}") from None
    if len(encoded) > VARIABLE_VALUE_MAX:
        raise ValueError(f"variable {name!r}: the value is {len(encoded)} characters of JSON;"
                         f" at most {VARIABLE_VALUE_MAX} are allowed (Prefect 3's limit) — "
                         "keep large data in a block or in result storage")
    return encoded


# --- the block document ----------------------------------------------------------------


@dataclass(frozen=True)
class BlockDocument:
    """One stored block: its name, type (``module:QualName``), non-secret ``data``, nested
    ``blocks`` (field → block name) and the names of its ``secrets`` fields."""

    name: str
    type: str
    data: dict[str, Any]
    blocks: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The document as the JSON object every store holds."""
        return {"name": self.name, "type": self.type, "data": self.data,
                "blocks": dict(self.blocks), "secrets": list(self.secrets)}

    @classmethod
    def from_json(cls, obj: object, *, where: str) -> BlockDocument:
        """Parse a stored document; :class:`BlockStoreError` naming ``where`` and the field
        when it is malformed."""
        if not isinstance(obj, dict):
            raise BlockStoreError(f"{where}: a block document must be a JSON object")
        name, type_, data = obj.get("name"), obj.get("type"), obj.get("data", {})
        blocks, secrets = obj.get("blocks", {}), obj.get("secrets", [])

        def malformed(problem: str) -> BlockStoreError:
            return BlockStoreError(f"{where}: malformed block document: {problem}")

        if not isinstance(name, str) or not name:
            raise malformed("'name' must be a non-empty string")
        if not isinstance(type_, str) or ":" not in type_:
            raise malformed("'type' must be a string 'module:QualName'")
        if not isinstance(data, dict):
            raise malformed("'data' must be a JSON object")
        if not isinstance(blocks, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in blocks.items()):
            raise malformed("'blocks' must map field names to block names")
        if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
            raise malformed("'secrets' must be a list of field names")
        return cls(name=name, type=type_, data=dict(data), blocks=dict(blocks),
                   secrets=tuple(secrets))


MISSING: Final[Any] = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""What :meth:`VariableStore.get` returns for a variable that does not exist."""


# --- the protocols -----------------------------------------------------------------------


class BlockStore(Protocol):
    """Where block documents and their secret values are kept.

    Errors carry messages a user can act on: they name the block, the store and the fix
    (``declare it in the Deployment's spec.blocks``, ``headwater block create ...``).
    """

    @property
    def description(self) -> str:
        """Where this store keeps blocks, for messages (``the local store at ~/...``)."""
        ...

    def read(self, name: str) -> BlockDocument:
        """The document of block ``name``; :class:`BlockNotFoundError` if there is none."""
        ...

    def read_secret(self, name: str, field: str) -> str:
        """The value of secret ``field`` of block ``name``;
        :class:`~headwater.exceptions.BlockSecretNotFoundError` if it has none."""
        ...

    def write(self, doc: BlockDocument, secrets: Mapping[str, str], overwrite: bool) -> None:
        """Store ``doc`` and the values of its secret fields (``secrets``, exactly the
        fields in ``doc.secrets``), replacing the block's old secret values.
        :class:`BlockAlreadyExistsError` if the block exists and not ``overwrite``."""
        ...

    def delete(self, name: str) -> None:
        """Remove block ``name`` and its secret values; :class:`BlockNotFoundError` if
        there is none."""
        ...

    def list(self) -> list[BlockDocument]:
        """Every block's document, by name."""
        ...


class VariableStore(Protocol):
    """Where variables (named JSON values) are kept."""

    @property
    def description(self) -> str:
        """Where this store keeps variables, for messages."""
        ...

    def get(self, name: str) -> Any:
        """The value of variable ``name``, or :data:`MISSING`."""
        ...

    def set(self, name: str, value: Any, overwrite: bool) -> None:
        """Store ``value`` (JSON, checked by the caller);
        :class:`VariableAlreadyExistsError` if it exists and not ``overwrite``."""
        ...

    def delete(self, name: str) -> bool:
        """Remove variable ``name``: whether it existed."""
        ...

    def list(self) -> dict[str, Any]:
        """Every variable's value, by name."""
        ...


@dataclass(frozen=True)
class Stores:
    """The block store and the variable store in use (what a store plugin returns)."""

    blocks: BlockStore
    variables: VariableStore


StoreFactory = Callable[[str | None], Stores]
"""What an entry point in ``headwater.stores`` loads: called with the text after ``:`` in
``HEADWATER_BLOCK_STORE`` (``None`` without one)."""


# --- selection -----------------------------------------------------------------------------

_cache: dict[tuple[str | None, ...], Stores] = {}
_cache_lock = threading.Lock()


def current(env: Mapping[str, str] | None = None) -> Stores:
    """The stores ``HEADWATER_BLOCK_STORE`` selects in ``env`` (default: this process's
    environment). The same settings give the same store objects, so a block saved in a
    flow-run pod is seen by the next ``load`` in that pod."""
    env = os.environ if env is None else env
    setting = (env.get(contract.ENV_BLOCK_STORE) or "auto").strip()
    mode, sep, argument = setting.partition(":")
    mode = mode.strip().lower()
    key = (mode, argument.strip() if sep else None, env.get(contract.ENV_HOME),
           env.get(contract.ENV_BLOCKS), env.get(contract.ENV_BLOCKS_DIR),
           env.get(contract.ENV_VARIABLES), env.get(contract.ENV_NAMESPACE))
    with _cache_lock:
        stores = _cache.get(key)
        if stores is None:
            stores = _cache[key] = _build(mode, key[1], env)
    return stores


def _build(mode: str, argument: str | None, env: Mapping[str, str]) -> Stores:
    from headwater.blocks.stores import layered, local, mounted

    local_stores = local.stores(env)
    in_pod = contract.ENV_BLOCKS in env or contract.ENV_VARIABLES in env
    if mode in ("auto", "local"):
        if argument is not None:
            raise BlockStoreError(f"{contract.ENV_BLOCK_STORE}={mode}:{argument}: "
                                  f"'{mode}' takes no argument")
        if mode == "local" or not in_pod:
            return local_stores
        return layered.over(mounted.stores(env), local_stores, ephemeral=True)
    if not mode:
        raise BlockStoreError(f"{contract.ENV_BLOCK_STORE} is empty before ':': use auto, "
                              "local or kubernetes[:<namespace>]")
    if mode == "kubernetes" and argument is None:
        argument = env.get(contract.ENV_NAMESPACE) or None
    plugin = _plugin(mode)(argument)
    if not isinstance(plugin, Stores):
        raise BlockStoreError(f"the store plugin {mode!r} (entry point in group "
                              f"{contract.STORES_ENTRY_POINT_GROUP!r}) returned "
                              f"{type(plugin).__name__}, not headwater.blocks.stores.Stores")
    if in_pod:
        return layered.over(mounted.stores(env), plugin, ephemeral=False)
    return plugin


def _plugin(mode: str) -> StoreFactory:
    from headwater.utilities.plugins import load_plugin

    factory: StoreFactory = load_plugin(
        contract.STORES_ENTRY_POINT_GROUP, mode, setting=contract.ENV_BLOCK_STORE,
        what="block store", choices="auto, local or kubernetes[:<namespace>]",
        error=BlockStoreError)
    return factory


def reset() -> None:
    """Forget the stores built so far (tests; a process that changes its environment)."""
    with _cache_lock:
        _cache.clear()

