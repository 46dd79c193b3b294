"""Result storage: persisted task results, cache records, locks, and the run's files.

Everything the SDK keeps between runs lives under one *result storage* root:

* a local directory — the default is ``$HEADWATER_HOME`` (``~/.headwater``), or
  ``HEADWATER_RESULT_STORAGE`` when the operator sets it;
* any fsspec URL (``s3://bucket/prefix``, ``gs://…``, ``memory://…``) when fsspec is
  installed (``pip install headwater[fsspec]``).

Layout under the root: ``results/<key>`` (result records), ``assets/`` (asset versions),
``artifacts/<flow-run-id>/`` and ``runs/<flow-run-id>/lineage.json``.

A result record is one file: a JSON header line (serializer, creation time, expiration)
followed by the serialized value, so a reader can check expiration without unpickling.
Writes go to a temporary name and are renamed into place, so a concurrent reader sees
either no record or a whole one.

Cache locks are per key: a ``threading.Lock`` inside the process and, on local storage,
an ``fcntl`` file lock across processes, so two identical tasks never both compute. On
fsspec storage the lock holds within a process only (see :class:`FsspecStorage`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from headwater import contract

if TYPE_CHECKING:
    from headwater.states import PersistedResult

now: Callable[[], float] = time.time
"""The clock for cache expiration; tests replace it instead of waiting."""


class Serializer(Protocol):
    """Turns a value into bytes and back."""

    name: str

    def dumps(self, value: Any) -> bytes:
        """Serialize ``value``."""
        ...

    def loads(self, data: bytes) -> Any:
        """Deserialize ``data``."""
        ...


class PickleSerializer:
    """The default serializer: any picklable Python value."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        """Serialize ``value`` with the highest pickle protocol."""
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        """Deserialize pickled ``data``."""
        return pickle.loads(data)


class JSONSerializer:
    """Readable results for JSON-compatible values (dates are stored as ISO strings)."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        """Serialize ``value`` as JSON."""
        return json.dumps(value, default=_json_default).encode()

    def loads(self, data: bytes) -> Any:
        """Deserialize JSON ``data``."""
        return json.loads(data)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(
        f"result of type {type(value).__name__} is not JSON serializable; use "
        "result_serializer='pickle' (the default) for this task"
    )


SERIALIZERS: dict[str, Serializer] = {"pickle": PickleSerializer(), "json": JSONSerializer()}


def get_serializer(name: str | Serializer | None) -> Serializer:
    """The serializer called ``name`` (``pickle`` or ``json``); pickle by default."""
    if name is None:
        return SERIALIZERS["pickle"]
    if not isinstance(name, str):
        return name
    try:
        return SERIALIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown result_serializer {name!r}; use one of {sorted(SERIALIZERS)}"
        ) from None


# --- storage backends ----------------------------------------------------------------


class ResultStorage(Protocol):
    """Where bytes live, addressed by ``/``-separated relative paths."""

    url: str

    def read(self, path: str) -> bytes | None:
        """The bytes at ``path``, or ``None`` when nothing is there."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Store ``data`` at ``path`` atomically."""
        ...

    def write_chunks(self, path: str, chunks: Iterable[bytes]) -> None:
        """Store the concatenation of ``chunks`` at ``path`` atomically (large files are
        written without first being joined into one buffer)."""
        ...

    def subdirs(self, prefix: str) -> list[str]:
        """Names of the directories (an object store's common prefixes) under ``prefix``."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Relative paths of the files directly under directory ``prefix``."""
        ...

    def lock(self, path: str) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock named ``path`` (across processes where the backend can)."""
        ...

    def delete(self, prefix: str) -> None:
        """Delete the file or directory tree at ``prefix`` (nothing there is fine)."""
        ...


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(name: str) -> threading.Lock:
    with _thread_locks_guard:
        lock = _thread_locks.get(name)
        if lock is None:
            lock = _thread_locks[name] = threading.Lock()
        return lock


class LocalFileStorage:
    """A directory on the local filesystem (or a mounted volume)."""

    def __init__(self, basepath: str | os.PathLike[str]) -> None:
        self.basepath = Path(basepath).expanduser()
        self.url = str(self.basepath)

    def read(self, path: str) -> bytes | None:
        """The bytes at ``path``, or ``None``."""
        try:
            return (self.basepath / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, path: str, data: bytes) -> None:
        """Write via a temporary file and ``os.replace`` so readers never see half a file."""
        target = self.basepath / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def write_chunks(self, path: str, chunks: Iterable[bytes]) -> None:
        """Like :meth:`write`, streaming ``chunks`` into the temporary file."""
        target = self.basepath / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as out:
            out.writelines(chunks)
        os.replace(tmp, target)

    def subdirs(self, prefix: str) -> list[str]:
        """Directories directly under ``prefix``."""
        directory = self.basepath / prefix
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir()
                      if p.is_dir() and not p.name.startswith("."))

    def list(self, prefix: str) -> list[str]:
        """Files directly under ``prefix``."""
        directory = self.basepath / prefix
        if not directory.is_dir():
            return []
        return sorted(
            f"{prefix}/{p.name}" for p in directory.iterdir()
            if p.is_file() and not p.name.startswith(".")
        )

    def delete(self, prefix: str) -> None:
        """Remove the file or directory tree at ``prefix``."""
        import shutil

        target = self.basepath / prefix
        if target.is_dir():
            # Errors are raised, not ignored: a caller that must report a failed delete
            # (the operator pruning run records) has to see it. Gone meanwhile is fine.
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self, path: str) -> Iterator[None]:
        """Thread lock plus an ``fcntl.flock`` on ``locks/<path>.lock``."""
        import fcntl

        with _thread_lock(f"{self.url}|{path}"):
            lock_path = self.basepath / "locks" / f"{path}.lock"
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            with open(lock_path, "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)


class FsspecStorage:
    """Any fsspec filesystem URL; cache locks hold only within one process.

    Limit: object stores (S3, GCS, Azure) have no ``flock`` and fsspec offers no portable
    exclusive-create, so two *processes* (two pods) computing the same cache key at the
    same moment may both run the task. Nothing breaks: each writes a whole record
    atomically and the last write wins; only the duplicated work is lost. Tasks in one
    process (threads, ``.map``) still compute once. Use a shared local or network
    filesystem path (``LocalFileStorage``, e.g. a ReadWriteMany volume) where exactly-once
    computation across pods matters.
    """

    def __init__(self, url: str) -> None:
        try:
            import fsspec
        except ImportError:  # pragma: no cover - depends on the environment
            raise ValueError(
                f"result storage {url!r} needs fsspec: pip install 'headwater[fsspec]' "
                "(plus the filesystem's driver, e.g. s3fs)"
            ) from None
        self.url = url.rstrip("/")
        self._fs, self._root = fsspec.core.url_to_fs(self.url)

    def _full(self, path: str) -> str:
        return f"{self._root}/{path}"

    def read(self, path: str) -> bytes | None:
        """The bytes at ``path``, or ``None``."""
        try:
            data: bytes = self._fs.cat_file(self._full(path))
        except FileNotFoundError:
            return None
        return data

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` (object stores make single puts atomic).

        Directories are made only where a filesystem has them and only when the write
        needs one: on an object store a missing parent means a missing bucket, and
        s3fs's ``makedirs`` would *create* a bucket named by a typo.
        """
        full = self._full(path)
        try:
            self._fs.pipe_file(full, data)
        except FileNotFoundError:
            from fsspec.asyn import AsyncFileSystem

            if isinstance(self._fs, AsyncFileSystem):  # s3fs, gcsfs, adlfs: object stores
                raise FileNotFoundError(
                    f"cannot write to {self.url}: its bucket (or container) does not exist; "
                    "create it first (Headwater never creates buckets)") from None
            self._fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
            self._fs.pipe_file(full, data)

    def write_chunks(self, path: str, chunks: Iterable[bytes]) -> None:
        """One put of the joined chunks (an object store writes whole objects anyway)."""
        self.write(path, b"".join(chunks))

    def subdirs(self, prefix: str) -> list[str]:
        """Directories (common prefixes) directly under ``prefix``, fresh from the store."""
        try:
            entries = self._fs.ls(self._full(prefix), detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(str(e["name"]).rstrip("/").rsplit("/", 1)[-1] for e in entries
                      if e.get("type") == "directory")

    def list(self, prefix: str) -> list[str]:
        """Files directly under ``prefix`` (an object store's common prefixes are not files).

        Always asks the store (``refresh``): s3fs and others cache listings forever, and a
        reader following a running run must see the segments another process adds.
        """
        try:
            entries = self._fs.ls(self._full(prefix), detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(f"{prefix}/{str(e['name']).rsplit('/', 1)[-1]}" for e in entries
                      if e.get("type") == "file")

    def delete(self, prefix: str) -> None:
        """Remove everything under ``prefix`` (object stores: every key it starts)."""
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(self._full(prefix), recursive=True)

    @contextlib.contextmanager
    def lock(self, path: str) -> Iterator[None]:
        """An in-process lock for ``path``."""
        with _thread_lock(f"{self.url}|{path}"):
            yield


def default_storage_location(env: Mapping[str, str] | None = None) -> str:
    """``HEADWATER_RESULT_STORAGE``, else ``HEADWATER_HOME``, else ``~/.headwater``, read
    from ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    return (
        env.get(contract.ENV_RESULT_STORAGE)
        or env.get(contract.ENV_HOME)
        or str(Path("~/.headwater").expanduser())
    )


_storage_cache: dict[str, ResultStorage] = {}


def resolve_storage(value: str | os.PathLike[str] | ResultStorage | None) -> ResultStorage:
    """Turn a path, URL or storage object (or ``None`` for the default) into storage."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        return value
    location = os.fspath(value) if value is not None else default_storage_location()
    storage = _storage_cache.get(location)
    if storage is None:
        if "://" in location and not location.startswith("file://"):
            storage = FsspecStorage(location)
        else:
            storage = LocalFileStorage(location.removeprefix("file://"))
        _storage_cache[location] = storage
    return storage


# --- result records --------------------------------------------------------------------


class ResultStore:
    """Reads and writes result records in one storage with one serializer."""

    def __init__(self, storage: ResultStorage, serializer: Serializer) -> None:
        self.storage = storage
        self.serializer = serializer

    def read(self, key: str, at: float | None = None) -> tuple[bool, Any]:
        """``(True, value)`` for a valid record under ``key``, else ``(False, None)``.

        An expired or unreadable record counts as missing: the task runs again and
        overwrites it.
        """
        record = self._valid_record(key, at)
        if record is None:
            return False, None
        serializer_name, payload = record
        try:
            return True, get_serializer(serializer_name).loads(payload)
        except Exception:  # a corrupt cache entry is a miss, not a failure
            return False, None

    def exists(self, key: str) -> bool:
        """Whether an unexpired record is stored under ``key`` (its value is not loaded)."""
        return self._valid_record(key, None) is not None

    def _valid_record(self, key: str, at: float | None) -> tuple[str | None, bytes] | None:
        data = self.storage.read(f"results/{key}")
        if data is None:
            return None
        header_bytes, _, payload = data.partition(b"\n")
        try:
            header = json.loads(header_bytes)
        except ValueError:  # a corrupt header is a miss
            return None
        if not isinstance(header, dict):
            return None
        expiration = header.get("expiration")
        current = at if at is not None else now()
        if expiration is not None and current >= expiration:
            return None
        return header.get("serializer"), payload

    def write(self, key: str, value: Any, expiration: float | None = None) -> None:
        """Persist ``value`` under ``key``; ``expiration`` is a Unix time or ``None``."""
        payload = self.serializer.dumps(value)
        header = json.dumps(
            {"serializer": self.serializer.name, "created": time.time(), "expiration": expiration}
        ).encode()
        self.storage.write(f"results/{key}", header + b"\n" + payload)

    def location(self, key: str) -> str:
        """Where the record under ``key`` is stored (the run record's ``resultLocation``)."""
        return f"{self.storage.url}/results/{key}"

    def reference(self, key: str) -> PersistedResult:
        """A reference that loads the record under ``key`` when the value is needed."""
        from headwater.exceptions import MissingResult
        from headwater.states import PersistedResult

        def load() -> Any:
            hit, value = self.read(key, at=0.0)
            if not hit:
                raise MissingResult(
                    f"result {key!r} is no longer in result storage {self.storage.url!r}; "
                    "it was not kept in memory (cache_result_in_memory=False). Keep the "
                    "storage, or leave cache_result_in_memory at its default True."
                )
            return value

        return PersistedResult(key, load)

    def lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock for computing ``key``."""
        return self.storage.lock(key)
