"""Chained Deployments end to end: ingest → transform → dashboards with the real operator.

``transform`` runs after each Completed run of ``ingest`` and ``dashboards`` after each of
``transform``, both mapping the window (``start_date``/``end_date``) from the run that
triggered them (docs/triggers.md). The kubelet stand-in plays the pods; the backfill is
the real ``headwater backfill`` command.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from headwater.cli import build_parser
from headwater.contract import SUMMARY_VERSION, RunSummary
from headwater_dev.emulator import BackgroundEmulator as Emulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_operator import kube as kube_module
from headwater_operator.cli.common import Io

TIMEOUT = 15.0
WaitFor = Callable[..., Awaitable[Any]]
WINDOW = {"start_date": "{{ run.parameters.start_date }}",
          "end_date": "{{ run.parameters.end_date }}"}


@pytest.fixture
async def chain(kube: kube_module.Kube, namespace: str) -> None:
    """Three Flows and Deployments: transform after ingest, dashboards after transform."""
    for name in ("ingest", "transform", "dashboards"):
        await kube.create(kube_module.FLOWS, {"metadata": {"name": name}, "spec": {
            "image": "example/chain:1", "entrypoint": f"chain/flows.py:{name}"}},
            namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {"metadata": {"name": "ingest"}, "spec": {
        "flowRef": {"name": "ingest"}}}, namespace=namespace)
    for name, upstream in (("transform", "ingest"), ("dashboards", "transform")):
        await kube.create(kube_module.DEPLOYMENTS, {"metadata": {"name": name}, "spec": {
            "flowRef": {"name": name},
            "triggers": [{"afterDeployment": {"name": upstream, "parameters": WINDOW}}]}},
            namespace=namespace)


def runs_of(emulator: Emulator, deployment: str) -> list[dict[str, Any]]:
    return sorted((run for run in emulator.objects("flowruns", "default")
                   if run["spec"]["deploymentRef"]["name"] == deployment),
                  key=lambda run: run["spec"]["parameters"].get("start_date", ""))


def window(run: dict[str, Any]) -> tuple[str, str]:
    return run["spec"]["parameters"]["start_date"], run["spec"]["parameters"]["end_date"]


async def drive(kubelet: Kubelet, emulator: Emulator, wait_for: WaitFor, run: str,
                outcome: str = "Completed") -> None:
    """Play run ``run``'s pod to ``outcome`` and wait for the run to show it."""
    pod = await kubelet.wait_for_pod(f"{run}-1", TIMEOUT)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    if outcome == "Completed":
        await kubelet.succeed(pod)
    else:
        await kubelet.fail(pod, 1, default_summary("Failed", "FlowFailed", "boom"))
    await wait_for(lambda: ((emulator.object("flowruns", run) or {}).get("status") or {})
                   .get("phase") == outcome, timeout=TIMEOUT)


async def wait_runs(emulator: Emulator, wait_for: WaitFor, deployment: str,
                    count: int) -> list[dict[str, Any]]:
    await wait_for(lambda: len(runs_of(emulator, deployment)) >= count, timeout=TIMEOUT)
    return runs_of(emulator, deployment)


async def start_ingest(kube: kube_module.Kube, namespace: str, name: str,
                       start: str, end: str) -> None:
    await kube.create(kube_module.FLOWRUNS, {"metadata": {"name": name}, "spec": {
        "deploymentRef": {"name": "ingest"},
        "parameters": {"start_date": start, "end_date": end}}}, namespace=namespace)


