"""What ``flow.deploy()``, ``headwater deploy`` and ``flow.serve()`` make of Prefect's
deployment arguments: the Flow, Deployment and Schedule manifests, and the schedules.

Prefect's ``deploy``/``serve`` take ``cron=``, ``interval=``, ``rrule=``, ``schedule=``
and ``schedules=[Cron(...), ...]``; :func:`collect_schedules` turns any mix of them into
:class:`~headwater.schedules.Schedule` objects and :func:`schedule_spec` into the fields
of a Headwater ``Schedule`` (``headwater.dev/v1alpha1``). ``serve()`` builds its fire
times from exactly that spec, with the operator's own parser
(:func:`headwater.scheduling.expression_from_spec`), so what it fires on a laptop is what
the Schedule fires in a cluster.

What it must respect: pure (no I/O, no clock, no YAML, no Kubernetes client: the SDK never
imports the operator), and every manifest is in wire form (camelCase) and strict enough
that the API server's schema accepts it; the ``headwater deploy`` command validates each
against the operator's API models before writing or applying it. Prefect arguments with
no Headwater meaning (``work_pool_name``, ``build``, ``push``...) are reported by
:func:`ignored_arguments` so the caller can warn, never silently dropped.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headwater.contract import API_VERSION
from headwater.schedules import Cron, Interval, RRule, Schedule

if TYPE_CHECKING:
    from headwater.flows import Flow

__all__ = [
    "DeployRequest",
    "collect_schedules",
    "flow_entrypoint",
    "ignored_arguments",
    "interval_text",
    "kubernetes_name",
    "schedule_spec",
]

MAX_NAME_LENGTH = 63
SCHEDULE_NAME_MAX_LENGTH = 52
"""As the Schedule CRD: run names are ``<schedule>-<10-digit tick>`` (≤ 63)."""
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

IGNORED_DEPLOY_ARGUMENTS = {
    "work_pool_name": "runs are pods the operator creates; there is no work pool",
    "work_queue_name": "there are no work queues",
    "build": "Headwater builds no image; build and push it yourself (docker build/push)",
    "push": "Headwater pushes no image",
    "job_variables": "set pod settings in the Deployment's spec.runTemplate instead",
    "triggers": "event triggers are not supported",
    "enforce_parameter_schema": "the Flow's parametersSchema is always enforced",
    "entrypoint_type": "the entrypoint is the flow file's path (or the module given)",
    "print_next_steps": "the command prints what it wrote or applied",
    "ignore_warnings": "warnings are printed, never fatal",
    "version_type": "a Deployment's version is its metadata.generation",
    "global_limit": "use concurrency_limit (the Deployment's spec.concurrency.limit)",
    "webserver": "serve() has no web server; use `headwater ui` with a cluster",
    "pause_on_shutdown": "serve() keeps no schedule after it stops",
    "print_starting_message": "serve() always says what it serves",
}
"""Prefect's deploy/serve arguments that mean nothing here, and why (for the warning)."""


HARMLESS_VALUES = {"build": False, "push": False, "enforce_parameter_schema": True,
                   "pause_on_shutdown": False, "webserver": False}
"""Values of ignored arguments that ask for what Headwater does anyway: no warning."""


def ignored_arguments(options: Mapping[str, Any]) -> list[str]:
    """A warning line for each Prefect-only argument given (``None`` means not given)."""
    warnings = []
    for name, value in options.items():
        if name not in IGNORED_DEPLOY_ARGUMENTS:
            raise TypeError(f"unexpected keyword argument {name!r}")
        if value is None or (name in HARMLESS_VALUES and value == HARMLESS_VALUES[name]):
            continue
        warnings.append(f"{name}={value!r} is ignored: {IGNORED_DEPLOY_ARGUMENTS[name]}")
    return warnings


