"""The RBAC audit of the api suite: every call the operator and the CLI make, checked
against the Helm chart's rendered RBAC.

tests/api/conftest.py wires it: requests are tagged with the :class:`Actor` that sent
them (a ``User-Agent`` of :data:`AGENT_PREFIX` and an id, see :class:`Actors`), the
emulator's request log feeds an :class:`Observed` set, and at the end of the session
:func:`ungranted` lists every call the chart would refuse:

* the operator, as the chart's ServiceAccount: a namespaced operator is checked against
  both install modes (cluster-wide: the ClusterRole; namespaced: Roles in the watched
  namespaces and whatever is cluster-scoped), a cluster-wide one against the
  cluster-wide install; with peering (``replicas > 1``) the chart is rendered with two
  replicas, the operator's ``peering.name``, and its release namespace where the
  operator keeps its Lease (the chart's ``POD_NAMESPACE``);
* the CLI, as a user holding Kubernetes' ``view`` or ``edit`` in the namespace (with the
  chart's aggregated roles): each command must work with the role docs/cli.md names.

Discovery (``/api``, ``/apis/...``) is not recorded by the emulator and needs no rule:
the ``system:discovery`` ClusterRole grants it to every authenticated user.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from k8s_rbac import (
    Manifest,
    Request,
    Rule,
    edit_rules,
    rules_allow,
    service_account_rules,
    view_rules,
)

AGENT_PREFIX = "headwater-api-suite/"
RULES_FILE = "charts/headwater/templates/_rbac-rules.tpl"
RELEASE = "hw"
DEFAULT_RELEASE_NAMESPACE = "headwater-system"
READ_VERBS = frozenset({"get", "list", "watch"})

# The built-in role each CLI command needs (docs/cli.md, "Permissions").
CLI_ROLES: dict[str, str] = {"get": "view", "describe": "view", "logs": "view",
                             "run": "edit", "backfill": "edit", "cancel": "edit"}


@dataclass(frozen=True)
class Actor:
    """Who sent a request: the operator (its scope) or a CLI command."""

    kind: str
    """``operator`` or ``cli``."""
    namespaces: tuple[str, ...] | None = None
    """The operator's watched namespaces; None when it watches the whole cluster."""
    peering: str | None = None
    """The operator's kopf peering name (the chart's ``replicas > 1`` and
    ``peering.name``, which also names its Lease ``<name>-scheduler``); None standalone."""
    command: str = ""
    """The CLI command (``run``, ``get``, ...)."""

    def __str__(self) -> str:
        if self.kind == "cli":
            return f"`headwater {self.command}`"
        scope = ("cluster-wide" if self.namespaces is None
                 else f"watching {', '.join(self.namespaces)}")
        mode = f"peering {self.peering}" if self.peering is not None else "standalone"
        return f"the operator ({scope}, {mode})"


class Actors:
    """Actor ⇄ the ``User-Agent`` its requests carry."""

    def __init__(self) -> None:
        self._ids: dict[Actor, str] = {}
        self._actors: dict[str, Actor] = {}
        self._lock = threading.Lock()

    def agent(self, actor: Actor) -> str:
        """The User-Agent for ``actor``'s requests."""
        with self._lock:
            if actor not in self._ids:
                ident = f"{actor.kind}-{len(self._ids) + 1}"
                self._ids[actor], self._actors[ident] = ident, actor
            return AGENT_PREFIX + self._ids[actor]

    def of(self, user_agent: str) -> Actor | None:
        """The actor of a request, or None for the test harness's own requests."""
        if not user_agent.startswith(AGENT_PREFIX):
            return None
        with self._lock:
            return self._actors.get(user_agent[len(AGENT_PREFIX):])


@dataclass(frozen=True)
class Call:
    """One distinct call as RBAC sees it, and who made it."""

    actor: Actor
    request: Request


