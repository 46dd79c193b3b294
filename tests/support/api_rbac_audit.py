"""The RBAC audit of the api suite: every call the operator and the CLI make, checked
against the Helm chart's rendered RBAC.

tests/api/conftest.py wires it: requests are tagged with the :class:`Actor` that sent
them (a ``User-Agent`` of :data:`AGENT_PREFIX` and an id, see :class:`Actors`), the
emulator's request log feeds an :class:`Observed` set, and at the end of the session
:func:`ungranted` lists every call the chart would refuse:

* the operator, as the chart's ServiceAccount: a namespaced operator is checked against
  both install modes (cluster-wide: the ClusterRole; namespaced: Roles in the watched
  namespaces and whatever is cluster-scoped), a cluster-wide one against the
  cluster-wide install. An operator that elects a leader is checked against the chart
  installed in the namespace of the Lease it was given, with ``leaderElection.
  resourceName`` its name; the audit reads back from the rendered Deployment's args
  (:func:`chart_lease`) that the chart hands the operator that same Lease, so a Lease
  the operator writes under any other name or namespace is refused, as the chart's
  leader-election Role would refuse it. An operator without leader election is checked
  against the default install and may write no Lease at all;
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
                             "artifacts": "view", "lineage": "view",
                             "run": "edit", "backfill": "edit", "cancel": "edit",
                             "deploy": "edit",
                             "block get": "view", "block describe": "view",
                             "block create": "edit", "block delete": "edit",
                             "variable get": "view", "variable ls": "view",
                             "variable set": "edit", "variable unset": "edit"}


@dataclass(frozen=True)
class Lease:
    """The leader-election Lease an operator was given."""

    namespace: str
    """``--leader-elect-resource-namespace`` (or the operator's default for it)."""
    name: str
    """``--leader-elect-resource-name``."""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Actor:
    """Who sent a request: the operator (its scope) or a CLI command."""

    kind: str
    """``operator`` or ``cli``."""
    namespaces: tuple[str, ...] | None = None
    """The operator's watched namespaces; None when it watches the whole cluster."""
    lease: Lease | None = None
    """The Lease the operator was told to elect its leader on; None when it runs without
    leader election."""
    command: str = ""
    """The CLI command (``run``, ``get``, ...)."""

    def __str__(self) -> str:
        if self.kind == "cli":
            return f"`headwater {self.command}`"
        scope = ("cluster-wide" if self.namespaces is None
                 else f"watching {', '.join(self.namespaces)}")
        mode = (f"leader election on Lease {self.lease}" if self.lease is not None
                else "no leader election")
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


def chart_lease(manifests: Sequence[Manifest]) -> Lease:
    """The Lease the rendered chart tells the operator to elect its leader on (its
    Deployment's ``--leader-elect-resource-namespace`` and ``--leader-elect-resource-name``).
    """
    (deployment,) = [m for m in manifests if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]

    def value(flag: str) -> str:
        if args.count(flag) != 1:
            raise AssertionError(f"the chart's operator args must carry {flag} once: {args}")
        return args[args.index(flag) + 1]

    if "--leader-elect" not in args:
        raise AssertionError(f"the chart's operator runs without --leader-elect: {args}")
    return Lease(value("--leader-elect-resource-namespace"),
                 value("--leader-elect-resource-name"))


def _operator_installs(actor: Actor) -> list[tuple[str, dict[str, Any], str]]:
    """(description, values, release namespace) of each install ``actor`` must work in."""
    lease: dict[str, Any] = ({} if actor.lease is None
                             else {"leaderElection": {"resourceName": actor.lease.name}})
    release_namespace = (DEFAULT_RELEASE_NAMESPACE if actor.lease is None
                         else actor.lease.namespace)
    installs = [("cluster-wide install", {**lease}, release_namespace)]
    if actor.namespaces is not None:
        installs.append((f"namespaced install (watchNamespaces={list(actor.namespaces)})",
                         {**lease, "watchNamespaces": list(actor.namespaces)},
                         release_namespace))
    return installs


def _operator_refusals(actor: Actor, calls: Sequence[Call], render: Render) -> list[str]:
    """Why the chart would refuse ``actor``'s ``calls``, install by install."""
    refused: list[str] = []
    for install, values, release_namespace in _operator_installs(actor):
        manifests = render(values, release_namespace)
        given = chart_lease(manifests)
        if actor.lease is not None and given != actor.lease:
            refused.append(f"{actor} in a {install}: the chart gives the operator the "
                           f"Lease {given}, not {actor.lease}")
        account = _service_account(manifests)
        for call in calls:
            rules = service_account_rules(manifests, release_namespace, account,
                                          call.request.namespace)
            if not rules_allow(rules, call.request):
                refused.append(f"{actor} in a {install}: {call.request}")
    return refused


def ungranted(calls: Iterable[Call], render: Render) -> list[str]:
    """Every call the chart's RBAC would refuse, explained; empty when all are granted."""
    by_actor: dict[Actor, list[Call]] = {}
    for call in calls:
        by_actor.setdefault(call.actor, []).append(call)
    refused: list[str] = []
    for actor, mine in sorted(by_actor.items(), key=lambda item: str(item[0])):
        if actor.kind == "operator":
            refused += _operator_refusals(actor, mine, render)
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
