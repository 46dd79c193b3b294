"""The mounted store: the blocks and variables the operator put into a flow-run pod.

The operator resolves the blocks a Deployment declares (``spec.blocks``, nested blocks
included) when it builds the pod, and gives the pod:

* ``HEADWATER_BLOCKS``: JSON ``{name: block document}`` (no secret values);
* the secret fields as files ``$HEADWATER_BLOCKS_DIR/<block>/<field>`` (default
  ``/var/run/headwater/blocks``), projected from the Kubernetes Secrets;
* ``HEADWATER_VARIABLES``: JSON ``{name: value}`` of the declared variables.

The store is read-only and needs no API access. A secret file's content is the value as
is (no newline stripped: the Secret holds exactly what ``block.save`` wrote).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headwater import contract
from headwater.blocks.stores import MISSING, BlockDocument, Stores
from headwater.exceptions import BlockNotFoundError, BlockSecretNotFoundError, BlockStoreError

DECLARE_BLOCK_FIX = ("declare it in the Deployment's spec.blocks (nested blocks are mounted "
                  "with the block that names them)")


def _parse_object(env: Mapping[str, str], variable: str) -> dict[str, Any]:
    text = env.get(variable)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BlockStoreError(f"{variable} is not JSON ({exc.msg} at position {exc.pos}); "
                              "the operator sets it: report this as a bug") from None
    if not isinstance(value, dict):
        raise BlockStoreError(f"{variable} must be a JSON object of names to values")
    return value


def stores(env: Mapping[str, str]) -> Stores:
    """The blocks and variables mounted into this pod, read from ``env``."""
    directory = Path(env.get(contract.ENV_BLOCKS_DIR) or contract.BLOCKS_DIR_DEFAULT)
    return Stores(
        blocks=MountedBlockStore(_parse_object(env, contract.ENV_BLOCKS), directory),
        variables=MountedVariableStore(_parse_object(env, contract.ENV_VARIABLES)))


class MountedBlockStore:
    """Documents from ``HEADWATER_BLOCKS``, secret values from files under a directory."""

    def __init__(self, documents: Mapping[str, Any], directory: Path) -> None:
        self._documents = dict(documents)
        self.directory = directory

    @property
    def description(self) -> str:
        return f"the blocks mounted into this pod ({contract.ENV_BLOCKS})"

    def __contains__(self, name: object) -> bool:
        return name in self._documents

    def read(self, name: str) -> BlockDocument:
        if name not in self._documents:
            raise BlockNotFoundError(
                f"block {name!r} is not among {self.description}: {DECLARE_BLOCK_FIX}", name)
        return BlockDocument.from_json(self._documents[name],
                                       where=f"{contract.ENV_BLOCKS}[{name!r}]")

    def read_secret(self, name: str, field: str) -> str:
        path = self.directory / name / field
        try:
            return path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlockSecretNotFoundError(
                f"block {name!r}: the file for its secret field {field!r} is missing at "
                f"{path}: the operator mounts it from the Secret the Block's "
                f"spec.secretRefs.{field} names; check the Deployment declares the block "
                "in spec.blocks and the Secret has the key", name, field) from None

    def write(self, doc: BlockDocument, secrets: Mapping[str, str], overwrite: bool) -> None:
        raise BlockStoreError(f"{self.description} are read-only: set "
                              f"{contract.ENV_BLOCK_STORE}=kubernetes to save block "
                              f"{doc.name!r} to the cluster")

    def delete(self, name: str) -> None:
        raise BlockStoreError(f"{self.description} are read-only: set "
                              f"{contract.ENV_BLOCK_STORE}=kubernetes to delete block "
                              f"{name!r} from the cluster")

    def list(self) -> list[BlockDocument]:
        return [self.read(name) for name in sorted(self._documents)]


class MountedVariableStore:
    """Variables from ``HEADWATER_VARIABLES``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    @property
    def description(self) -> str:
        return f"the variables mounted into this pod ({contract.ENV_VARIABLES})"

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def get(self, name: str) -> Any:
        return self._values.get(name, MISSING)

    def set(self, name: str, value: Any, overwrite: bool) -> None:
        raise BlockStoreError(f"{self.description} are read-only: set "
                              f"{contract.ENV_BLOCK_STORE}=kubernetes to set variable "
                              f"{name!r} in the cluster")

    def delete(self, name: str) -> bool:
        raise BlockStoreError(f"{self.description} are read-only: set "
                              f"{contract.ENV_BLOCK_STORE}=kubernetes to unset variable "
                              f"{name!r} in the cluster")

    def list(self) -> dict[str, Any]:
        return dict(self._values)
