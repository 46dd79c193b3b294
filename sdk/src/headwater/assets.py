"""Assets: ``@materialize`` tasks, lineage, and skipping unchanged re-materializations.

An asset is a named data product (``s3://lake/raw/orders``). A ``@materialize`` task
declares which assets it writes; its upstream assets are the explicit ``asset_deps``
plus every asset materialized by a task whose result (or future) is passed in as an
argument — lineage follows the data, as in Prefect.

Each materialization gets a *version*: a hash of the task's code, its inputs and the
versions of its upstream assets. When a run would produce the version an asset already
has (nothing changed) and the stored result is readable, the task is skipped (state
``Cached``) and the existing version is reported again, so downstream assets see an
unchanged upstream and skip too. ``refresh_cache=True`` forces a rebuild.

Storage layout: ``assets/<slug>/latest.json`` (current version), ``assets/<slug>/history/``
(one record per real materialization) and ``runs/<flow-run-id>/lineage.json``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from headwater import cache_policies
from headwater.context import TASK_RUN_CONTEXT, RunTree, TaskRun, TaskRunContext
from headwater.tasks import Task

if TYPE_CHECKING:
    from headwater.results import ResultStorage, ResultStore

P = ParamSpec("P")
R = TypeVar("R")

_KEY_PATTERN = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$")


@dataclass(frozen=True)
class AssetProperties:
    """Human-facing information about an asset."""

    name: str | None = None
    description: str | None = None
    url: str | None = None
    owners: tuple[str, ...] = ()


@dataclass(frozen=True)
class Asset:
    """A data product identified by a URI-style ``key`` such as ``s3://bucket/path``."""

    key: str
    properties: AssetProperties | None = None

    def __post_init__(self) -> None:
        if not _KEY_PATTERN.match(self.key) or len(self.key) > 512:
            raise ValueError(
                f"asset key {self.key!r} is not valid: use a URI such as "
                "'s3://bucket/table' or 'warehouse://analytics/daily' (≤ 512 characters, "
                "no spaces)"
            )


def _as_asset(value: str | Asset) -> Asset:
    return value if isinstance(value, Asset) else Asset(value)


def asset_slug(key: str) -> str:
    """A filesystem-safe, collision-free directory name for asset ``key``."""
    readable = re.sub(r"[^a-zA-Z0-9]+", "-", key).strip("-")[:60]
    return f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class MaterializingTask(Task[P, R]):
    """A task that writes assets; created by :func:`materialize`."""

    def __init__(self, fn: Callable[P, R], assets: Iterable[str | Asset] = (),
                 asset_deps: Iterable[str | Asset] | None = None, **options: Any) -> None:
        super().__init__(fn, **options)
        self.assets = [_as_asset(a) for a in assets]
        self.asset_deps = [_as_asset(a) for a in asset_deps or ()]
        if not self.assets:
            raise ValueError(f"@materialize on {self.name!r} needs at least one asset")

    def with_options(self, **options: Any) -> MaterializingTask[P, R]:
        """A copy with some options changed (assets kept unless given)."""
        assets = options.pop("assets", self.assets)
        asset_deps = options.pop("asset_deps", self.asset_deps)
        return MaterializingTask(self.fn, assets, asset_deps, **{**self._options, **options})


def materialize(*assets: str | Asset, asset_deps: Iterable[str | Asset] | None = None,
                **task_options: Any) -> Callable[[Callable[P, R]], MaterializingTask[P, R]]:
    """Decorate a function as a task that materializes ``assets``."""
    def decorator(fn: Callable[P, R]) -> MaterializingTask[P, R]:
        return MaterializingTask(fn, assets, asset_deps, **task_options)

    return decorator


def add_asset_metadata(asset: str | Asset, metadata: dict[str, Any]) -> None:
    """Attach ``metadata`` (JSON values) to this run's materialization of ``asset``."""
    task_ctx = TASK_RUN_CONTEXT.get()
    key = _as_asset(asset).key
    if task_ctx is None or key not in {a.key for a in getattr(task_ctx.task, "assets", ())}:
        raise RuntimeError(
            f"add_asset_metadata({key!r}) must be called inside the @materialize task that "
            "materializes that asset"
        )
    task_ctx.asset_metadata.setdefault(key, {}).update(metadata)


# --- versions, skipping and records -------------------------------------------------------


@dataclass
class MaterializationPlan:
    """What a materializing task run would produce, computed before it runs."""

    assets: list[Asset]
    version: str
    upstream: dict[str, str]
    unchanged: bool
    result_key: str
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_latest(storage: ResultStorage, key: str) -> dict[str, Any] | None:
    """The current record of asset ``key``, or ``None`` if never materialized."""
    data = storage.read(f"assets/{asset_slug(key)}/latest.json")
    return json.loads(data) if data else None


