"""Builders of Flow/Deployment/FlowRun models and raw pods for the FlowRun unit tests.

Kept in a module of its own (no tests in it) so each test states only what matters to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from headwater_operator.api import Deployment, Flow, FlowRun
from headwater_operator.flowruns.settings import RunSettings, resolve_settings

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_flow(**spec: Any) -> Flow:
    body = {"image": "ghcr.io/acme/etl:1.0", "entrypoint": "etl.flows:ingest", **spec}
    return Flow.model_validate(
        {"metadata": {"name": "etl", "namespace": "ns"}, "spec": body}
    )


def make_deployment(**spec: Any) -> Deployment:
    return Deployment.model_validate(
        {"metadata": {"name": "nightly", "namespace": "ns"},
         "spec": {"flowRef": {"name": "etl"}, **spec}}
    )


def make_run(name: str = "run-a", *, status: dict[str, Any] | None = None,
             created: datetime = T0, labels: dict[str, str] | None = None,
             **spec: Any) -> FlowRun:
    return FlowRun.model_validate(
        {
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "creationTimestamp": iso(created), "labels": labels or {}},
            "spec": {"deploymentRef": {"name": "nightly"}, **spec},
            "status": status or {},
        }
    )


def make_settings(run: FlowRun | None = None, flow: Flow | None = None,
                  deployment: Deployment | None = None) -> RunSettings:
    return resolve_settings(flow or make_flow(), deployment or make_deployment(),
                            run or make_run())


def make_pod(phase: str = "Pending", *, created: datetime = T0,
             container: dict[str, Any] | None = None, reason: str | None = None,
             conditions: list[dict[str, Any]] | None = None,
             deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "run-a-1", "creationTimestamp": iso(created)}
    if deleting:
        meta["deletionTimestamp"] = iso(created)
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if reason:
        status["reason"] = reason
    if container is not None:
        status["containerStatuses"] = [{"name": "flow", "state": container}]
    return {"metadata": meta, "status": status}


def terminated(exit_code: int, message: str | None = None, reason: str = "Completed",
               started: datetime = T0, finished: datetime | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": exit_code, "reason": reason,
                             "startedAt": iso(started), "finishedAt": iso(finished or at(60))}
    if message is not None:
        state["message"] = message
    return {"terminated": state}
