"""The emulated API server's object store: the API server's semantics of each write.

Everything here is synchronous and free of I/O, so each operation is atomic on the event
loop that owns the store (no locks needed) and can be unit-tested without HTTP. The HTTP
layer (``emulator.py``) only translates requests into these calls.

What it implements, as the real API server does:

* ``metadata.resourceVersion`` from one cluster-wide monotonic counter, bumped on every
  write; ``uid``; ``creationTimestamp``; ``generateName``; ``generation`` that starts at 1
  and is bumped only when something outside ``metadata`` and ``status`` changes.
* ``409 AlreadyExists`` on creating an existing name, ``404 NotFound``, ``409 Conflict``
  when a write carries a stale ``metadata.resourceVersion``, ``422`` when a JSON patch
  fails (including its ``test`` operations), ``400`` on a namespace mismatch.
* Structural-schema pruning of custom resources (see :mod:`.apiextensions.pruning`).
* The ``status`` subresource: writes to ``…/status`` change only ``status``; writes to the
  main resource of a kind with that subresource keep the stored ``status``; ``status`` is
  dropped on create (pods start ``Pending``, namespaces ``Active``).
* Finalizers: deleting an object with finalizers only sets ``deletionTimestamp``;
  removing its last finalizer deletes it.
* Garbage collection by owner references (the kube-controller-manager's job): when an
  owner disappears, dependents with no remaining owner are deleted too (background
  cascade; ``Orphan`` keeps them; ``Foreground`` marks the owner with the
  ``foregroundDeletion`` finalizer and removes it once its dependents are gone).
* Watch history: every change is an ADDED/MODIFIED/DELETED event with its
  resourceVersion, kept in a bounded history so a watch can resume from a
  resourceVersion; older than the history answers ``410 Gone``, as after compaction.

* Each kind's strategy (:mod:`.strategies`): defaulting, decoding errors, unknown fields
  under ``fieldValidation``, validation worded as the API server words it, dry runs, and
  ``AllowUnconditionalUpdate`` (a PUT without a resourceVersion).
* Strategic merge patches of built-in kinds, by the pinned OpenAPI's merge keys.
* The ``NamespaceLifecycle`` admission plugin: no object is created in a namespace that
  does not exist (404) or is being deleted (403).

Simplifications (documented so nobody relies on them): a paged list (``limit``/
``continue``) reports the first page's resourceVersion on every page, but later pages
show the objects' current state, not a snapshot at that version; pods are deleted at
once (no kubelet confirms a graceful termination); a namespace's deletion does not delete
its contents.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime
import functools
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import jsonpatch
import jsonpointer
from headwater_operator import selectors, strategicmerge

from headwater_dev.apierrors import ApiError
from headwater_dev.fielderrors import GoText, invalid_error, raise_if_invalid
from headwater_dev.fielderrors import invalid as fe_invalid
from headwater_dev.fielderrors import not_supported as fe_not_supported
from headwater_dev.fielderrors import required as fe_required
from headwater_dev.jsoncopy import deep_copy
from headwater_dev.resources import BUILTIN_RESOURCES, ResourceSpec
from headwater_dev.strategies import Strategy, Subresource, WriteOptions
from headwater_dev.strategies import strategy_for as builtin_strategy_for

JsonObject = dict[str, Any]
ObjectKey = tuple[tuple[str, str, str], str | None, str]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
PatchType = Literal["merge", "json", "strategic"]
PropagationPolicy = Literal["Background", "Foreground", "Orphan"]

FOREGROUND_FINALIZER = "foregroundDeletion"
HISTORY_LIMIT = 10_000
"""Watch events kept per resource kind before older resourceVersions answer 410 Gone."""
MAX_NAME_LENGTH = 63
NAME_SUFFIX_LENGTH = 5
NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The API server's alphabet for ``generateName`` suffixes (no vowels, no look-alikes)."""
GENERATE_NAME_ATTEMPTS = 8
"""Draws before a ``generateName`` create gives up with 409, as the API server does."""


def random_name_suffix() -> str:
    """Five random characters, as the API server appends to ``metadata.generateName``."""
    return "".join(secrets.choice(NAME_SUFFIX_ALPHABET) for _ in range(NAME_SUFFIX_LENGTH))


_SYSTEM_METADATA = (
    "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "generation", "name", "namespace",
)


@dataclass(frozen=True)
class WatchEvent:
    """One change, as delivered on a watch stream (``object`` must not be mutated)."""

    type: EventType
    object: JsonObject
    resource_version: int
    previous: JsonObject | None = None
    """The object before a MODIFIED change: lets a filtered watch see objects leave it."""
    _lines: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    def line(self, event_type: str) -> bytes:
        """This change as a line of a watch stream, of type ``event_type`` (a filtered
        watch may see a MODIFIED as ADDED or DELETED): serialized once for all watches."""
        line = self._lines.get(event_type)
        if line is None:
            line = self._lines[event_type] = json.dumps(
                {"type": event_type, "object": self.object}).encode() + b"\n"
        return line


