"""Transactions: groups of task runs that commit together or roll back together.

Prefect 3's model (``prefect.transactions``, docs "Write transactional workflows"),
rebuilt on Headwater's engine and result storage::

    with transaction(key="load-2026-12-07") as txn:
        if txn.is_committed():      # a record under the key: done by an earlier run
            return
        txn.set("table", "sales")
        rows = write_rows(day)      # the task run joins the transaction (staged)
        check(rows)                 # fails: write_rows' on_rollback hooks run

What it must respect:

* **Staging.** A task run that completes inside a transaction is *staged*: its result
  record (when its result is persisted) is written, and its ``on_commit`` hooks run, only
  when the transaction commits. A task run that ends Failed, Crashed or TimedOut (after
  its retries) rolls the transaction back at once: every staged task run's
  ``on_rollback`` hooks run, newest first, and nothing staged is written. A Cached task
  run was committed by an earlier run and is neither committed nor rolled back again.
* **Commit modes.** ``LAZY`` (the default at the top): the outermost transaction commits
  everything when its block ends without an error; ``EAGER``: each task run and nested
  transaction commits as soon as it ends; ``OFF``: nothing commits and the outermost
  block ends by rolling back. Nested transactions inherit the mode.
* **Idempotency.** A transaction with a ``key`` looks the key up in result storage (the
  flow's, as for task results: ``results/<key>``); if a record is there (and not
  ``overwrite``) it starts ``COMMITTED``: ``is_committed()`` says so, and what its block
  stages is neither committed again nor rolled back. Its own commit writes the record.
* **Isolation.** ``SERIALIZABLE`` holds result storage's lock on the key from the start
  to the commit or rollback (across processes on local storage, within one process on an
  fsspec store, as for cache locks); ``READ_COMMITTED`` takes no lock.
* **Hooks** receive the transaction of the task run they belong to; ``get`` on it falls
  back to the enclosing transactions' values. A failing hook is logged: a commit hook's
  failure rolls the transaction back, a rollback hook's failure does not stop the other
  rollback hooks (Prefect stops at the first; undoing as much as possible is the point).

Outside any transaction a task's ``on_commit`` hooks run when it completes (its own
implicit transaction commits at once, as in Prefect); its ``on_rollback`` hooks never do.
The engine pays for none of this unless a transaction is open or the task has
``on_commit`` hooks: the check is one context-variable read.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import enum
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from headwater.context import TRANSACTION

if TYPE_CHECKING:
    from types import TracebackType

    from headwater.context import RunTree, TaskRun
    from headwater.results import ResultStorage, ResultStore
    from headwater.states import State
    from headwater.tasks import Task

Hook = Callable[["Transaction"], Any]
E = TypeVar("E", bound=enum.Enum)


class IsolationLevel(enum.Enum):
    """Whether a keyed transaction locks its key (``SERIALIZABLE``) or not."""

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class CommitMode(enum.Enum):
    """When staged work is committed (see the module docstring)."""

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class TransactionState(enum.Enum):
    """Where a transaction is in its life."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


_NOT_SET: Any = object()

CURRENT: contextvars.ContextVar[Transaction | None] = TRANSACTION
"""The innermost open transaction (copied into the task runner's worker threads)."""

_log = logging.getLogger("headwater.transactions")


