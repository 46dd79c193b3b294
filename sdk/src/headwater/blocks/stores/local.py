"""The local store: blocks and variables as files under ``$HEADWATER_HOME`` (default
``~/.headwater``), for a laptop with no cluster and for tests.

Layout::

    $HEADWATER_HOME/blocks/<name>.json           the block document
    $HEADWATER_HOME/blocks/<name>.secrets.json   {field: value}, mode 0600
    $HEADWATER_HOME/variables/<name>.json        {"name": ..., "value": ...}

(a variable name over 200 characters is shortened in its file name, with a hash)

What it must respect: a reader never sees half a file (each file is written to a
temporary file in the same directory and renamed over the old one); the secrets file is
created 0600 and never passes through a wider mode; writers in several processes are
serialised by an ``flock`` on ``.lock`` in the directory, so ``overwrite=False`` holds
between two processes saving the same name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from headwater import contract
from headwater.blocks.stores import (
    MISSING,
    BlockDocument,
    Stores,
    validate_block_name,
    validate_variable_name,
)
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    BlockSecretNotFoundError,
    BlockStoreError,
    VariableAlreadyExistsError,
)

_FILE_STEM_MAX = 200
_thread_locks: dict[Path, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def home(env: Mapping[str, str]) -> Path:
    """``$HEADWATER_HOME``, else ``~/.headwater``."""
    return Path(env.get(contract.ENV_HOME) or "~/.headwater").expanduser()


def stores(env: Mapping[str, str]) -> Stores:
    """The local block and variable stores under ``env``'s ``HEADWATER_HOME``."""
    root = home(env)
    return Stores(blocks=LocalBlockStore(root / "blocks"),
                  variables=LocalVariableStore(root / "variables"))


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    import fcntl

    with _thread_locks_guard:
        lock = _thread_locks.setdefault(directory, threading.Lock())
    with lock:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(directory / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(target: Path, text: str, mode: int) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> Any:
    """The JSON in ``path``; ``FileNotFoundError`` if there is none."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BlockStoreError(f"{path} is not JSON ({exc.msg} at position {exc.pos}): "
                              "fix or delete the file") from None


class LocalBlockStore:
    """Block documents in ``<root>/<name>.json``, secret values in
    ``<root>/<name>.secrets.json`` (0600)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def description(self) -> str:
        return f"the local store at {self.root}"

    def _document(self, name: str) -> Path:
        return self.root / f"{validate_block_name(name)}.json"

    def _secrets(self, name: str) -> Path:
        return self.root / f"{validate_block_name(name)}.secrets.json"

    def _missing(self, name: str) -> BlockNotFoundError:
        return BlockNotFoundError(
            f"block {name!r} is not in {self.description}: save it first "
            f"(`MyBlock(...).save({name!r})` with {contract.ENV_BLOCK_STORE} unset or "
            f"'local'), or set {contract.ENV_BLOCK_STORE}=kubernetes[:<namespace>] to read "
            "it from a cluster", name)

    def read(self, name: str) -> BlockDocument:
        path = self._document(name)
        try:
            data = _read_json(path)
        except (FileNotFoundError, NotADirectoryError):
            raise self._missing(name) from None
        return BlockDocument.from_json(data, where=str(path))

    def read_secret(self, name: str, field: str) -> str:
        path = self._secrets(name)
        try:
            values = _read_json(path)
        except (FileNotFoundError, NotADirectoryError):
            values = {}
        value = values.get(field) if isinstance(values, dict) else None
        if not isinstance(value, str):
            raise BlockSecretNotFoundError(
                f"block {name!r} has no value for its secret field {field!r} in {path}: "
                f"save the block again with the field set (`.save({name!r}, "
                "overwrite=True)`)", name, field)
        return value

    def write(self, doc: BlockDocument, secrets: Mapping[str, str], overwrite: bool) -> None:
        document, secrets_path = self._document(doc.name), self._secrets(doc.name)
        with _locked(self.root):
            if not overwrite and document.exists():
                raise BlockAlreadyExistsError(
                    f"block {doc.name!r} already exists in {self.description}: pass "
                    "overwrite=True to replace it")
            if secrets:
                _write_atomically(secrets_path, json.dumps(dict(secrets)), 0o600)
            else:
                secrets_path.unlink(missing_ok=True)
            _write_atomically(document, json.dumps(doc.to_json(), indent=2), 0o644)

    def delete(self, name: str) -> None:
        document = self._document(name)
        with _locked(self.root):
            if not document.exists():
                raise self._missing(name)
            document.unlink()
            self._secrets(name).unlink(missing_ok=True)

    def list(self) -> list[BlockDocument]:
        if not self.root.is_dir():
            return []
        return [BlockDocument.from_json(_read_json(path), where=str(path))
                for path in sorted(self.root.glob("*.json"))
                if not path.name.endswith(".secrets.json")]


class LocalVariableStore:
    """Variables in ``<root>/<name>.json`` as ``{"name": ..., "value": ...}``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def description(self) -> str:
        return f"the local store at {self.root}"

    def _path(self, name: str) -> Path:
        validate_variable_name(name)
        if len(name) > _FILE_STEM_MAX:
            # A 255-character name would not fit a file name (NAME_MAX is 255 bytes with
            # the suffix and the temporary file's decorations): shorten it with a hash,
            # after a '~' no variable name contains. The file keeps the full name.
            digest = hashlib.sha256(name.encode()).hexdigest()[:16]
            name = f"{name[:_FILE_STEM_MAX - 17]}~{digest}"
        return self.root / f"{name}.json"

    def get(self, name: str) -> Any:
        path = self._path(name)
        try:
            return self._read(path)[1]
        except (FileNotFoundError, NotADirectoryError):
            return MISSING

    @staticmethod
    def _read(path: Path) -> tuple[str, Any]:
        data = _read_json(path)
        if not isinstance(data, dict) or "value" not in data \
                or not isinstance(data.get("name"), str):
            raise BlockStoreError(f"{path}: a variable file must be a JSON object with "
                                  "'name' and 'value': fix or delete the file")
        return data["name"], data["value"]

    def set(self, name: str, value: Any, overwrite: bool) -> None:
        path = self._path(name)
        with _locked(self.root):
            if not overwrite and path.exists():
                raise VariableAlreadyExistsError(
                    f"variable {name!r} already exists in {self.description}: pass "
                    "overwrite=True to replace it")
            _write_atomically(path, json.dumps({"name": name, "value": value}), 0o644)

    def delete(self, name: str) -> bool:
        path = self._path(name)
        with _locked(self.root):
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True

    def list(self) -> dict[str, Any]:
        if not self.root.is_dir():
            return {}
        return dict(sorted(self._read(path) for path in self.root.glob("*.json")))
