"""Run records and the context variables that say which run the current code is in.

The engine keeps one small slotted record per flow run and per task run; a 10,000-task
flow holds 10,000 of them, so they carry no per-run dictionaries beyond the parameters.
Everything a whole run *tree* (a root flow run and its subflows) reports in its summary
lives in one :class:`RunTree` shared by every flow run of the tree.

``contextvars`` (not thread-locals) carry the current run: the task runner copies the
context into worker threads so submitted tasks see their flow run.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from headwater.states import State

if TYPE_CHECKING:
    from headwater.flows import Flow
    from headwater.results import ResultStore
    from headwater.task_runners import TaskRunner
    from headwater.tasks import Task
    from headwater.transactions import StagedWrite, Transaction


class TaskRun:
    """What happened to one call of a task."""

    __slots__ = (
        "assets",
        "cache_key",
        "end_time",
        "errors",
        "flow_run_id",
        "id",
        "map_index",
        "metadata",
        "name",
        "parameters",
        "result_location",
        "run_count",
        "start_time",
        "state",
        "state_history",
        "tags",
        "task_key",
        "task_name",
        "upstream",
        "wait_for",
    )

    def __init__(  # noqa: PLR0917 - hot path, positional on purpose
            self, id: str, name: str, task_name: str, flow_run_id: str | None,
                 state: State[Any], tags: frozenset[str], task_key: str = "",
                 map_index: int | None = None) -> None:
        self.id = id
        self.name = name
        self.task_name = task_name
        self.task_key = task_key or task_name
        self.flow_run_id = flow_run_id
        state.run_id = id
        self.state = state
        self.state_history: list[State[Any]] = [state]
        self.run_count = 0
        self.parameters: dict[str, Any] | None = None
        self.cache_key: str | None = None
        self.assets: list[dict[str, Any]] | None = None
        self.tags = tags
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.map_index = map_index
        self.upstream: list[TaskRun] | None = None
        """Task runs whose futures or results fed this run's inputs (the record's graph)."""
        self.wait_for: list[TaskRun] | None = None
        self.errors: dict[int, dict[str, str]] | None = None
        """The error of each failed attempt, by attempt number (set only on failure)."""
        self.result_location: str | None = None
        self.metadata: dict[str, Any] | None = None
        """Facts about a task run executed outside the engine (``record_task_run``'s
        ``metadata``: dbt's rows affected, compiled SQL path), for the run record."""

    def set_state(self, state: State[Any]) -> None:
        """Move to ``state`` and remember the transition."""
        state.run_id = self.id
        self.state = state
        self.state_history.append(state)

    def __repr__(self) -> str:
        return f"TaskRun(name={self.name!r}, state={self.state!r})"


class FlowRun:
    """What happened to one call of a flow (top-level or subflow)."""

    __slots__ = (
        "deployment_name",
        "end_time",
        "flow_name",
        "id",
        "name",
        "parameters",
        "parent_flow_run_id",
        "parent_task_run_id",
        "parent_task_run_name",
        "run_count",
        "scheduled_start_time",
        "start_time",
        "state",
        "state_history",
        "tags",
    )

    def __init__(  # noqa: PLR0917 - mirrors TaskRun
            self, id: str, name: str, flow_name: str, parameters: dict[str, Any],
                 state: State[Any], parent_flow_run_id: str | None = None) -> None:
        self.id = id
        self.name = name
        self.flow_name = flow_name
        self.parameters = parameters
        state.run_id = id
        self.state = state
        self.state_history: list[State[Any]] = [state]
        self.parent_flow_run_id = parent_flow_run_id
        self.parent_task_run_id: str | None = None
        """For a subflow: the id of the task run that stands for the call in its parent."""
        self.parent_task_run_name: str | None = None
        self.run_count = 0
        self.deployment_name: str | None = None
        self.scheduled_start_time: float | None = None
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.tags: frozenset[str] = frozenset()

    def set_state(self, state: State[Any]) -> None:
        """Move to ``state`` and remember the transition."""
        state.run_id = self.id
        self.state = state
        self.state_history.append(state)

    def __repr__(self) -> str:
        return f"FlowRun(name={self.name!r}, state={self.state!r})"


class RunTree:
    """What a root flow run and all its subflows report together in the run summary."""

    def __init__(self, root: FlowRun, result_storage: Any = None) -> None:
        self.root = root
        self.result_storage = result_storage
        """The root flow's ``result_storage`` (``None``: the default location)."""
        self.task_runs: list[TaskRun] = []
        self.flow_runs: list[FlowRun] = []
        self.assets: list[dict[str, Any]] = []
        self.artifacts: list[str] = []
        self.artifact_records: list[dict[str, Any]] = []
        """Every artifact with its content, for the run record."""
        self.artifact_revision = 0
        """Counts artifact writes (creations and progress updates): the run record is
        rewritten when it changes."""
        # id(value) -> (value, producing task run): infers the task runs (and asset
        # lineage) whose results are passed to a task as arguments. The value is kept so
        # its id cannot be reused by another object while the run lasts.
        self.result_owners: dict[int, tuple[Any, TaskRun]] = {}
        self.transactions: list[Transaction] = []
        """The run's top-level transactions (their children nest inside), for the record."""
        self.transaction_revision = 0
        """Counts transaction state changes: the run record is rewritten when it changes."""
        self.recorder: Any = None
        """The :class:`headwater.runrecord.Recorder` of a root run (``None``: no record)."""
        self.record_written: bool | None = None
        """Whether the final run record reached the run store (``None``: no store)."""
        self.lock = threading.Lock()
        self._asset_versions: dict[str, str] = {}
        self._assets_indexed = 0

    def asset_versions(self) -> dict[str, str]:
        """Each asset key this run materialized, to its latest version in the run (call
        with :attr:`lock` held; do not modify the mapping).

        ``assets`` only grows, so the index takes in the records added since the last
        call: recording the n-th materialization costs O(1), not O(n) (a 2,000-model dbt
        project records 2,000, each looking up its upstream assets here)."""
        for record in self.assets[self._assets_indexed:]:
            self._asset_versions[record["key"]] = record["version"]
        self._assets_indexed = len(self.assets)
        return self._asset_versions


class FlowRunContext:
    """The flow run the current code belongs to, and the settings its tasks inherit."""

    def __init__(  # noqa: PLR0917 - internal, built in one place
            self, flow: Flow[..., Any], flow_run: FlowRun, task_runner: TaskRunner,
            tree: RunTree, result_store: Callable[[], ResultStore],
            persist_result: bool | None, result_serializer: str | None,
            log_prints: bool) -> None:
        self.flow = flow
        self.flow_run = flow_run
        self.task_runner = task_runner
        self.tree = tree
        self.result_store = result_store
        self.persist_result = persist_result
        self.result_serializer = result_serializer
        self.log_prints = log_prints
        self.task_name_counts: dict[str, int] = {}
        self.submitted = False
        """Whether anything went to the task runner (the async engine then drains it)."""


class TaskRunContext:
    """The task run the current code belongs to (``cache_key_fn`` receives this)."""

    __slots__ = ("args", "asset_metadata", "flow_run_context", "kwargs", "staged", "task",
                 "task_run")

    def __init__(self, task: Task[..., Any], task_run: TaskRun, args: tuple[Any, ...],
                 kwargs: dict[str, Any], flow_run_context: FlowRunContext | None) -> None:
        self.task = task
        self.task_run = task_run
        self.args = args
        self.kwargs = kwargs
        self.flow_run_context = flow_run_context
        self.asset_metadata: dict[str, dict[str, Any]] = {}
        self.staged: StagedWrite | None = None
        """The result record a transaction writes when it commits (None: none staged)."""

    @property
    def parameters(self) -> dict[str, Any]:
        """The task's arguments by parameter name (bound on first use: binding is slow)."""
        if self.task_run.parameters is None:
            self.task_run.parameters = self.task.bind_parameters(self.args, self.kwargs)
        return self.task_run.parameters


FLOW_RUN_CONTEXT: contextvars.ContextVar[FlowRunContext | None] = contextvars.ContextVar(
    "headwater_flow_run", default=None
)
TASK_RUN_CONTEXT: contextvars.ContextVar[TaskRunContext | None] = contextvars.ContextVar(
    "headwater_task_run", default=None
)


TRANSACTION: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "headwater_transaction", default=None
)
"""The innermost open transaction (:mod:`headwater.transactions`, loaded on first use:
the engine only reads this variable)."""


TAGS: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "headwater_tags", default=frozenset()
)


@contextlib.contextmanager
def tags(*new_tags: str) -> Iterator[frozenset[str]]:
    """Add ``new_tags`` to every task run and flow run created inside the block.

    As in Prefect, blocks nest (tags accumulate) and the tags are yielded::

        with tags("nightly", "finance"):
            extract(day)          # its task run carries both tags, plus the task's own
    """
    current = TAGS.get() | frozenset(new_tags)
    token = TAGS.set(current)
    try:
        yield current
    finally:
        TAGS.reset(token)


def get_run_context() -> TaskRunContext | FlowRunContext:
    """Return the innermost run context; raise ``MissingContextError`` outside any run."""
    task_ctx = TASK_RUN_CONTEXT.get()
    if task_ctx is not None:
        return task_ctx
    flow_ctx = FLOW_RUN_CONTEXT.get()
    if flow_ctx is not None:
        return flow_ctx
    from headwater.exceptions import MissingContextError

    raise MissingContextError(
        "No run context: get_run_context() works only inside a @flow or @task while it runs."
    )