class Transaction:
    """One transaction: what it staged, its children, its hooks and its state.

    Made by :func:`transaction` (a ``with`` block) or by the engine for a task run that
    ends inside one.
    """

    def __init__(
            self, key: str | None = None, store: ResultStore | None = None, *,
            commit_mode: CommitMode | None = None,
            isolation_level: IsolationLevel | None = None, overwrite: bool = False,
            write_on_commit: bool = True, logger: Any = None,
            task_run: TaskRun | None = None) -> None:
        if key is not None and not (isinstance(key, str) and key.strip()):
            raise ValueError(f"transaction key must be a non-empty string, got {key!r}")
        self.key = key
        self.store = store
        self.commit_mode = _member(CommitMode, commit_mode, "commit_mode")
        self.isolation_level = _member(IsolationLevel, isolation_level, "isolation_level")
        self.overwrite = overwrite
        self.write_on_commit = write_on_commit
        self.logger = logger
        self.task_run = task_run
        """For a task run's transaction: that task run."""
        self.state = TransactionState.PENDING
        self.parent: Transaction | None = None
        self.children: list[Transaction] = []
        self.on_commit_hooks: list[Hook] = []
        self.on_rollback_hooks: list[Hook] = []
        self._values: dict[str, Any] = {}
        self._staged: Any = None
        self._expiration: float | None = None
        self._token: contextvars.Token[Transaction | None] | None = None
        self._key_lock: contextlib.ExitStack | None = None
        self._mutex = threading.RLock()  # task runs on worker threads join concurrently
        self._tree: RunTree | None = None

    # --- values shared inside the transaction ------------------------------------------

    def set(self, name: str, value: Any) -> None:
        """Store ``value`` under ``name`` for the rest of the transaction and its hooks."""
        self._values[name] = value

    def get(self, name: str, default: Any = _NOT_SET) -> Any:
        """A copy of the value set under ``name`` here or in an enclosing transaction
        (change it with :meth:`set`); ``default``, or ``ValueError``, when none is."""
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return copy.deepcopy(txn._values[name])
            txn = txn.parent
        if default is not _NOT_SET:
            return default
        raise ValueError(f"transaction value {name!r} was never set; call "
                         f"txn.set({name!r}, ...) first or pass a default to get()")

    # --- state -------------------------------------------------------------------------

    def is_committed(self) -> bool:
        """Committed here, or by an earlier run (a record is stored under the key)."""
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        """Rolled back."""
        return self.state is TransactionState.ROLLED_BACK

    def is_staged(self) -> bool:
        """Holds staged work waiting for a commit."""
        return self.state is TransactionState.STAGED

    def is_pending(self) -> bool:
        """Not entered yet."""
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        """Open (its block is running)."""
        return self.state is TransactionState.ACTIVE

    def get_parent(self) -> Transaction | None:
        """The enclosing transaction, if any."""
        return self.parent

    def read(self) -> Any:
        """The value committed under the key (``None`` without a key or a record)."""
        if self.store is None or self.key is None:
            return None
        _, value = self.store.read(self.key)
        return value

    def _set_state(self, state: TransactionState) -> None:
        self.state = state
        tree = self._root_tree()
        if tree is not None:
            with tree.lock:
                tree.transaction_revision += 1

    def _root_tree(self) -> RunTree | None:
        txn: Transaction | None = self
        while txn is not None:
            if txn._tree is not None:
                return txn._tree
            txn = txn.parent
        return None

    # --- staging, commit and rollback ---------------------------------------------------

    def stage(self, value: Any, on_rollback_hooks: list[Hook] | None = None,
              on_commit_hooks: list[Hook] | None = None,
              expiration: float | None = None) -> None:
        """Hold ``value`` (written under the key on commit) and the hooks to run then."""
        with self._mutex:
            if self.state is TransactionState.COMMITTED:
                return
            self._staged = value
            self._expiration = expiration
            self.on_rollback_hooks.extend(on_rollback_hooks or ())
            self.on_commit_hooks.extend(on_commit_hooks or ())
            self._set_state(TransactionState.STAGED)

    def add_child(self, child: Transaction) -> None:
        """Make ``child`` part of this transaction (it commits or rolls back with it)."""
        with self._mutex:
            child.parent = self
            self.children.append(child)

    def commit(self) -> bool:
        """Commit the children, run the commit hooks, write the record; True if it did.

        A failure while committing is logged and rolls the transaction back.
        """
        with self._mutex:
            if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
                self._release_key()
                return False
            try:
                for child in list(self.children):
                    child.commit()
                for hook in self.on_commit_hooks:
                    self._run_hook(hook, "commit")
                if self.store is not None and self.key is not None and self.write_on_commit:
                    self.store.write(self.key, self._staged, self._expiration)
                    if self.task_run is not None:
                        self.task_run.result_location = self.store.location(self.key)
            except Exception as exc:
                self._logger().error("Transaction %s could not commit (%s: %s); rolling "
                                     "back", self._label(), type(exc).__name__, exc)
                self.rollback()
                return False
            self._set_state(TransactionState.COMMITTED)
            self._release_key()
            return True

    def rollback(self) -> bool:
        """Run the rollback hooks (newest first), then roll back the children, newest
        first; True if it rolled back (a committed transaction is never rolled back)."""
        with self._mutex:
            if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
                return False
            try:
                for hook in reversed(self.on_rollback_hooks):
                    try:
                        self._run_hook(hook, "rollback")
                    except Exception:
                        continue
                self._set_state(TransactionState.ROLLED_BACK)
                for child in reversed(list(self.children)):
                    child.rollback()
            finally:
                self._release_key()
            return True

    def _run_hook(self, hook: Hook, kind: str) -> None:
        name = getattr(hook, "__name__", repr(hook))
        self._logger().info("Running %s hook %r", kind, name)
        try:
            outcome = hook(self)
            if hasattr(outcome, "__await__"):
                from headwater.async_engine import run_awaitable_blocking

                run_awaitable_blocking(outcome)
        except Exception as exc:
            self._logger().error("%s hook %r of transaction %s failed: %s: %s",
                                 kind.capitalize(), name, self._label(),
                                 type(exc).__name__, exc)
            raise

    def _logger(self) -> Any:
        if self.logger is not None:
            return self.logger
        return _log

    def _label(self) -> str:
        if self.task_run is not None:
            return f"of task run {self.task_run.name!r}"
        return repr(self.key) if self.key else "(no key)"

    # --- the with block -----------------------------------------------------------------

    def _begin(self) -> None:
        if self._token is not None or self.state is not TransactionState.PENDING:
            raise RuntimeError("a transaction can be entered once; make a new one with "
                               "transaction(...) for each with block")
        parent = CURRENT.get()
        if self.commit_mode is None:
            self.commit_mode = parent.commit_mode if parent else CommitMode.LAZY
        if self.isolation_level is None:
            self.isolation_level = (parent.isolation_level if parent
                                    else IsolationLevel.READ_COMMITTED)
        self.parent = parent
        self._set_state(TransactionState.ACTIVE)
        if self.store is not None and self.key is not None:
            if self.isolation_level is IsolationLevel.SERIALIZABLE:
                stack = contextlib.ExitStack()
                stack.enter_context(self.store.lock(f"transactions/{self.key}"))
                self._key_lock = stack
            if not self.overwrite and self.store.exists(self.key):
                self._set_state(TransactionState.COMMITTED)
        self._token = CURRENT.set(self)

    def _end(self, failed: bool) -> None:
        if self._token is None:
            raise RuntimeError("transaction exited without being entered")
        try:
            if failed:
                self.rollback()
            elif self.commit_mode is CommitMode.EAGER:
                self.commit()
            if self.parent is not None:
                self.parent.add_child(self)
                if self.state is TransactionState.ROLLED_BACK:
                    self.parent.rollback()
                return  # the parent commits or rolls back what is still staged
            if not failed:
                if self.commit_mode is CommitMode.OFF:
                    self.rollback()
                elif self.commit_mode is CommitMode.LAZY:
                    self.commit()
            self._release_all()
        finally:
            CURRENT.reset(self._token)
            self._token = None

    def _release_key(self) -> None:
        if self._key_lock is not None:
            stack, self._key_lock = self._key_lock, None
            stack.close()

    def _release_all(self) -> None:
        self._release_key()
        for child in self.children:
            child._release_all()

    def __enter__(self) -> Transaction:
        self._begin()
        self._register()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._end(failed=exc_type is not None)

    def _register(self) -> None:
        """A top-level transaction inside a flow run appears in its run record."""
        if self.parent is not None:
            return
        from headwater.context import FLOW_RUN_CONTEXT

        flow_ctx = FLOW_RUN_CONTEXT.get()
        if flow_ctx is not None:
            tree = flow_ctx.tree
            with tree.lock:
                tree.transactions.append(self)
                tree.transaction_revision += 1
            self._tree = tree

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.name})"