def asset_history(storage: ResultStorage, key: str) -> list[dict[str, Any]]:
    """Every real materialization of asset ``key``, oldest first."""
    records = []
    for path in storage.list(f"assets/{asset_slug(key)}/history"):
        data = storage.read(path)
        if data:
            records.append(json.loads(data))
    return sorted(records, key=lambda r: r.get("materializedAt", 0))


def _upstream_assets(task_ctx: TaskRunContext, upstream_runs: list[TaskRun],
                     tree: RunTree | None) -> dict[str, str]:
    found: dict[str, str] = {}
    producers = list(upstream_runs)
    if tree is not None:
        values = list(task_ctx.args) + list(task_ctx.kwargs.values())
        for value in values:
            entry = tree.result_owners.get(id(value))
            if entry is not None and entry[0] is value:
                producers.append(entry[1])
    for run in producers:
        for record in run.assets or ():
            found[record["key"]] = record["version"]
    return found


def plan_materialization(task: Task[..., Any], task_ctx: TaskRunContext,
                         upstream_runs: list[TaskRun], store: ResultStore) -> MaterializationPlan:
    """Compute the version this run would give its assets, and whether that is a no-op."""
    flow_ctx = task_ctx.flow_run_context
    materializing: MaterializingTask[..., Any] = task  # type: ignore[assignment]
    upstream = _upstream_assets(task_ctx, upstream_runs, flow_ctx.tree if flow_ctx else None)
    for dep in materializing.asset_deps:
        if dep.key not in upstream:
            latest = read_latest(store.storage, dep.key)
            upstream[dep.key] = latest["version"] if latest else "external"
    fingerprint = cache_policies.hash_objects(
        sorted(a.key for a in materializing.assets),
        cache_policies.hash_source(task.fn),
        cache_policies.hash_inputs(task_ctx.parameters),
        sorted(upstream.items()),
    )
    version = fingerprint[:16]
    unchanged = all(
        (latest := read_latest(store.storage, a.key)) is not None
        and latest.get("version") == version
        for a in materializing.assets
    )
    return MaterializationPlan(list(materializing.assets), version, upstream, unchanged,
                               f"asset-{fingerprint}")


def record_materialization(plan: MaterializationPlan, task_ctx: TaskRunContext,
                           store: ResultStore, skipped: bool) -> None:
    """Write the asset records and add them to the run's lineage."""
    from headwater.runrecord import iso_ms

    task_run = task_ctx.task_run
    flow_ctx = task_ctx.flow_run_context
    flow_run_id = flow_ctx.flow_run.id if flow_ctx else None
    now = time.time()
    records: list[dict[str, Any]] = []
    for asset in plan.assets:
        record: dict[str, Any] = {
            "key": asset.key,
            "version": plan.version,
            "upstream": sorted(plan.upstream),
            "upstreamVersions": plan.upstream,
            "skipped": skipped,
            "taskRunId": task_run.id,
            "time": iso_ms(now),
            "metadata": task_ctx.asset_metadata.get(asset.key, {}),
        }
        if flow_run_id is not None:
            record["flowRunId"] = flow_run_id
        if not skipped:
            stored = {**record, "flowRunId": flow_run_id, "materializedAt": now,
                      "taskRunName": task_run.name, **_run_names(flow_ctx)}
            if asset.properties is not None:
                stored["properties"] = {k: v for k, v in vars(asset.properties).items() if v}
            body = json.dumps(stored, default=str, indent=1).encode()
            slug = asset_slug(asset.key)
            store.storage.write(f"assets/{slug}/history/{now:.6f}-{plan.version}.json", body)
            store.storage.write(f"assets/{slug}/latest.json", body)
        records.append(record)
    task_run.assets = records
    if flow_ctx is not None:
        tree = flow_ctx.tree
        value = task_run.state.data
        with tree.lock:
            tree.assets.extend(records)
            if value is not None and not isinstance(value, bool):
                tree.result_owners[id(value)] = (value, task_run)


def _run_names(flow_ctx: Any) -> dict[str, str]:
    """The FlowRun (namespace and name) a materialization belongs to, for readers such as
    ``headwater lineage``: the operator's contract variables in a pod, else the root flow
    run's name."""
    import os

    from headwater import contract

    names: dict[str, str] = {}
    namespace = os.environ.get(contract.ENV_NAMESPACE)
    name = os.environ.get(contract.ENV_FLOW_RUN_NAME)
    if namespace:
        names["namespace"] = namespace
    if name:
        names["flowRunName"] = name
    elif flow_ctx is not None:
        names["flowRunName"] = flow_ctx.tree.root.name
    return names


def write_lineage(tree: RunTree) -> None:
    """Write ``runs/<flow-run-id>/lineage.json`` for the root flow run."""
    from headwater.results import resolve_storage

    storage = resolve_storage(tree.result_storage)
    body = {
        "flowRunId": tree.root.id,
        "flowRunName": tree.root.name,
        "flowName": tree.root.flow_name,
        "assets": tree.assets,
    }
    storage.write(f"runs/{tree.root.id}/lineage.json",
                  json.dumps(body, default=str, indent=1).encode())