@dataclass(frozen=True)
class DeleteOptions:
    """The parts of ``v1 DeleteOptions`` the emulator honours."""

    propagation_policy: PropagationPolicy = "Background"
    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    dry_run: bool = False
    """``dryRun=All``: answer as if deleted, change nothing."""


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """Run a store method under the store's lock (see ``ObjectStore``)."""
    @functools.wraps(method)
    def wrapper(self: ObjectStore, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return cast(F, wrapper)


def utc_now() -> datetime.datetime:
    """The default clock of the store."""
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 with second precision and a ``Z``, as Kubernetes writes timestamps."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch (``null`` deletes a key); returns a new value.

    Neither argument is changed: both are copied once, and the copies are merged.
    """
    if not isinstance(patch, Mapping):
        return deep_copy(patch)
    result: JsonObject = deep_copy(dict(target)) if isinstance(target, Mapping) else {}
    _merge_into(result, deep_copy(dict(patch)))
    return result


def _merge_into(result: JsonObject, patch: Mapping[str, Any]) -> None:
    """RFC 7386 ``MergePatch`` of ``patch`` into ``result``, in place (both are copies the
    caller owns, so their values are moved, not copied again)."""
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            current = result.get(key)
            merged: JsonObject = dict(current) if isinstance(current, Mapping) else {}
            _merge_into(merged, value)
            result[key] = merged
        else:
            result[key] = value


def apply_patch(obj: JsonObject, patch_type: PatchType, patch: Any,
                kind_key: tuple[str, str, str] = ("", "", "")) -> JsonObject:
    """Apply a patch of the given type to a copy of ``obj``; 422 if it does not apply.

    A strategic merge patch merges lists by the patch merge keys of the built-in kind
    ``kind_key`` (:mod:`headwater_operator.strategicmerge`, from the pinned OpenAPI);
    its errors keep the API server's codes (``interpretStrategicMergePatchError``).
    """
    if patch_type == "strategic":
        try:
            return strategicmerge.apply_strategic_merge_patch(kind_key, obj, patch)
        except strategicmerge.StrategicMergeError as exc:
            reason = {400: "BadRequest", 422: "Invalid"}.get(exc.code, "InternalError")
            raise ApiError(exc.code, reason, exc.message) from exc
    if patch_type == "json":
        if not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "a JSON patch body must be a list of operations")
        try:
            result: JsonObject = jsonpatch.apply_patch(obj, patch, in_place=False)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise ApiError(422, "Invalid",
                           f"the JSON patch 'test' operation failed: {exc}") from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise ApiError(422, "Invalid", f"the JSON patch does not apply: {exc}") from exc
        return result
    if not isinstance(patch, Mapping):
        raise ApiError(400, "BadRequest", "a merge patch body must be a JSON object")
    merged: JsonObject = merge_patch(obj, patch)
    return merged


def _generation_relevant(obj: Mapping[str, Any]) -> JsonObject:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def default_strategy_for(spec: ResourceSpec) -> Strategy:
    """A kind served from a CRD schema gets the custom resource strategy; a built-in kind
    its own (:func:`.strategies.strategy_for`)."""
    if spec.schema is not None:
        from headwater_dev.apiextensions.strategy import CustomResourceStrategy

        return CustomResourceStrategy(spec)
    return builtin_strategy_for(spec)


class ObjectStore:
    """All objects of the emulated cluster, their watch history and their subscribers.

    Writes happen on the emulator's event loop (subscribers are called there). Reads may
    also come from other threads (tests polling a background emulator), so every public
    method holds a re-entrant lock: reads never see a half-applied write.

    A stored object is never changed in place: each write stores a new object, prepared
    from copies, and the old one lives on unchanged (as ``WatchEvent.previous``, in the
    watch history). So a watch event carries the stored object itself, and a caller that
    only reads an answer (``copy_answer=False``) gets it without a copy; every other
    caller gets a copy, and must never be handed a stored object it could change.
    """

    def __init__(
        self,
        resources: list[ResourceSpec],
        *,
        clock: Callable[[], datetime.datetime] = utc_now,
        history_limit: int = HISTORY_LIMIT,
        name_suffix: Callable[[], str] = random_name_suffix,
        strategy_for: Callable[[ResourceSpec], Strategy] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._resources: dict[tuple[str, str, str], ResourceSpec] = {}
        self._strategies: dict[tuple[str, str, str], Strategy] = {}
        self._strategy_for = strategy_for or default_strategy_for
        self._name_suffix = name_suffix
        self._clock = clock
        self._history_limit = history_limit
        self._objects: dict[ObjectKey, JsonObject] = {}
        self._history: dict[tuple[str, str, str], deque[WatchEvent]] = {}
        self._compacted: dict[tuple[str, str, str], int] = {}
        self._subscribers: dict[tuple[str, str, str], list[Callable[[WatchEvent], None]]] = {}
        self._uids: dict[str, ObjectKey] = {}
        self._owned: dict[str, dict[ObjectKey, None]] = {}
        """Owner uid → the objects whose ``ownerReferences`` name it, in the order they
        were stored: the garbage collector's graph (kube-controller-manager's keeps one
        too, ``pkg/controller/garbagecollector/graph.go`` ``node.dependents``), so a
        delete finds its dependents without scanning every object."""
        self._resource_version = 0
        for spec in resources:
            self.add_resource(spec)

    # --- resources ---------------------------------------------------------------------
    @property
    def resources(self) -> list[ResourceSpec]:
        """Every served resource kind."""
        return list(self._resources.values())

    @_locked
    def add_resource(self, spec: ResourceSpec, strategy: Strategy | None = None) -> None:
        """Serve one more kind (or serve it anew, e.g. a CRD's changed schema).

        ``strategy`` is what writes of the kind go through; by default the store's
        ``strategy_for(spec)``.
        """
        self._resources[spec.key] = spec
        self._strategies[spec.key] = strategy or self._strategy_for(spec)

    @_locked
    def remove_resource(self, key: tuple[str, str, str]) -> None:
        """Stop serving a kind (its CRD is gone); its objects must be deleted first."""
        self._resources.pop(key, None)
        self._strategies.pop(key, None)

    def strategy(self, spec: ResourceSpec) -> Strategy:
        """The strategy writes of ``spec``'s kind go through."""
        return self._strategies.get(spec.key) or self._strategy_for(spec)

    def resource(self, group: str, version: str, plural: str) -> ResourceSpec:
        """The served kind, or 404 naming it."""
        spec = self._resources.get((group, version, plural))
        if spec is None:
            gv = f"{group}/{version}" if group else version
            raise ApiError(404, "NotFound", f"the server could not find the requested resource "
                                            f"{plural!r} in {gv!r}")
        return spec

    def now(self) -> datetime.datetime:
        """The cluster's clock (what ``creationTimestamp`` is stamped with)."""
        return self._clock()

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out (the cluster's 'now')."""
        return self._resource_version

    # --- reads -------------------------------------------------------------------------
    @_locked
    def get(self, spec: ResourceSpec, namespace: str | None, name: str) -> JsonObject:
        """A copy of one object, or 404 naming it."""
        return deep_copy(self._stored(spec, namespace, name))

    @_locked
    def list_objects(
        self,
        spec: ResourceSpec,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | str | None = None,
        continue_token: str | None = None,
    ) -> tuple[list[JsonObject], int, str | None]:
        """Copies of matching objects (all namespaces when ``namespace`` is None).

        Sorted by (namespace, name). Returns ``(items, resourceVersion, continue)``:
        ``limit`` (a positive integer, or its query string; None for no limit) caps the
        items and ``continue`` is a token for the next page, None on the last (always
        None without a limit). ``continue_token`` (from an earlier page) resumes
        after the last object that page returned and reports that page's resourceVersion
        (objects show their current state: see the module's simplifications). 400
        BadRequest for a ``limit`` or ``continue`` that does not parse; 410 Expired for a
        token whose resourceVersion the kind's history no longer has (as after compaction).
        """
        page_size: int | None = None
        if limit is not None:
            try:
                page_size = int(limit)
            except ValueError:
                page_size = 0
            if page_size < 1:
                raise ApiError(400, "BadRequest",
                               f"invalid limit parameter {limit!r}: must be a positive integer")
        rv, after = self._resource_version, None
        if continue_token:
            try:
                data = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                rv, after = data["rv"], (data["ns"], data["name"])
                if not (isinstance(rv, int) and 0 <= rv <= self._resource_version
                        and all(isinstance(part, str) for part in after)):
                    raise ValueError("not a token of this server")
            except (binascii.Error, ValueError, TypeError, KeyError) as exc:
                raise ApiError(400, "BadRequest",
                               f"invalid continue parameter: {exc}") from exc
            self._check_history(spec, rv, "the continue token's resource version",
                                "list again from the start")
        matcher = self.matcher(label_selector, field_selector)

        def sort_key(o: JsonObject) -> tuple[str, str]:
            return o["metadata"].get("namespace") or "", o["metadata"]["name"]

        found = sorted((obj for obj in self._iter(spec, namespace) if matcher(obj)),
                       key=sort_key)
        if after is not None:
            found = found[bisect.bisect_right(found, after, key=sort_key):]
        more = page_size is not None and len(found) > page_size
        if page_size is not None:
            found = found[:page_size]
        items = [deep_copy(obj) for obj in found]
        token = None
        if more:
            namespace_of_last, name_of_last = sort_key(found[-1])
            token = base64.urlsafe_b64encode(json.dumps(
                {"rv": rv, "ns": namespace_of_last, "name": name_of_last}).encode()).decode()
        return items, rv, token

    def matcher(
        self, label_selector: str | None, field_selector: str | None
    ) -> Callable[[Mapping[str, Any]], bool]:
        """A predicate for the selectors (400 BadRequest if they do not parse)."""
        try:
            labels = selectors.parse_label_selector(label_selector)
            fields = selectors.parse_field_selector(field_selector)
        except selectors.SelectorError as exc:
            raise ApiError(400, "BadRequest", f"invalid selector: {exc}") from exc

        def matches(obj: Mapping[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            return selectors.labels_match(labels, meta.get("labels")) and selectors.fields_match(
                fields, obj
            )

        return matches

    @_locked
    def events_since(self, spec: ResourceSpec, resource_version: int) -> list[WatchEvent]:
        """Events after ``resource_version``; 410 Gone if the history no longer has them."""
        self._check_history(spec, resource_version, "too old resource version")
        history = self._history.get(spec.key, ())
        return [event for event in history if event.resource_version > resource_version]

    def _check_history(self, spec: ResourceSpec, resource_version: int, what: str,
                       fix: str = "") -> None:
        """410 Expired when the kind's history no longer reaches ``resource_version``."""
        compacted = self._compacted.get(spec.key, 0)
        if resource_version < compacted:
            raise ApiError(410, "Expired", f"{what}: {resource_version} ({compacted})"
                                           + (f"; {fix}" if fix else ""))

    @_locked
    def subscribe(self, spec: ResourceSpec, callback: Callable[[WatchEvent], None]) -> None:
        """Call ``callback`` with every future event of the kind."""
        self._subscribers.setdefault(spec.key, []).append(callback)

    @_locked
    def unsubscribe(self, spec: ResourceSpec, callback: Callable[[WatchEvent], None]) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""
        callbacks = self._subscribers.get(spec.key, [])
        if callback in callbacks:
            callbacks.remove(callback)

    def iter_objects(self) -> Iterator[tuple[ResourceSpec, JsonObject]]:
        """Every stored object with its kind (live references: read only)."""
        with self._lock:
            snapshot = [(self._resources[key], obj) for (key, _, _), obj in self._objects.items()]
        return iter(snapshot)

    # --- writes ------------------------------------------------------------------------
    @_locked
    def create(self, spec: ResourceSpec, namespace: str | None, body: Any,
               options: WriteOptions | None = None, *, copy_answer: bool = True
               ) -> JsonObject:
        """Store a new object; 409 AlreadyExists if the name is taken, 422 if invalid.

        The kind's strategy prepares and validates it first; with ``options.dry_run``
        nothing is stored and the object is returned as it would have been.
        ``copy_answer=False`` returns the stored object itself, for a caller that only
        reads it (the HTTP layer, which serializes it at once): see the class docstring.
        """
        options = options or WriteOptions()
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", f"the body of a {spec.kind} must be a JSON object")
        obj: JsonObject = deep_copy(dict(body))
        meta = obj.setdefault("metadata", {})
        namespace = self._check_namespace(spec, namespace, meta)
        self._check_namespace_lifecycle(spec, namespace, str(meta.get("name") or ""))
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "Invalid", f"{spec.kind}: metadata.name or "
                                               "metadata.generateName is required")
            meta["name"] = self._generate_name(spec, namespace, str(meta["generateName"]))
        name = meta["name"]
        if (spec.key, namespace, name) in self._objects:
            raise ApiError(409, "AlreadyExists", f'{spec.plural} "{name}" already exists',
                           {"name": name, "kind": spec.plural})
        obj["apiVersion"] = spec.api_version
        obj["kind"] = spec.kind
        if namespace is not None:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = format_time(self._clock())
        meta["generation"] = 1
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            meta.pop(transient, None)
        strategy = self.strategy(spec)
        obj = strategy.prepare_create(obj, options)
        raise_if_invalid(spec.kind, spec.group, name, strategy.validate_create(obj))
        if options.dry_run:
            return obj
        self._store(spec, obj, "ADDED", previous=None)
        return deep_copy(obj) if copy_answer else obj

    def _generate_name(self, spec: ResourceSpec, namespace: str | None, prefix: str) -> str:
        """``generateName`` plus a random suffix, drawn again while the name is taken.

        As the API server since Kubernetes 1.32 (``RetryGenerateName``): up to
        :data:`GENERATE_NAME_ATTEMPTS` draws, then 409 AlreadyExists. Without the retry a
        long test session (thousands of generated Event names) hit the odd collision.
        """
        base = prefix[:MAX_NAME_LENGTH - NAME_SUFFIX_LENGTH]
        for _ in range(GENERATE_NAME_ATTEMPTS):
            name = base + self._name_suffix()
            if (spec.key, namespace, name) not in self._objects:
                return name
        raise ApiError(409, "AlreadyExists",
                       f'{spec.plural} "{name}" already exists: {GENERATE_NAME_ATTEMPTS} '
                       f'names generated from "{prefix}" were all taken; retry the create',
                       {"name": name, "kind": spec.plural})

    @_locked
    def replace(
        self, spec: ResourceSpec, namespace: str | None, name: str, body: Any,
        *, subresource: str | None = None, options: WriteOptions | None = None,
        copy_answer: bool = True,
    ) -> JsonObject:
        """PUT: replace the object (or only its status); 409 on a stale resourceVersion.

        ``copy_answer``: as for :meth:`create`."""
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", f"the body of a {spec.kind} must be a JSON object")
        current = self._stored(spec, namespace, name)
        self._check_precondition(spec, current, body)
        new = deep_copy(dict(body))
        if not (new.get("metadata") or {}).get("resourceVersion"):
            self._unconditional_update(spec, current, new)
        return self._update(spec, current, new, subresource, options or WriteOptions(),
                            copy_answer=copy_answer)

    def _unconditional_update(self, spec: ResourceSpec, current: JsonObject,
                              new: JsonObject) -> None:
        """A PUT without ``metadata.resourceVersion``: the stored one is used where the kind
        allows it, else 422 (``registry/generic/registry/store.go`` ``Update``: the error
        names the resource, not the kind, and shows Go's ``%#v`` of ``uint64(0)``)."""
        name = current["metadata"]["name"]
        if not self.strategy(spec).allow_unconditional_update:
            raise invalid_error(spec.plural, spec.group, name, [fe_invalid(
                "metadata.resourceVersion", GoText("0x0"), "must be specified for an update")])
        new.setdefault("metadata", {})["resourceVersion"] = current["metadata"][
            "resourceVersion"]

    @_locked
    def patch(
        self, spec: ResourceSpec, namespace: str | None, name: str, patch_type: PatchType,
        patch: Any, *, subresource: str | None = None, options: WriteOptions | None = None,
        copy_answer: bool = True,
    ) -> JsonObject:
        """PATCH: apply a merge/JSON patch to the object (or only its status).

        ``copy_answer``: as for :meth:`create`."""
        current = self._stored(spec, namespace, name)
        if isinstance(patch, Mapping):
            self._check_precondition(spec, current, patch)
        patched = apply_patch(current, patch_type, patch, spec.key)
        if patch_type == "json":
            # A JSON patch may 'test' or set resourceVersion itself; treat a changed one
            # like a stale body, as the API server compares it with the stored version.
            self._check_precondition(spec, current, patched)
        return self._update(spec, current, patched, subresource, options or WriteOptions(),
                            copy_answer=copy_answer)

    @_locked
    def delete(
        self, spec: ResourceSpec, namespace: str | None, name: str,
        options: DeleteOptions | None = None,
    ) -> JsonObject:
        """DELETE: remove the object, or mark it while finalizers remain."""
        options = options or DeleteOptions()
        current = self._stored(spec, namespace, name)
        meta = current["metadata"]
        if options.precondition_uid and options.precondition_uid != meta["uid"]:
            raise _precondition_conflict(spec, namespace, name, (
                f"Precondition failed: UID in precondition: {options.precondition_uid}, "
                f"UID in object meta: {meta['uid']}"))
        rv = options.precondition_resource_version
        if rv and rv != meta["resourceVersion"]:
            raise _precondition_conflict(spec, namespace, name, (
                f"Precondition failed: ResourceVersion in precondition: {rv}, "
                f"ResourceVersion in object meta: {meta['resourceVersion']}"))
        prepared = self.strategy(spec).prepare_delete(current, self._clock())
        if options.dry_run:
            return self._deleted_view(prepared, options)
        if prepared != current:
            self._store(spec, prepared, "MODIFIED", previous=current)
            current = self._objects[(spec.key, meta.get("namespace"), meta["name"])]
            meta = current["metadata"]
        if options.propagation_policy == "Orphan":
            self._orphan_dependents(meta["uid"])
        elif options.propagation_policy == "Foreground" and self._dependents(meta["uid"]):
            return self._delete_in_foreground(spec, current, options)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return deep_copy(current)
            updated = deep_copy(current)
            updated["metadata"]["deletionTimestamp"] = format_time(self._clock())
            updated["metadata"]["deletionGracePeriodSeconds"] = options.grace_period_seconds or 0
            self._store(spec, updated, "MODIFIED", previous=current)
            return deep_copy(updated)
        return self._remove(spec, current)

    def _deleted_view(self, obj: JsonObject, options: DeleteOptions) -> JsonObject:
        """What a dry-run delete answers: the object as the delete would leave it."""
        view = deep_copy(obj)
        if view["metadata"].get("finalizers") or options.propagation_policy == "Foreground":
            view["metadata"].setdefault("deletionTimestamp", format_time(self._clock()))
            view["metadata"].setdefault("deletionGracePeriodSeconds",
                                        options.grace_period_seconds or 0)
        return view

    @_locked
    def bind_pod(self, spec: ResourceSpec, namespace: str | None, name: str,
                 binding: Any) -> JsonObject:
        """POST ``pods/<name>/binding``: the scheduler assigns a pod to a node.

        As ``pkg/registry/core/pod/storage`` ``BindingREST.Create``: the Binding's name
        must be the pod's, its target a Node (``ValidatePodBinding``); a pod already on a
        node or being deleted is a 409 Conflict on ``pods/binding``. The pod gets
        ``spec.nodeName``, the Binding's annotations and ``PodScheduled=True``; the answer
        is a ``Success`` Status (``spec.nodeName`` cannot be changed by an update).
        """
        if not isinstance(binding, Mapping):
            raise ApiError(400, "BadRequest", "the body of a Binding must be a JSON object")
        meta = binding.get("metadata") or {}
        if meta.get("name") != name:
            raise ApiError(400, "BadRequest", "name in URL does not match name in Binding object")
        target = binding.get("target") or {}
        errors = []
        if target.get("kind") and target.get("kind") != "Node":
            errors.append(fe_not_supported("target.kind", target["kind"], ["Node", "<empty>"]))
        if not target.get("name"):
            errors.append(fe_required("target.name"))
        raise_if_invalid("Binding", "", name, errors)
        current = self._stored(spec, namespace, name)
        pod_name = current["metadata"]["name"]
        problem = None
        if current["metadata"].get("deletionTimestamp"):
            problem = f"pod {pod_name} is being deleted, cannot be assigned to a host"
        elif (current.get("spec") or {}).get("nodeName"):
            problem = (f"pod {pod_name} is already assigned to node "
                       f'"{current["spec"]["nodeName"]}"')
        if problem:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on pods/binding '
                                            f'"{name}": {problem}',
                           {"name": name, "kind": "pods/binding"})
        bound = deep_copy(current)
        bound["spec"]["nodeName"] = target["name"]
        if meta.get("annotations"):
            bound["metadata"]["annotations"] = {**(bound["metadata"].get("annotations") or {}),
                                                **meta["annotations"]}
        status = bound.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        status["conditions"] = [*conditions, {"type": "PodScheduled", "status": "True",
                                              "lastProbeTime": None,
                                              "lastTransitionTime": format_time(self._clock())}]
        self._store(spec, bound, "MODIFIED", previous=current)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}

    @_locked
    def mark_deleting(
        self, spec: ResourceSpec, namespace: str | None, name: str,
        *, grace_period_seconds: int = 30,
    ) -> JsonObject:
        """Set ``deletionTimestamp`` without deleting, as for a graceful pod termination.

        Clients cannot do this over the API; the kubelet stand-ins use it to emulate a
        pod whose node was lost (the node controller deletes it, the kubelet never confirms).
        """
        current = self._stored(spec, namespace, name)
        updated = deep_copy(current)
        updated["metadata"]["deletionTimestamp"] = format_time(self._clock())
        updated["metadata"]["deletionGracePeriodSeconds"] = grace_period_seconds
        self._store(spec, updated, "MODIFIED", previous=current)
        return deep_copy(updated)

    # --- internals ---------------------------------------------------------------------
    def _iter(self, spec: ResourceSpec, namespace: str | None) -> Iterator[JsonObject]:
        for (key, ns, _), obj in self._objects.items():
            if key == spec.key and (namespace is None or ns == namespace):
                yield obj

    def _stored(self, spec: ResourceSpec, namespace: str | None, name: str) -> JsonObject:
        obj = self._objects.get((spec.key, namespace if spec.namespaced else None, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{spec.plural}.{spec.group or "core"} "{name}" '
                                            "not found",
                           {"name": name, "group": spec.group, "kind": spec.plural})
        return obj

    @staticmethod
    def _check_namespace(spec: ResourceSpec, url_namespace: str | None, meta: JsonObject
                         ) -> str | None:
        if not spec.namespaced:
            meta.pop("namespace", None)
            return None
        body_namespace = meta.get("namespace")
        if url_namespace and body_namespace and body_namespace != url_namespace:
            raise ApiError(400, "BadRequest", f"the namespace of the object ({body_namespace}) "
                                              "does not match the namespace on the request "
                                              f"({url_namespace})")
        namespace = url_namespace or body_namespace
        if not namespace:
            raise ApiError(400, "BadRequest", f"{spec.kind} is namespaced: create it under "
                                              "/namespaces/<namespace>/ or set "
                                              "metadata.namespace")
        return str(namespace)

    def _check_namespace_lifecycle(self, spec: ResourceSpec, namespace: str | None,
                                   name: str) -> None:
        """``NamespaceLifecycle`` (``plugin/pkg/admission/namespace/lifecycle``): creates in
        a namespace that does not exist are 404, in one being deleted 403."""
        if namespace is None:
            return
        stored = self._objects.get((("", "v1", "namespaces"), None, namespace))
        if stored is None:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           {"name": namespace, "kind": "namespaces"})
        if stored["metadata"].get("deletionTimestamp"):
            resource = f"{spec.plural}.{spec.group}" if spec.group else spec.plural
            who = f'{resource} "{name}"' if name else resource
            raise ApiError(403, "Forbidden", f"{who} is forbidden: unable to create new content "
                                             f"in namespace {namespace} because it is being "
                                             "terminated",
                           {"name": name, "group": spec.group, "kind": spec.plural, "causes": [{
                               "reason": "NamespaceTerminating",
                               "message": f"namespace {namespace} is being terminated",
                               "field": "metadata.namespace"}]})

    @staticmethod
    def _check_precondition(spec: ResourceSpec, current: JsonObject, body: Mapping[str, Any]
                            ) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        actual = current["metadata"]["resourceVersion"]
        if wanted and str(wanted) != actual:
            # apiserver v0.32 pkg/registry/generic/registry/store.go Update:
            # errors.NewConflict(qualifiedResource, name, OptimisticLockErrorMsg), so the
            # message names the group-qualified resource and the details carry its group.
            name = current["metadata"]["name"]
            resource = f"{spec.plural}.{spec.group}" if spec.group else spec.plural
            details: JsonObject = {"name": name, "kind": spec.plural}
            if spec.group:
                details["group"] = spec.group
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {resource} '
                                            f'"{name}": the object has been modified; please '
                                            "apply your changes to the latest version and try "
                                            "again", details)

    def _update(self, spec: ResourceSpec, current: JsonObject, new: JsonObject,
                subresource: str | None, options: WriteOptions | None = None, *,
                copy_answer: bool = True) -> JsonObject:
        if subresource not in (None, "status") or (
            subresource == "status" and not spec.status_subresource
        ):
            raise ApiError(404, "NotFound", f"{spec.plural} has no subresource {subresource!r}")
        if subresource == "status":
            status = new.get("status")
            new = deep_copy(current)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif spec.status_subresource:
            new.pop("status", None)
            if "status" in current:
                new["status"] = deep_copy(current["status"])
        meta = new.setdefault("metadata", {})
        for system in _SYSTEM_METADATA:
            if system in current["metadata"]:
                meta[system] = current["metadata"][system]
            else:
                meta.pop(system, None)
        new["apiVersion"] = spec.api_version
        new["kind"] = spec.kind
        options = options or WriteOptions()
        strategy = self.strategy(spec)
        status_only: Subresource = "status" if subresource == "status" else None
        new = strategy.prepare_update(new, current, status_only, options)
        raise_if_invalid(spec.kind, spec.group, current["metadata"]["name"],
                         strategy.validate_update(new, current, status_only))
        meta = new["metadata"]
        if _generation_relevant(new) != _generation_relevant(current):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        meta.pop("resourceVersion", None)
        if options.dry_run:
            return {**new, "metadata": {**meta, "resourceVersion": current["metadata"][
                "resourceVersion"]}}
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(spec, new)
        unchanged = {**new, "metadata": {**meta, "resourceVersion": None}} == {
            **current, "metadata": {**current["metadata"], "resourceVersion": None}}
        if unchanged:
            # The API server skips no-op writes: no new resourceVersion, no watch event.
            return deep_copy(current) if copy_answer else current
        self._store(spec, new, "MODIFIED", previous=current)
        return deep_copy(new) if copy_answer else new

    def _next_resource_version(self) -> int:
        self._resource_version += 1
        return self._resource_version

    def _store(self, spec: ResourceSpec, obj: JsonObject, event_type: EventType,
               previous: JsonObject | None) -> None:
        rv = self._next_resource_version()
        obj["metadata"]["resourceVersion"] = str(rv)
        key: ObjectKey = (spec.key, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self._unlink_owners(key, self._objects.get(key))
        self._objects[key] = obj
        self._uids[obj["metadata"]["uid"]] = key
        for uid in _owner_uids(obj):
            self._owned.setdefault(uid, {})[key] = None
        # No copy for the event: stored objects are never changed (class docstring).
        self._publish(spec, WatchEvent(event_type, obj, rv, previous))
        self.strategy(spec).committed(self, event_type, obj)

    def _remove(self, spec: ResourceSpec, obj: JsonObject) -> JsonObject:
        meta = obj["metadata"]
        key: ObjectKey = (spec.key, meta.get("namespace"), meta["name"])
        previous = self._objects.pop(key, None)
        self._unlink_owners(key, previous)
        self._uids.pop(meta["uid"], None)
        final = deep_copy(obj)
        rv = self._next_resource_version()
        final["metadata"]["resourceVersion"] = str(rv)
        self._publish(spec, WatchEvent("DELETED", final, rv, previous))
        self.strategy(spec).committed(self, "DELETED", final)
        self._delete_dependents(meta["uid"])
        self._release_foreground_owners(
            *(ref.get("uid", "") for ref in meta.get("ownerReferences") or ()))
        return deep_copy(final)

    def _delete_in_foreground(self, spec: ResourceSpec, current: JsonObject,
                              options: DeleteOptions) -> JsonObject:
        """Mark the owner, delete its dependents; the owner goes when they are gone."""
        updated = deep_copy(current)
        meta = updated["metadata"]
        if FOREGROUND_FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), FOREGROUND_FINALIZER]
        meta.setdefault("deletionTimestamp", format_time(self._clock()))
        meta.setdefault("deletionGracePeriodSeconds", options.grace_period_seconds or 0)
        self._store(spec, updated, "MODIFIED", previous=current)
        for dep_spec, dependent in self._dependents(meta["uid"]):
            dep_meta = dependent["metadata"]
            if not dep_meta.get("deletionTimestamp"):
                self.delete(dep_spec, dep_meta.get("namespace"), dep_meta["name"], options)
        self._release_foreground_owners(meta["uid"])
        return self.get(spec, meta.get("namespace"), meta["name"]) if (
            meta["uid"] in self._uids) else deep_copy(updated)

    def _release_foreground_owners(self, *owner_uids: str) -> None:
        """Drop the foregroundDeletion finalizer of owners whose dependents are all gone."""
        for uid in owner_uids:
            key = self._uids.get(uid)
            owner = self._objects.get(key) if key is not None else None
            if key is None or owner is None or self._dependents(uid):
                continue
            finalizers = owner["metadata"].get("finalizers") or []
            if FOREGROUND_FINALIZER not in finalizers:
                continue
            released = deep_copy(owner)
            released["metadata"]["finalizers"] = [
                f for f in finalizers if f != FOREGROUND_FINALIZER]
            self._update(self._resources[key[0]], owner, released, None)

    def _unlink_owners(self, key: ObjectKey, stored: JsonObject | None) -> None:
        """Forget that the object stored at ``key`` (if any) depends on its owners."""
        if stored is None:
            return
        for uid in _owner_uids(stored):
            dependents = self._owned.get(uid)
            if dependents is not None:
                dependents.pop(key, None)
                if not dependents:
                    del self._owned[uid]

    def _dependents(self, owner_uid: str) -> list[tuple[ResourceSpec, JsonObject]]:
        return [(self._resources[key[0]], self._objects[key])
                for key in list(self._owned.get(owner_uid, ()))]

    def _delete_dependents(self, owner_uid: str) -> None:
        """The garbage collector: delete dependents left with no live owner."""
        for spec, obj in self._dependents(owner_uid):
            meta = obj["metadata"]
            key: ObjectKey = (spec.key, meta.get("namespace"), meta["name"])
            if self._objects.get(key) is not obj:
                continue  # already collected through another owner during this cascade
            live_owners = [ref for ref in meta.get("ownerReferences") or ()
                           if ref.get("uid") != owner_uid and ref.get("uid") in self._uids]
            if live_owners:
                continue
            self.delete(spec, meta.get("namespace"), meta["name"])

    def _orphan_dependents(self, owner_uid: str) -> None:
        for spec, obj in self._dependents(owner_uid):
            updated = deep_copy(obj)
            refs = [ref for ref in updated["metadata"]["ownerReferences"]
                    if ref.get("uid") != owner_uid]
            if refs:
                updated["metadata"]["ownerReferences"] = refs
            else:
                del updated["metadata"]["ownerReferences"]
            self._store(spec, updated, "MODIFIED", previous=obj)

    def _publish(self, spec: ResourceSpec, event: WatchEvent) -> None:
        history = self._history.setdefault(spec.key, deque())
        history.append(event)
        while len(history) > self._history_limit:
            self._compacted[spec.key] = history.popleft().resource_version
        for callback in list(self._subscribers.get(spec.key, ())):
            callback(event)