def _member(kind: type[E], value: Any, field: str) -> E | None:
    """``value`` as a member of ``kind`` (its name, in any case, is accepted too)."""
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str) and value.upper() in kind.__members__:
        return kind[value.upper()]
    raise ValueError(f"transaction {field} must be one of "
                     f"{', '.join(f'{kind.__name__}.{m}' for m in kind.__members__)}, "
                     f"got {value!r}")


def get_transaction() -> Transaction | None:
    """The innermost open transaction, or ``None``."""
    return CURRENT.get()


def transaction(  # noqa: PLR0917 - Prefect's signature
        key: str | None = None, store: ResultStore | ResultStorage | str | None = None,
        commit_mode: CommitMode | None = None,
        isolation_level: IsolationLevel | None = None, overwrite: bool = False,
        write_on_commit: bool = True, logger: Any = None) -> Transaction:
    """A transaction to use as ``with transaction(...) as txn:`` (see the module docs).

    ``key`` makes it idempotent: a record under the key in result storage means it was
    committed by an earlier run. ``store`` is where that record lives: a
    :class:`~headwater.results.ResultStore`, a storage path or URL, or (default) the
    current flow's result storage.
    """
    resolved = _store(store) if key is not None or store is not None else None
    if logger is None:
        from headwater.context import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT

        if FLOW_RUN_CONTEXT.get() is not None or TASK_RUN_CONTEXT.get() is not None:
            from headwater.logging import get_run_logger

            logger = get_run_logger()
    return Transaction(key, resolved, commit_mode=commit_mode,
                       isolation_level=isolation_level, overwrite=overwrite,
                       write_on_commit=write_on_commit, logger=logger)


