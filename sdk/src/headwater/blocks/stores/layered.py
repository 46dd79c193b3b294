"""The stores of a flow-run pod: the mounted blocks and variables first, then a writable
store (the pod's local store, or the cluster with ``HEADWATER_BLOCK_STORE=kubernetes``).

The mounted snapshot is taken when the pod is built, so anything this process writes or
deletes is read from the writable store afterwards: a flow that saves a block (or sets a
variable) and loads it again sees its own write, not the snapshot.

Writes to the pod's local store end with the pod; the first one logs a warning saying so
and how to keep them (``HEADWATER_BLOCK_STORE=kubernetes`` and RBAC, docs/blocks.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from headwater import contract
from headwater.blocks.stores import BlockDocument, BlockStore, Stores, VariableStore
from headwater.blocks.stores.mounted import (
    DECLARE_BLOCK_FIX,
    MountedBlockStore,
    MountedVariableStore,
)
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    VariableAlreadyExistsError,
)

logger = logging.getLogger("headwater.blocks")

_KEEP_IT = (f"set {contract.ENV_BLOCK_STORE}=kubernetes in the Deployment's env and grant "
            "its service account create/patch on blocks and variables to keep it "
            "(docs/blocks.md)")


def over(mounted: Stores, writable: Stores, *, ephemeral: bool) -> Stores:
    """Reads from ``mounted`` then ``writable``; writes to ``writable`` (``ephemeral``: it
    is the pod's own disk, so say once that writes are lost with the pod)."""
    assert isinstance(mounted.blocks, MountedBlockStore)
    assert isinstance(mounted.variables, MountedVariableStore)
    return Stores(blocks=LayeredBlockStore(mounted.blocks, writable.blocks, ephemeral),
                  variables=LayeredVariableStore(mounted.variables, writable.variables,
                                                 ephemeral))


M = TypeVar("M", MountedBlockStore, MountedVariableStore)
W = TypeVar("W", BlockStore, VariableStore)

class _Warner:
    def __init__(self, ephemeral: bool, where: str) -> None:
        self.pending = ephemeral
        self.where = where

    def wrote(self, what: str) -> None:
        if self.pending:
            self.pending = False
            logger.warning("%s went to %s, which ends with this pod: %s", what, self.where,
                           _KEEP_IT)


class _Layered(Generic[M, W]):
    """What both layered stores share: the mount, the writable store under it, and the
    names written since (read from the writable store from then on)."""

    def __init__(self, mounted: M, writable: W, ephemeral: bool) -> None:
        self.mounted: M = mounted
        self.writable: W = writable
        self._rewritten: set[str] = set()
        self._warner = _Warner(ephemeral, writable.description)

    @property
    def description(self) -> str:
        return f"{self.mounted.description}, then {self.writable.description}"

    def _from_mount(self, name: str) -> bool:
        return name in self.mounted and name not in self._rewritten


class LayeredBlockStore(_Layered[MountedBlockStore, BlockStore]):
    """The mounted blocks over a writable block store."""

    def read(self, name: str) -> BlockDocument:
        if self._from_mount(name):
            return self.mounted.read(name)
        try:
            return self.writable.read(name)
        except BlockNotFoundError:
            if name in self._rewritten:
                raise
            raise BlockNotFoundError(
                f"block {name!r} is neither among {self.mounted.description} nor in "
                f"{self.writable.description}: {DECLARE_BLOCK_FIX}", name) from None

    def read_secret(self, name: str, field: str) -> str:
        if self._from_mount(name):
            return self.mounted.read_secret(name, field)
        return self.writable.read_secret(name, field)

    def write(self, doc: BlockDocument, secrets: Mapping[str, str], overwrite: bool) -> None:
        if not overwrite and self._from_mount(doc.name):
            raise BlockAlreadyExistsError(
                f"block {doc.name!r} already exists among {self.mounted.description}: pass "
                "overwrite=True to replace it")
        self.writable.write(doc, secrets, overwrite)
        self._rewritten.add(doc.name)
        self._warner.wrote(f"block {doc.name!r}")

    def delete(self, name: str) -> None:
        if self._from_mount(name):
            # Only mounted: from now on this process no longer sees it.
            with contextlib.suppress(BlockNotFoundError):
                self.writable.delete(name)
        else:
            self.writable.delete(name)
        self._rewritten.add(name)
        self._warner.wrote(f"the deletion of block {name!r}")

    def list(self) -> list[BlockDocument]:
        documents = {doc.name: doc for doc in self.mounted.list()
                     if doc.name not in self._rewritten}
        documents.update((doc.name, doc) for doc in self.writable.list())
        return [documents[name] for name in sorted(documents)]


class LayeredVariableStore(_Layered[MountedVariableStore, VariableStore]):
    """The mounted variables over a writable variable store."""

    def get(self, name: str) -> Any:
        if self._from_mount(name):
            return self.mounted.get(name)
        return self.writable.get(name)

    def set(self, name: str, value: Any, overwrite: bool) -> None:
        if not overwrite and self._from_mount(name):
            raise VariableAlreadyExistsError(
                f"variable {name!r} already exists among {self.mounted.description}: pass "
                "overwrite=True to replace it")
        self.writable.set(name, value, overwrite)
        self._rewritten.add(name)
        self._warner.wrote(f"variable {name!r}")

    def delete(self, name: str) -> bool:
        existed = self._from_mount(name)
        existed = self.writable.delete(name) or existed
        self._rewritten.add(name)
        self._warner.wrote(f"the deletion of variable {name!r}")
        return existed

    def list(self) -> dict[str, Any]:
        values = {name: value for name, value in self.mounted.list().items()
                  if name not in self._rewritten}
        values.update(self.writable.list())
        return values


__all__ = ["LayeredBlockStore", "LayeredVariableStore", "over"]