class Observed:
    """The distinct calls of the whole session (thread-safe: the emulator runs in its own
    thread)."""

    def __init__(self, actors: Actors) -> None:
        self.actors = actors
        self.calls: set[Call] = set()
        self._lock = threading.Lock()

    def record(self, user_agent: str, request: Request) -> None:
        """Record one served request if the operator or the CLI sent it."""
        actor = self.actors.of(user_agent)
        if actor is None:
            return
        with self._lock:
            self.calls.add(Call(actor, request))

    def snapshot(self) -> list[Call]:
        """The calls so far, in a stable order."""
        with self._lock:
            return sorted(self.calls, key=lambda c: (str(c.actor), str(c.request)))

    def write(self, path: Path) -> None:
        """The observed calls as JSON (one entry per actor and distinct call)."""
        entries = [{"actor": str(call.actor), **asdict(call.request)}
                   for call in self.snapshot()]
        path.write_text(json.dumps(entries, indent=1))


Render = Callable[[Mapping[str, Any], str], list[Manifest]]
"""``render(values, release_namespace)``: the chart's manifests."""


def request_of(verb: str, group: str, resource: str, namespace: str | None,
               name: str | None) -> Request:
    """The authorizer's view of one request the emulator logged (``resource`` is
    ``plural`` or ``plural/subresource``)."""
    plural, _, subresource = resource.partition("/")
    return Request(verb, group, plural, subresource, namespace or "", name or "")


def _operator_installs(actor: Actor, calls: Sequence[Call]
                       ) -> list[tuple[str, dict[str, Any], str]]:
    """(description, values, release namespace) of each install ``actor`` must work in."""
    lease_namespaces = {c.request.namespace for c in calls if c.request.resource == "leases"}
    if len(lease_namespaces) > 1:
        raise AssertionError(f"{actor} used Leases in several namespaces: {lease_namespaces}")
    release_namespace = next(iter(lease_namespaces), DEFAULT_RELEASE_NAMESPACE)
    replicas: dict[str, Any] = ({"replicas": 2, "peering": {"name": actor.peering}}
                                if actor.peering is not None else {})
    installs = [("cluster-wide install", {**replicas}, release_namespace)]
    if actor.namespaces is not None:
        installs.append((f"namespaced install (watchNamespaces={list(actor.namespaces)})",
                         {**replicas, "watchNamespaces": list(actor.namespaces)},
                         release_namespace))
    return installs


def ungranted(calls: Iterable[Call], render: Render) -> list[str]:
    """Every call the chart's RBAC would refuse, explained; empty when all are granted."""
    by_actor: dict[Actor, list[Call]] = {}
    for call in calls:
        by_actor.setdefault(call.actor, []).append(call)
    refused: list[str] = []
    for actor, mine in sorted(by_actor.items(), key=lambda item: str(item[0])):
        if actor.kind == "operator":
            for install, values, release_namespace in _operator_installs(actor, mine):
                manifests = render(values, release_namespace)
                account = _service_account(manifests)
                for call in mine:
                    rules = service_account_rules(manifests, release_namespace, account,
                                                  call.request.namespace)
                    if not rules_allow(rules, call.request):
                        refused.append(f"{actor} in a {install}: {call.request}")
        else:
            manifests = render({}, DEFAULT_RELEASE_NAMESPACE)
            role = CLI_ROLES.get(actor.command)
            if role is None:
                refused.append(f"{actor}: no role documented for this command "
                               "(docs/cli.md, CLI_ROLES)")
                continue
            user_rules: list[Rule] = (view_rules(manifests) if role == "view"
                                      else edit_rules(manifests))
            refused += [f"{actor} with the {role} role: {call.request}"
                        for call in mine if not rules_allow(user_rules, call.request)]
    return refused


def _service_account(manifests: Sequence[Manifest]) -> str:
    (account,) = [m["metadata"]["name"] for m in manifests if m["kind"] == "ServiceAccount"]
    return str(account)


def failure_report(refused: Sequence[str], observed_file: Path) -> str:
    """The message that fails the run."""
    lines = "\n".join(f"  - {line}" for line in refused)
    return (f"RBAC audit: {len(refused)} call(s) the api suite made would be refused by the "
            f"Helm chart's RBAC:\n{lines}\nGrant them in {RULES_FILE} (operator) or "
            f"document and grant them for users (docs/cli.md), or stop making them. Every "
            f"observed call: {observed_file}")