__all__ = [
    "FOREGROUND_FINALIZER",
    "GENERATE_NAME_ATTEMPTS",
    "HISTORY_LIMIT",
    "MAX_NAME_LENGTH",
    "ApiError",
    "DeleteOptions",
    "EventType",
    "JsonObject",
    "ObjectKey",
    "ObjectStore",
    "PatchType",
    "PropagationPolicy",
    "WatchEvent",
    "apply_patch",
    "format_time",
    "merge_patch",
    "random_name_suffix",
    "utc_now",
]


def _owner_uids(obj: JsonObject) -> set[str]:
    """The uids an object's ``ownerReferences`` name."""
    return {str(ref.get("uid")) for ref in obj["metadata"].get("ownerReferences") or ()
            if ref.get("uid")}


def _storage_key(spec: ResourceSpec, namespace: str | None, name: str) -> str:
    """The etcd key a real API server keeps the object under, as its errors show it:
    ``/registry`` (``--etcd-prefix``) plus the resource prefix, namespace and name. The
    prefix is the plural for built-in kinds (``nodes`` are kept as ``minions``:
    kubernetes v1.32 ``pkg/registry/core/node/storage/storage.go``) and ``<group>/<plural>``
    for custom resources (apiextensions-apiserver ``pkg/apiserver/customresource_handler.go``
    ``ResourcePrefix``)."""
    builtin = spec in BUILTIN_RESOURCES
    prefix = ("minions" if spec.plural == "nodes" else spec.plural) if builtin else (
        f"{spec.group}/{spec.plural}")
    return "/".join(["/registry", prefix, *([namespace] if namespace else []), name])


def _precondition_conflict(spec: ResourceSpec, namespace: str | None, name: str,
                           failed: str) -> ApiError:
    """The 409 of a DELETE whose ``preconditions`` do not hold. apiserver v0.32
    ``pkg/storage/interfaces.go`` ``Preconditions.Check`` returns ``NewInvalidObjError``
    (``pkg/storage/errors.go``: code 4, "invalid object", ``StorageError.Error`` prints
    key, resource version 0 and the message), which ``pkg/registry/generic/registry/
    store.go`` ``Delete`` turns into ``errors.NewConflict`` (``storeerr.InterpretDeleteError``):
    reason Conflict, details naming the group, resource and name."""
    resource = f"{spec.plural}.{spec.group}" if spec.group else spec.plural
    key = _storage_key(spec, namespace if spec.namespaced else None, name)
    details: JsonObject = {"name": name, "kind": spec.plural}
    if spec.group:
        details["group"] = spec.group
    return ApiError(409, "Conflict", (
        f'Operation cannot be fulfilled on {resource} "{name}": StorageError: invalid '
        f"object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: {failed}"),
        details)