async def test_the_chain_runs_in_order_with_the_mapped_window(
    *, chain: None, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator,
    namespace: str, kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await start_ingest(kube, namespace, "ingest-nov", "2026-11-01", "2026-11-02")
    assert runs_of(emulator, "transform") == []
    await drive(kubelet, emulator, wait_for, "ingest-nov")

    [transform] = await wait_runs(emulator, wait_for, "transform", 1)
    assert window(transform) == ("2026-11-01", "2026-11-02")
    assert transform["spec"]["trigger"] == "deployment"
    assert transform["metadata"]["labels"]["headwater.dev/triggered-by"] == "ingest-nov"
    assert runs_of(emulator, "dashboards") == []  # not before transform completed
    await drive(kubelet, emulator, wait_for, transform["metadata"]["name"])

    [dashboards] = await wait_runs(emulator, wait_for, "dashboards", 1)
    assert window(dashboards) == ("2026-11-01", "2026-11-02")
    assert (dashboards["metadata"]["labels"]["headwater.dev/triggered-by"]
            == transform["metadata"]["name"])
    await drive(kubelet, emulator, wait_for, dashboards["metadata"]["name"])
    events = [event for event in emulator.objects("events", namespace)
              if event.get("reason") == "RunTriggered"]
    assert {event["involvedObject"]["name"] for event in events} == {"transform", "dashboards"}


async def test_a_failed_upstream_run_stops_the_chain(
    *, chain: None, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator,
    namespace: str, kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await start_ingest(kube, namespace, "ingest-bad", "2026-11-01", "2026-11-02")
    await drive(kubelet, emulator, wait_for, "ingest-bad", "Failed")
    # A later good run is the witness that the controller has seen both ends.
    await start_ingest(kube, namespace, "ingest-good", "2026-11-02", "2026-11-03")
    await drive(kubelet, emulator, wait_for, "ingest-good")

    [transform] = await wait_runs(emulator, wait_for, "transform", 1)
    assert window(transform) == ("2026-11-02", "2026-11-03")
    assert transform["metadata"]["labels"]["headwater.dev/triggered-by"] == "ingest-good"
    await operator.restart()  # a relist sees the failed run again: still nothing for it
    await drive(kubelet, emulator, wait_for, transform["metadata"]["name"])
    await wait_runs(emulator, wait_for, "dashboards", 1)
    assert len(runs_of(emulator, "transform")) == 1


def backfill(*argv: str) -> int:
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["backfill", *argv])
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    code: int = args.func(args)
    assert code == 0, err.getvalue()
    assert "created 3" in out.getvalue(), out.getvalue()
    return code


async def test_a_backfill_triggers_each_window_once_across_a_restart(
    *, chain: None, operator: OperatorHarness, kube: kube_module.Kube, emulator: Emulator,
    namespace: str, kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    await kube.create(kube_module.SCHEDULES, {"metadata": {"name": "daily-ingest"}, "spec": {
        "deploymentRef": {"name": "ingest"}, "cron": "0 0 * * *", "suspend": True,
        "windowParameters": {"start": "start_date", "end": "end_date", "format": "Date"}}},
        namespace=namespace)
    await asyncio.to_thread(backfill, "daily-ingest", "--start", "2026-11-02",
                            "--end", "2026-11-05")
    ingests = await wait_runs(emulator, wait_for, "ingest", 3)
    windows = [("2026-11-01", "2026-11-02"), ("2026-11-02", "2026-11-03"),
               ("2026-11-03", "2026-11-04")]
    assert [window(run) for run in ingests] == windows

    await drive(kubelet, emulator, wait_for, ingests[0]["metadata"]["name"])
    await wait_runs(emulator, wait_for, "transform", 1)
    # Restarted between triggers: the new leader relists every ended run.
    await operator.restart()
    for run in ingests[1:]:
        await drive(kubelet, emulator, wait_for, run["metadata"]["name"])
    transforms = await wait_runs(emulator, wait_for, "transform", 3)
    for run in transforms[:2]:
        await drive(kubelet, emulator, wait_for, run["metadata"]["name"])
    await operator.restart()
    await drive(kubelet, emulator, wait_for, transforms[2]["metadata"]["name"])
    dashboards = await wait_runs(emulator, wait_for, "dashboards", 3)
    for run in dashboards:
        await drive(kubelet, emulator, wait_for, run["metadata"]["name"])
    # Once more from scratch, with every run ended: a relist creates nothing.
    await operator.restart()
    await wait_for(lambda: all(
        (run.get("status") or {}).get("phase") == "Completed"
        for run in emulator.objects("flowruns", namespace)), timeout=TIMEOUT)
    assert [window(run) for run in runs_of(emulator, "transform")] == windows
    assert [window(run) for run in runs_of(emulator, "dashboards")] == windows
    assert len(emulator.objects("flowruns", namespace)) == 9


async def test_a_trigger_naming_its_own_deployment_is_refused(
    kube: kube_module.Kube, emulator: Emulator, namespace: str,
) -> None:
    with pytest.raises(kube_module.Invalid) as refused:
        await kube.create(kube_module.DEPLOYMENTS, {"metadata": {"name": "loop"}, "spec": {
            "flowRef": {"name": "x"},
            "triggers": [{"afterDeployment": {"name": "loop"}}]}}, namespace=namespace)
    assert "names its own Deployment" in refused.value.message


def with_assets(*keys: str) -> RunSummary:
    """A Completed run summary that materialized ``keys``."""
    return {"version": SUMMARY_VERSION, "state": "Completed", "reason": "Completed",  # type: ignore[typeddict-item]
            "message": "the flow run finished: Completed",
            "assets": [{"key": key, "version": "v1", "upstream": []} for key in keys]}


async def test_dashboards_run_only_once_every_upstream_asset_is_fresh(
    *, kube: kube_module.Kube, operator: OperatorHarness, emulator: Emulator,
    namespace: str, kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    for name in ("orders", "customers", "dashboards"):
        await kube.create(kube_module.FLOWS, {"metadata": {"name": name}, "spec": {
            "image": "example/chain:1", "entrypoint": f"chain/flows.py:{name}"}},
            namespace=namespace)
        spec: dict[str, Any] = {"flowRef": {"name": name}}
        if name == "dashboards":
            spec["triggers"] = [{"assets": {
                "upstream": ["lake://orders", "lake://customers"],
                "parameters": {"refreshed_after": "{{ run.name }}"}}}]
        await kube.create(kube_module.DEPLOYMENTS, {"metadata": {"name": name}, "spec": spec},
                          namespace=namespace)

    async def materialize(run: str, deployment: str, key: str) -> None:
        await kube.create(kube_module.FLOWRUNS, {"metadata": {"name": run}, "spec": {
            "deploymentRef": {"name": deployment}}}, namespace=namespace)
        pod = await kubelet.wait_for_pod(f"{run}-1", TIMEOUT)
        await kubelet.schedule(pod)
        await kubelet.run(pod)
        await kubelet.succeed(pod, with_assets(key))
        await wait_for(lambda: ((emulator.object("flowruns", run) or {}).get("status") or {})
                       .get("phase") == "Completed", timeout=TIMEOUT)

    await materialize("orders-1", "orders", "lake://orders")
    await materialize("orders-2", "orders", "lake://orders")
    await materialize("customers-1", "customers", "lake://customers")
    [first] = await wait_runs(emulator, wait_for, "dashboards", 1)
    assert first["spec"]["trigger"] == "asset"
    # The newest materialization of each key triggered it (newest last: end times have
    # a second's precision, so a tie is ordered by name); its template saw the last one.
    by = first["metadata"]["annotations"]["headwater.dev/triggered-by-runs"].split(",")
    assert sorted(by) == [f"{run}/{emulator.object('flowruns', run)['metadata']['uid']}"
                          for run in ("customers-1", "orders-2")]
    assert first["spec"]["parameters"] == {"refreshed_after": by[-1].split("/")[0]}

    # Only orders fresh again: nothing, even across a restart; customers too: one more.
    await materialize("orders-3", "orders", "lake://orders")
    await operator.restart()
    await materialize("customers-2", "customers", "lake://customers")
    await wait_runs(emulator, wait_for, "dashboards", 2)
    await operator.restart()
    await materialize("orders-4", "orders", "lake://orders")
    assert len(runs_of(emulator, "dashboards")) == 2