@contextlib.asynccontextmanager
async def atransaction(  # noqa: PLR0917 - Prefect's signature
        key: str | None = None, store: ResultStore | ResultStorage | str | None = None,
        commit_mode: CommitMode | None = None,
        isolation_level: IsolationLevel | None = None, overwrite: bool = False,
        write_on_commit: bool = True, logger: Any = None) -> AsyncIterator[Transaction]:
    """:func:`transaction` for ``async with`` (hooks of a sync task run where they are)."""
    txn = transaction(key, store, commit_mode, isolation_level, overwrite, write_on_commit,
                      logger)
    txn._begin()
    txn._register()
    failed = True
    try:
        yield txn
        failed = False
    finally:
        txn._end(failed)


def _store(value: ResultStore | ResultStorage | str | None) -> ResultStore:
    from headwater.results import ResultStore, get_serializer, resolve_storage

    if isinstance(value, ResultStore):
        return value
    if value is None:
        from headwater.context import FLOW_RUN_CONTEXT

        flow_ctx = FLOW_RUN_CONTEXT.get()
        if flow_ctx is not None:
            return flow_ctx.result_store()
    return ResultStore(resolve_storage(value), get_serializer(None))


# --- the engine's side ------------------------------------------------------------------


class StagedWrite:
    """A task run's result record, held until its transaction commits."""

    __slots__ = ("expiration", "key", "store", "value")

    def __init__(self, store: ResultStore, key: str, value: Any,
                 expiration: float | None) -> None:
        self.store = store
        self.key = key
        self.value = value
        self.expiration = expiration


def join(task: Task[..., Any], task_run: TaskRun, state: State[Any],
         staged: StagedWrite | None) -> None:
    """Settle a finished task run with the open transaction (or with its own).

    Called by the engine only when a transaction is open or the task has ``on_commit``
    hooks.
    """
    from headwater.states import StateType

    parent = CURRENT.get()
    if state.type is not StateType.COMPLETED:
        if parent is not None and state.is_final() and state.type is not StateType.PENDING:
            parent.rollback()  # a failed task run fails the transaction it is in
        return
    if state.name == "Cached":
        return  # committed by an earlier run
    txn = Transaction(staged.key if staged else None, staged.store if staged else None,
                      commit_mode=parent.commit_mode if parent else CommitMode.LAZY,
                      task_run=task_run, logger=parent.logger if parent else None)
    txn.stage(staged.value if staged else None,
              on_rollback_hooks=list(getattr(task, "on_rollback_hooks", ())),
              on_commit_hooks=list(getattr(task, "on_commit_hooks", ())),
              expiration=staged.expiration if staged else None)
    if parent is not None:
        parent.add_child(txn)
    if parent is None or txn.commit_mode is CommitMode.EAGER:
        txn.commit()


def describe(txn: Transaction) -> dict[str, Any]:
    """``txn`` for the run record: key, state, the task runs staged in it, nested ones."""
    tasks = [c.task_run.id for c in txn.children if c.task_run is not None]
    nested = [describe(c) for c in txn.children if c.task_run is None]
    out: dict[str, Any] = {"state": txn.state.name, "taskRunIds": tasks}
    if txn.key is not None:
        out["key"] = txn.key
    if nested:
        out["transactions"] = nested
    return out


__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionState",
    "atransaction",
    "get_transaction",
    "transaction",
]
