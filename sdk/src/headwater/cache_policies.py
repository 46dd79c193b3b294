"""Cache policies with Prefect 3's names: ``INPUTS``, ``TASK_SOURCE``, ``FLOW_PARAMETERS``,
``RUN_ID``, ``NO_CACHE`` and ``DEFAULT`` (= ``INPUTS + TASK_SOURCE + RUN_ID``).

A policy turns a task run into a cache key, or ``None`` for "do not cache". Policies
combine with ``+`` (every part must agree for a hit) and ``INPUTS - "name"`` leaves a
parameter out of the key (for clients, connections and other values that cannot be
hashed or must not matter).

Keys are SHA-256 hex digests of a canonical JSON encoding. Values JSON cannot encode
fall back to pickle; a value neither can encode is an error naming the parameter,
never a silently unstable key.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.context import TaskRunContext


def _canonical(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(v) for v in value), key=repr)
    if hasattr(value, "isoformat"):
        return {"__t": type(value).__name__, "v": value.isoformat()}
    if hasattr(value, "model_dump"):
        return _canonical(value.model_dump(mode="json"))
    # Anything else must pickle deterministically; an object without a stable pickle
    # (a lock, a client) raises and the caller names the parameter.
    return {"__pickle": hashlib.sha256(pickle.dumps(value, protocol=4)).hexdigest()}


def hash_objects(*values: Any) -> str:
    """A stable SHA-256 hex digest of ``values``."""
    text = json.dumps([_canonical(v) for v in values], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def hash_inputs(parameters: Mapping[str, Any], exclude: frozenset[str] = frozenset()) -> str:
    """Hash task inputs; an unhashable one raises ``ValueError`` naming the parameter."""
    parts: dict[str, Any] = {}
    for name, value in parameters.items():
        if name in exclude:
            continue
        try:
            parts[name] = _canonical(value)
        except Exception as exc:  # re-raised below with the parameter's name
            raise ValueError(
                f"cannot compute a cache key: parameter {name!r} (a {type(value).__name__}) "
                f"cannot be hashed ({exc}). Exclude it with cache_policy=INPUTS - {name!r}, "
                "or pass cache_key_fn."
            ) from exc
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_source_hashes: dict[Any, str] = {}


def hash_source(fn: Any) -> str:
    """Hash a function's source (its bytecode when the source is unavailable); cached."""
    cached = _source_hashes.get(fn)
    if cached is not None:
        return cached
    import inspect

    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr(code.co_code + repr(code.co_consts).encode()) if code else repr(fn)
    digest = hashlib.sha256(text.encode()).hexdigest()
    _source_hashes[fn] = digest
    return digest


class CachePolicy:
    """Base class: ``compute_key`` returns a key or ``None`` (no caching).

    Policies are immutable values: equal when of the same class with equal settings.
    """

    __slots__ = ()

    def _settings(self) -> tuple[Any, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CachePolicy) or type(self) is not type(other):
            return False
        return self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash((type(self), self._settings()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._settings()!r}"

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: Mapping[str, Any],
        flow_parameters: Mapping[str, Any],
    ) -> str | None:
        """The cache key for this task run, or ``None``."""
        raise NotImplementedError

    def __add__(self, other: CachePolicy) -> CachePolicy:
        mine = self.policies if isinstance(self, CompoundCachePolicy) else (self,)
        theirs = other.policies if isinstance(other, CompoundCachePolicy) else (other,)
        return CompoundCachePolicy(tuple(mine) + tuple(theirs))

    def __sub__(self, name: str) -> CachePolicy:
        raise TypeError(f"only INPUTS supports '- {name!r}' (excluding a parameter)")


class CompoundCachePolicy(CachePolicy):
    """Several policies whose keys are combined; ``None`` parts are ignored."""

    __slots__ = ("policies",)

    def __init__(self, policies: tuple[CachePolicy, ...]) -> None:
        self.policies = policies

    def _settings(self) -> tuple[Any, ...]:
        return self.policies

    def compute_key(self, task_ctx: TaskRunContext, inputs: Mapping[str, Any],
                    flow_parameters: Mapping[str, Any]) -> str | None:
        """Hash of all non-``None`` keys, or ``None`` when every part declines."""
        keys = [p.compute_key(task_ctx, inputs, flow_parameters) for p in self.policies]
        present = [k for k in keys if k is not None]
        if not present:
            return None
        return hashlib.sha256("|".join(present).encode()).hexdigest()

    def __sub__(self, name: str) -> CachePolicy:
        return CompoundCachePolicy(
            tuple(p - name if isinstance(p, Inputs) else p for p in self.policies)
        )


class Inputs(CachePolicy):
    """Key on the task's bound arguments (minus ``exclude``)."""

    __slots__ = ("exclude",)

    def __init__(self, exclude: frozenset[str] = frozenset()) -> None:
        self.exclude = exclude

    def _settings(self) -> tuple[Any, ...]:
        return (self.exclude,)

    def compute_key(self, task_ctx: TaskRunContext, inputs: Mapping[str, Any],
                    flow_parameters: Mapping[str, Any]) -> str | None:
        """Hash of the inputs."""
        return hash_inputs(inputs, self.exclude)

    def __sub__(self, name: str) -> CachePolicy:
        return Inputs(self.exclude | {name})


class TaskSource(CachePolicy):
    """Key on the task function's source code, so editing the task invalidates it."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: Mapping[str, Any],
                    flow_parameters: Mapping[str, Any]) -> str | None:
        """Hash of the source."""
        return hash_source(task_ctx.task.fn)


class FlowParameters(CachePolicy):
    """Key on the enclosing flow run's parameters."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: Mapping[str, Any],
                    flow_parameters: Mapping[str, Any]) -> str | None:
        """Hash of the flow parameters."""
        return hash_inputs(flow_parameters)


class RunId(CachePolicy):
    """Key on the flow run id: results are reused only within one run (and its retries)."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: Mapping[str, Any],
                    flow_parameters: Mapping[str, Any]) -> str | None:
        """The flow run id (task run id outside a flow)."""
        flow_ctx = task_ctx.flow_run_context
        return flow_ctx.flow_run.id if flow_ctx else task_ctx.task_run.id


class NoCache(CachePolicy):
    """Never cache."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: Mapping[str, Any],
                    flow_parameters: Mapping[str, Any]) -> str | None:
        """Always ``None``."""
        return None


class CacheKeyFnPolicy(CachePolicy):
    """Adapts a Prefect-style ``cache_key_fn(context, parameters)``."""

    __slots__ = ("cache_key_fn",)

    def __init__(self, cache_key_fn: Any) -> None:
        self.cache_key_fn = cache_key_fn

    def _settings(self) -> tuple[Any, ...]:
        return (self.cache_key_fn,)

    def compute_key(self, task_ctx: TaskRunContext, inputs: Mapping[str, Any],
                    flow_parameters: Mapping[str, Any]) -> str | None:
        """Whatever the function returns (``None`` disables caching for this run)."""
        key = self.cache_key_fn(task_ctx, dict(inputs))
        return None if key is None else str(key)


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
]
