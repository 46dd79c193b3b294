"""Reading Headwater objects out of the UI's watch-backed stores, for the pages. Pure.

The stores (:class:`~headwater_operator.informer.Store`) hold raw objects shared by every
reader: nothing here changes one. Objects are parsed with the API models
(:func:`~headwater_operator.api.parse_resource`) where a page needs their meaning (a
Flow's schema, a Deployment's parameters), so the UI reads them exactly as the operator
and the CLI do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from headwater.contract import API_VERSION, LABEL_DEPLOYMENT, LABEL_SCHEDULE

from headwater_operator.api import Deployment, Flow, InvalidResourceError, parse_resource
from headwater_operator.informer import Store
from headwater_operator.labels import label_value

_Kind = TypeVar("_Kind", Deployment, Flow)


def listed(store: Store, namespace: str | None = None) -> list[dict[str, Any]]:
    """The store's objects (of ``namespace`` when given), by namespace then name."""
    items = [obj for (ns, _), obj in store.items() if namespace is None or ns == namespace]
    return sorted(items, key=lambda o: (_meta(o).get("namespace") or "",
                                        _meta(o).get("name") or ""))


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def parse_as(body: Mapping[str, Any], cls: type[_Kind]) -> tuple[_Kind | None, str | None]:
    """``body`` as ``cls``'s model, or (None, why) when it does not parse."""
    typed = {"apiVersion": API_VERSION, "kind": cls.KIND, **body}
    try:
        parsed = parse_resource(typed)
    except InvalidResourceError as exc:
        return None, str(exc)
    if not isinstance(parsed, cls):
        return None, f"{cls.KIND} expected, found {typed.get('kind')}"
    return parsed, None


def created(obj: Mapping[str, Any]) -> str:
    """``metadata.creationTimestamp`` (RFC 3339 sorts as text), ``""`` when unset."""
    return str(_meta(obj).get("creationTimestamp") or "")


def runs_of_deployment(flowruns: Store, namespace: str, name: str,
                       limit: int | None = None) -> list[dict[str, Any]]:
    """The Deployment's FlowRuns, newest first (by label, as ``get runs`` selects)."""
    value = label_value(name)
    runs = [obj for (ns, _), obj in flowruns.items() if ns == namespace
            and (_meta(obj).get("labels") or {}).get(LABEL_DEPLOYMENT) == value
            and ((obj.get("spec") or {}).get("deploymentRef") or {}).get("name") == name]
    runs.sort(key=lambda o: (created(o), _meta(o).get("name") or ""), reverse=True)
    return runs[:limit] if limit is not None else runs


def runs_of_schedule(flowruns: Store, namespace: str, name: str,
                     limit: int | None = None) -> list[dict[str, Any]]:
    """The Schedule's FlowRuns (scheduled and backfilled), newest first, by label."""
    value = label_value(name)
    runs = [obj for (ns, _), obj in flowruns.items() if ns == namespace
            and (_meta(obj).get("labels") or {}).get(LABEL_SCHEDULE) == value]
    runs.sort(key=lambda o: (created(o), _meta(o).get("name") or ""), reverse=True)
    return runs[:limit] if limit is not None else runs


def schedules_of_deployment(schedules: Store, namespace: str,
                            name: str) -> list[dict[str, Any]]:
    """The Schedules whose ``spec.deploymentRef`` is this Deployment, by name."""
    return [obj for obj in listed(schedules, namespace)
            if ((obj.get("spec") or {}).get("deploymentRef") or {}).get("name") == name]


def condition(obj: Mapping[str, Any], kind: str = "Ready") -> Mapping[str, Any] | None:
    """The object's condition of type ``kind``, if it has one."""
    for entry in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(entry, Mapping) and entry.get("type") == kind:
            return entry
    return None


def conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The object's ``status.conditions`` (malformed entries left out)."""
    return [c for c in (obj.get("status") or {}).get("conditions") or ()
            if isinstance(c, Mapping)]


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 text as an aware datetime, None when absent or not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def namespaces(*groups: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct namespaces of the objects, sorted."""
    return sorted({str(_meta(o).get("namespace") or "") for group in groups for o in group})


class _Missing:
    """What a template reads for a field an object does not have: empty and falsy.

    The templates' environment is strict (an unknown name is an error, so typos fail
    tests), but Kubernetes objects omit unset fields; :func:`view` makes those read as
    this, which prints as nothing and has no further fields either.
    """

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return ""

    def __html__(self) -> str:
        return ""

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __getattr__(self, name: str) -> _Missing:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        """Like ``dict.get``: always ``default``."""
        return default


MISSING = _Missing()


class View(dict[str, Any]):
    """A JSON object for a template: ``obj.field`` is the field, or empty when unset."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return view(self[name]) if name in self else MISSING

    def __getitem__(self, key: str) -> Any:
        return view(super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        return view(super().get(key, default))


def view(value: Any) -> Any:
    """``value`` with its JSON objects as :class:`View` (lists followed), else as is."""
    if isinstance(value, View):
        return value
    if isinstance(value, Mapping):
        return View(value)
    if isinstance(value, list):
        return [view(item) for item in value]
    return value


def views(**context: Any) -> dict[str, Any]:
    """A template context with every JSON object in it as a :class:`View`."""
    return {key: view(value) for key, value in context.items()}