def kubernetes_name(text: str, what: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """``text`` as a Kubernetes object name (RFC 1123 label): lower case, ``-`` for
    anything else. Raises ``ValueError`` naming ``what`` when nothing usable is left."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.strip().lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:max_length].rstrip("-")
    if not _NAME_RE.match(name):
        raise ValueError(f"{what} {text!r} has no letters or digits to make a Kubernetes "
                         "name of; pass a name such as 'nightly-etl'")
    return name


# --- schedules -----------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | int | float | timedelta):
        return [value]
    return list(value)


def collect_schedules(
    *,
    interval: Any = None,
    cron: Any = None,
    rrule: Any = None,
    schedule: Schedule | None = None,
    schedules: Iterable[Schedule] | None = None,
    timezone: str | None = None,
) -> list[Schedule]:
    """Every schedule Prefect's ``cron=``/``interval=``/``rrule=`` (each one value or a
    list), ``schedule=`` and ``schedules=`` describe, in that order."""
    found: list[Schedule] = [Interval(value, timezone=timezone) for value in _as_list(interval)]
    found += [Cron(value, timezone=timezone) for value in _as_list(cron)]
    found += [RRule(value, timezone=timezone) for value in _as_list(rrule)]
    if schedule is not None:
        found.append(schedule)
    for item in schedules or ():
        if not isinstance(item, Schedule):
            raise TypeError(f"schedules= takes Cron(...), Interval(...) or RRule(...) "
                            f"objects from headwater.schedules, got {item!r}")
        found.append(item)
    return found


def interval_text(step: timedelta) -> str:
    """A timedelta as a Schedule's ``interval`` (``1d2h3m4s`` units, whole seconds)."""
    if step % timedelta(seconds=1):
        raise ValueError(f"interval {step} is not a whole number of seconds; a Headwater "
                         "Schedule's interval counts whole seconds")
    seconds = int(step.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _rfc3339(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError(f"anchor_date {instant.isoformat()} has no UTC offset; pass an "
                         "aware datetime, e.g. datetime(2026, 1, 1, tzinfo=UTC)")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_spec(schedule: Schedule, deployment: str) -> dict[str, Any]:
    """The ``spec`` of the Headwater Schedule that fires as ``schedule`` does."""
    if not schedule.day_or:
        raise ValueError(f"cron {schedule.cron!r} with day_or=False (day-of-month AND "
                         "day-of-week) has no Headwater equivalent: Headwater's cron "
                         "matches either day field, as cron does; express it as an rrule "
                         "(e.g. 'FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13')")
    spec: dict[str, Any] = {"deploymentRef": {"name": deployment}}
    if schedule.cron is not None:
        spec["cron"] = " ".join(schedule.cron.split())
    elif schedule.rrule is not None:
        spec["rrule"] = schedule.rrule.strip()
    else:
        assert schedule.interval is not None
        spec["interval"] = interval_text(schedule.interval)
        if schedule.anchor_date is not None:
            spec["anchorTime"] = _rfc3339(schedule.anchor_date)
    spec["timezone"] = schedule.timezone or "UTC"
    if schedule.parameters:
        spec["parameters"] = dict(schedule.parameters)
    if not schedule.active:
        spec["suspend"] = True
    return spec


def schedule_names(deployment: str, schedules: Sequence[Schedule]) -> list[str]:
    """One Schedule name each: the Deployment's name alone, else ``<deployment>-<slug or
    1-based index>``, cut to the Schedule CRD's 52 characters."""
    if len(schedules) == 1 and not schedules[0].slug:
        return [kubernetes_name(deployment, "deployment name", SCHEDULE_NAME_MAX_LENGTH)]
    names = []
    for index, schedule in enumerate(schedules, start=1):
        suffix = kubernetes_name(schedule.slug, "schedule slug") if schedule.slug \
            else str(index)
        head = deployment[:SCHEDULE_NAME_MAX_LENGTH - len(suffix) - 1].rstrip("-")
        names.append(f"{head}-{suffix}")
    if len(set(names)) != len(names):
        raise ValueError(f"two schedules of deployment {deployment!r} share a slug; give "
                         "each a different slug=")
    return names


# --- the flow's entrypoint -----------------------------------------------------------


def flow_entrypoint(flow: Flow[..., Any], root: Path | None = None, *,
                    absolute: bool = False) -> str:
    """``path/to/file.py:attribute`` of ``flow``, the path relative to ``root`` (the
    working directory by default, which the image's working directory mirrors), or
    absolute (``serve()``, which runs on this machine).

    The attribute is the module-level name bound to ``flow``; a flow made inside a
    function has none and cannot be deployed or served from a file.
    """
    # The function's globals are its module's namespace, also for a file run as a script
    # (``__main__``) or through runpy, whose module is not kept in sys.modules.
    namespace = getattr(flow.fn, "__globals__", None)
    if namespace is None:
        module = sys.modules.get(getattr(flow.fn, "__module__", "") or "")
        namespace = vars(module) if module is not None else {}
    attribute = next((name for name, value in namespace.items() if value is flow), None)
    source = inspect.getsourcefile(flow.fn)
    if attribute is None or source is None:
        raise ValueError(f"flow {flow.name!r} is not bound to a module-level name of a "
                         "file; define it with @flow at the top level of a .py file")
    path = Path(source).resolve().as_posix() if absolute else relative_path(Path(source),
                                                                             root)
    return f"{path}:{attribute}"


def relative_path(path: Path, root: Path | None = None) -> str:
    """``path`` relative to ``root`` (default: the working directory), POSIX style."""
    base = (root or Path.cwd()).resolve()
    resolved = path.resolve()
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        raise ValueError(f"flow file {str(path)!r} is outside {str(base)!r}: run from the "
                         "directory the image copies into its working directory, or name "
                         "it (--entrypoint-root, entrypoint_root=), so the entrypoint is a "
                         "path inside the image") from None


# --- the manifests -------------------------------------------------------------------


def _whole_seconds(value: float | None) -> int:
    """A Flow's seconds fields are integers; a fraction rounds up (never shorter)."""
    return math.ceil(value) if value else 0


@dataclasses.dataclass(frozen=True)
class DeployRequest:
    """Everything ``headwater deploy`` and ``flow.deploy()`` turn into manifests."""

    flow: Flow[..., Any]
    entrypoint: str
    name: str
    image: str
    schedules: tuple[Schedule, ...] = ()
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: str | None = None
    tags: tuple[str, ...] = ()
    version: str | None = None
    paused: bool = False
    concurrency_limit: int | None = None
    namespace: str | None = None
    source: Mapping[str, Any] | None = None
    """The Flow's ``spec.source`` (``Flow.from_source``): the pod fetches the code."""

    def __post_init__(self) -> None:
        if not isinstance(self.image, str) or not self.image.strip():
            raise ValueError("image is required: the container image that holds the flow's "
                             "code and the Headwater SDK, e.g. image='ghcr.io/acme/etl:1.4'")
        if self.concurrency_limit is not None and (
                isinstance(self.concurrency_limit, bool) or
                not isinstance(self.concurrency_limit, int) or self.concurrency_limit < 1):
            raise ValueError(f"concurrency_limit must be a whole number ≥ 1, got "
                             f"{self.concurrency_limit!r}")
        if not isinstance(self.parameters, Mapping):
            raise ValueError("parameters must be a dict of flow parameter names to values")

    @property
    def flow_name(self) -> str:
        """The Flow object's name: the flow's name as a Kubernetes name."""
        return kubernetes_name(self.flow.name, "flow name")

    @property
    def deployment_name(self) -> str:
        """The Deployment object's name: ``name`` as a Kubernetes name."""
        return kubernetes_name(self.name, "deployment name")

    def _metadata(self, name: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name}
        if self.namespace:
            metadata["namespace"] = self.namespace
        return metadata

    def flow_manifest(self) -> dict[str, Any]:
        """The ``Flow``: image, entrypoint, parametersSchema from the signature, and the
        ``@flow`` options a Flow has (retries, delay, timeout, description, tags)."""
        flow = self.flow
        spec: dict[str, Any] = {"image": self.image.strip(), "entrypoint": self.entrypoint,
                                "parametersSchema": flow.parameters}
        if self.source:
            spec["source"] = dict(self.source)
        if flow.retries:
            spec["retries"] = flow.retries
        delay = _whole_seconds(flow.retry_delay_seconds)
        if delay:
            spec["retryDelaySeconds"] = delay
        timeout = _whole_seconds(flow.timeout_seconds)
        if timeout:
            spec["timeoutSeconds"] = timeout
        if flow.description:
            spec["description"] = flow.description
        if flow.tags:
            spec["tags"] = sorted(flow.tags)
        return {"apiVersion": API_VERSION, "kind": "Flow",
                "metadata": self._metadata(self.flow_name), "spec": spec}

    def deployment_manifest(self) -> dict[str, Any]:
        """The ``Deployment``: the Flow, default parameters, tags, paused, concurrency."""
        spec: dict[str, Any] = {"flowRef": {"name": self.flow_name}}
        if self.description:
            spec["description"] = self.description
        if self.tags:
            spec["tags"] = list(dict.fromkeys(self.tags))
        if self.parameters:
            spec["parameters"] = dict(self.parameters)
        if self.paused:
            spec["paused"] = True
        if self.concurrency_limit is not None:
            spec["concurrency"] = {"limit": self.concurrency_limit}
        metadata = self._metadata(self.deployment_name)
        if self.version:
            metadata["annotations"] = {"headwater.dev/version": str(self.version)}
        return {"apiVersion": API_VERSION, "kind": "Deployment", "metadata": metadata,
                "spec": spec}

    def schedule_manifests(self) -> list[dict[str, Any]]:
        """One ``Schedule`` per schedule, each referencing the Deployment."""
        names = schedule_names(self.deployment_name, self.schedules)
        return [{"apiVersion": API_VERSION, "kind": "Schedule",
                 "metadata": self._metadata(name),
                 "spec": schedule_spec(schedule, self.deployment_name)}
                for name, schedule in zip(names, self.schedules, strict=True)]

    def manifests(self) -> list[dict[str, Any]]:
        """Flow, Deployment, then the Schedules: the order they must be applied in."""
        return [self.flow_manifest(), self.deployment_manifest(),
                *self.schedule_manifests()]
