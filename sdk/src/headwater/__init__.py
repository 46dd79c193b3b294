"""Headwater SDK: Prefect-style ``@flow``/``@task`` engine.

Moving a Prefect 3 flow to Headwater is an import change::

    from headwater import flow, task, get_run_logger

Importing this package loads only the standard library and the engine's own modules;
pydantic (parameter coercion, schemas) and fsspec load on first use.
"""

from typing import TYPE_CHECKING, Any

from headwater import runtime
from headwater.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
)
from headwater.context import get_run_context, tags
from headwater.flows import Flow, flow
from headwater.futures import PrefectFuture, PrefectFutureList, TaskFuture, as_completed, wait
from headwater.logging import get_run_logger
from headwater.states import State, StateType
from headwater.task_runners import ThreadPoolTaskRunner
from headwater.tasks import Task, exponential_backoff, task, task_input_hash
from headwater.utilities.annotations import allow_failure, quote, unmapped

if TYPE_CHECKING:
    from headwater.artifacts import (
        create_image_artifact,
        create_link_artifact,
        create_markdown_artifact,
        create_progress_artifact,
        create_table_artifact,
        update_progress_artifact,
    )
    from headwater.assets import Asset, AssetProperties, add_asset_metadata, materialize
    from headwater.external import record_asset_materialization, record_task_run
    from headwater.secrets import Secret
    from headwater.transactions import get_transaction, transaction

__version__ = "0.1.0"

# Loaded on first use: most flows never touch them and they cost import time.
_LAZY = {
    "create_image_artifact": "headwater.artifacts",
    "create_link_artifact": "headwater.artifacts",
    "create_markdown_artifact": "headwater.artifacts",
    "create_progress_artifact": "headwater.artifacts",
    "create_table_artifact": "headwater.artifacts",
    "update_progress_artifact": "headwater.artifacts",
    "Asset": "headwater.assets",
    "AssetProperties": "headwater.assets",
    "add_asset_metadata": "headwater.assets",
    "materialize": "headwater.assets",
    "record_asset_materialization": "headwater.external",
    "record_task_run": "headwater.external",
    "Secret": "headwater.secrets",
    "get_transaction": "headwater.transactions",
    "transaction": "headwater.transactions",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'headwater' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "Asset",
    "AssetProperties",
    "Flow",
    "PrefectFuture",
    "PrefectFutureList",
    "Secret",
    "State",
    "StateType",
    "Task",
    "TaskFuture",
    "ThreadPoolTaskRunner",
    "add_asset_metadata",
    "allow_failure",
    "as_completed",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "exponential_backoff",
    "flow",
    "get_run_context",
    "get_run_logger",
    "get_transaction",
    "materialize",
    "quote",
    "record_asset_materialization",
    "record_task_run",
    "runtime",
    "tags",
    "task",
    "task_input_hash",
    "transaction",
    "unmapped",
    "update_progress_artifact",
    "wait",
]
