"""Two and three operator processes with leader election: kill the leader, lose nothing.

Each replica is a real ``python -m headwater_operator --leader-elect`` process against the
emulator (in this test process), as the Helm chart runs them, with short durations
(lease 3 s, renew deadline 2 s, retry 0.5 s) so a take-over takes seconds. The leader is
killed with SIGKILL — no release, no clean-up: the standby must wait the lease out —
while a run is running, and in the middle of a Schedule's tick (between the FlowRun's
create and the Schedule's status write, held open by a delay the emulator injects).

What must hold, as users rely on it: a standby takes over within the lease duration
(plus its retry period, since it looks only that often), no run and no pod is created
twice, no tick is lost, and every run reaches a terminal phase.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from api_nodes import kubelet_running_every_pod
from headwater.contract import LABEL_FLOW_RUN, LABEL_SCHEDULE
from headwater_dev import faults
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_operator import kube as kube_module
from notification_receivers import HTTPReceiver, http_receiver

pytestmark = pytest.mark.slow

WaitFor = Callable[..., Awaitable[Any]]
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 3.0, 2.0, 0.5
TAKEOVER_BOUND = LEASE_SECONDS + RETRY_SECONDS + 2.0
"""Kill → a standby leads: the lease, one look of the standby, and 2 s for a loaded
2-core machine (the processes start, list and watch while the test runs)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _readyz(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as page:
            return str(page.read().decode())
    except (urllib.error.URLError, OSError):
        return ""


@dataclass
class Replica:
    """One operator process."""

    name: str
    process: subprocess.Popen[bytes]
    health: int
    log: Path

    def role(self) -> str:
        """``leader``, ``standby``, or ``""`` (not answering: starting, or dead)."""
        text = _readyz(self.health)
        return text.removeprefix("ok (").removesuffix(")") if text.startswith("ok (") else ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@dataclass
class Fleet:
    """Operator replicas as processes (the chart's Deployment with ``replicas: n``)."""

    emulator: BackgroundEmulator
    namespace: str
    directory: Path
    replicas: list[Replica] = field(default_factory=list)

    def start(self, count: int, env: dict[str, str] | None = None) -> None:
        for _ in range(count):
            self.replicas.append(self._spawn(f"operator-{len(self.replicas)}", env or {}))

    def _spawn(self, name: str, env: dict[str, str]) -> Replica:
        health = _free_port()
        log = self.directory / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "headwater_operator", "--namespace", self.namespace,
                 "--kubeconfig", str(self.emulator.kubeconfig_path),
                 "--health-port", str(health), "--metrics-port", "0", "--leader-elect",
                 "--leader-elect-resource-namespace", self.namespace,
                 "--leader-elect-lease-duration", f"{LEASE_SECONDS}s",
                 "--leader-elect-renew-deadline", f"{RENEW_SECONDS}s",
                 "--leader-elect-retry-period", f"{RETRY_SECONDS}s"],
                stdout=sink, stderr=subprocess.STDOUT,
                env={**os.environ, "POD_NAME": name, **env})
        return Replica(name, process, health, log)

    def alive(self) -> list[Replica]:
        return [replica for replica in self.replicas if replica.process.poll() is None]

    async def leader(self, wait_for: WaitFor, *, within: float = 30.0) -> Replica:
        """The one live replica that says it leads (and holds the Lease)."""
        async def one_leader() -> Replica | None:
            roles = await asyncio.gather(*(asyncio.to_thread(replica.role)
                                           for replica in self.alive()))
            leaders = [r for r, role in zip(self.alive(), roles, strict=False)
                       if role == "leader"]
            holder = self.holder()
            if len(leaders) == 1 and holder.startswith(leaders[0].name + "_"):
                return leaders[0]
            return None

        found: Replica = await wait_for(one_leader, timeout=within,
                                        message="exactly one live replica leads")
        return found

    async def all_answer(self, wait_for: WaitFor) -> None:
        async def answering() -> bool:
            roles = await asyncio.gather(*(asyncio.to_thread(replica.role)
                                           for replica in self.alive()))
            return all(roles)

        await wait_for(answering, timeout=60, message="every replica answers /readyz")

    def holder(self) -> str:
        lease = self.emulator.object("leases", "headwater-operator", self.namespace) or {}
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def kill(self, replica: Replica) -> float:
        """SIGKILL ``replica`` (no release); returns when it died (monotonic)."""
        replica.process.send_signal(signal.SIGKILL)
        replica.process.wait(timeout=10)
        return time.monotonic()

    def stop(self) -> None:
        for replica in self.alive():
            replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()


@pytest.fixture
def fleet(emulator: BackgroundEmulator, namespace: str, tmp_path: Path) -> Iterator[Fleet]:
    made = Fleet(emulator, namespace, tmp_path)
    try:
        yield made
    finally:
        made.stop()


async def flow_and_deployment(kube: kube_module.Kube, namespace: str) -> None:
    await kube.create(kube_module.FLOWS, {
        "metadata": {"name": "f"},
        "spec": {"image": "example/flow:1", "entrypoint": "flows/f.py:f"},
    }, namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {
        "metadata": {"name": "nightly"}, "spec": {"flowRef": {"name": "f"}},
    }, namespace=namespace)


def phase(emulator: BackgroundEmulator, name: str) -> str | None:
    return ((emulator.object("flowruns", name) or {}).get("status") or {}).get("phase")


def pod_creates(emulator: BackgroundEmulator) -> int:
    """Pod creates the API server accepted (its own record of them): a pod created twice
    — for one attempt after a deletion, or for an attempt that should not exist — shows
    up as one create more than the pods the runs' attempts account for."""
    return sum(1 for record in emulator.requests.records
               if record.verb == "create" and record.resource == "pods" and record.code == 201)


async def test_a_standby_takes_over_a_running_run_when_the_leader_is_killed(
    *, fleet: Fleet, emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    fleet.start(2)
    await fleet.all_answer(wait_for)
    leader = await fleet.leader(wait_for)
    await flow_and_deployment(kube, namespace)
    await kube.create(kube_module.FLOWRUNS, {
        "metadata": {"name": "long"}, "spec": {"deploymentRef": {"name": "nightly"}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod("long-1", timeout=30)
    await kubelet.run(pod)
    await wait_for(lambda: phase(emulator, "long") == "Running", timeout=30)

    killed_at = fleet.kill(leader)
    successor = await fleet.leader(wait_for, within=TAKEOVER_BOUND + 10)
    took = time.monotonic() - killed_at
    assert successor is not leader
    assert took <= TAKEOVER_BOUND, f"the standby took over after {took:.1f}s"

    await kubelet.succeed(pod)
    await wait_for(lambda: phase(emulator, "long") == "Completed", timeout=30)
    run = emulator.object("flowruns", "long") or {}
    assert run["status"]["attempts"] == 1
    assert pod_creates(emulator) == 1, "the new leader adopted the pod"
    assert [p["metadata"]["name"] for p in emulator.objects("pods", namespace)] == ["long-1"]
    assert [r["metadata"]["name"] for r in emulator.objects("flowruns", namespace)] == ["long"]


async def test_ticks_and_runs_survive_killing_two_leaders_mid_tick(
    *, fleet: Fleet, emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor,
) -> None:
    # Every Schedule status write is held for 1 s: a leader killed right after a tick's
    # FlowRun appears dies between that create and the status write that records the tick.
    plan = faults.FaultPlan(seed=11)
    plan.add(faults.Delay(1.0), verb="patch", resource="schedules/status", times=None)
    emulator.install_faults(plan)
    fleet.start(3)
    await fleet.all_answer(wait_for)
    await flow_and_deployment(kube, namespace)
    await kube.create(kube_module.SCHEDULES, {
        "metadata": {"name": "tick"},
        "spec": {"deploymentRef": {"name": "nightly"}, "interval": "2s",
                 "catchup": {"policy": "All"}},
    }, namespace=namespace)

    def ticks() -> list[int]:
        return sorted(int(run["metadata"]["name"].rsplit("-", 1)[1]) for run in
                      emulator.objects("flowruns", namespace,
                                       label_selector=f"{LABEL_SCHEDULE}=tick"))

    async with kubelet_running_every_pod(kubelet, emulator, namespace):
        takeovers = []
        for _ in range(2):
            leader = await fleet.leader(wait_for)
            before = len(ticks())
            await wait_for(lambda before=before: len(ticks()) > before, timeout=30)
            killed_at = fleet.kill(leader)  # its status write for that tick is in flight
            successor = await fleet.leader(wait_for, within=TAKEOVER_BOUND + 10)
            takeovers.append(time.monotonic() - killed_at)
            assert successor is not leader
        last_kill = ticks()[-1]
        await wait_for(lambda: ticks()[-1] >= last_kill + 3 * 2, timeout=60)

        seen = ticks()
        # One run per tick, every 2 s from the first to the last: none lost, none twice.
        assert seen == list(range(seen[0], seen[-1] + 1, 2)), seen
        assert len(set(seen)) == len(seen)

        def finished() -> bool:
            return all(phase(emulator, run["metadata"]["name"]) == "Completed"
                       for run in emulator.objects("flowruns", namespace,
                                                   label_selector=f"{LABEL_SCHEDULE}=tick"))

        await wait_for(finished, timeout=60, message="every run reached Completed")

    assert all(took <= TAKEOVER_BOUND for took in takeovers), takeovers
    runs = emulator.objects("flowruns", namespace, label_selector=f"{LABEL_SCHEDULE}=tick")
    assert all(run["status"]["attempts"] == 1 for run in runs)
    assert pod_creates(emulator) == len(runs), "one pod per run, none created twice"
    for run in runs:
        pods = emulator.objects("pods", namespace,
                                label_selector=f"{LABEL_FLOW_RUN}={run['metadata']['name']}")
        assert [pod["metadata"]["name"] for pod in pods] == [f"{run['metadata']['name']}-1"]


receiver = pytest.fixture(http_receiver)


async def test_a_standby_redelivers_what_a_dead_leader_delivered_with_the_same_key(
    *, fleet: Fleet, emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
    kubelet: Kubelet, wait_for: WaitFor, receiver: HTTPReceiver,
) -> None:
    """Failover between an Automation's delivery and its status write: the leader dies
    there (``HEADWATER_AUTOMATION_FAULT=after-delivery``, as a SIGKILL would leave it); the
    standby takes over, finds the intent in the Automation's ledger and delivers again with
    the same idempotency key — the at-least-once guarantee docs/automations.md states."""
    fleet.start(1, env={"HEADWATER_AUTOMATION_FAULT": "after-delivery"})
    leader = await fleet.leader(wait_for)
    fleet.start(1)
    await fleet.all_answer(wait_for)
    await flow_and_deployment(kube, namespace)
    await kube.create(kube_module.SECRETS, {
        "metadata": {"name": "hook-block"}, "stringData": {"url": receiver.url("/hook")},
    }, namespace=namespace)
    await kube.create(kube_module.BLOCKS, {"metadata": {"name": "hook"}, "spec": {
        "type": "headwater.blocks.notifications:CustomWebhook",
        "data": {"json_body": {"text": "{{ body }}", "key": "{{ idempotency_key }}"}},
        "secretRefs": {"url": {"name": "hook-block", "key": "url"}}}}, namespace=namespace)
    await kube.create(kube_module.AUTOMATIONS, {"metadata": {"name": "on-failure"}, "spec": {
        "trigger": {"runPhase": {"phases": ["Failed"]}},
        "actions": [{"notify": {"blockRef": {"name": "hook"}, "subject": "failed",
                                "body": "{{ run.name }} {{ run.phase }}"}}]}},
        namespace=namespace)

    def automation() -> dict[str, Any]:
        return dict((emulator.object("automations", "on-failure", namespace) or {})
                    .get("status") or {})

    await wait_for(lambda: automation().get("watermark"), timeout=30,
                   message="the leader watches the Automation")
    await kube.create(kube_module.FLOWRUNS, {
        "metadata": {"name": "doomed"}, "spec": {"deploymentRef": {"name": "nightly"}},
    }, namespace=namespace)
    pod = await kubelet.wait_for_pod("doomed-1", timeout=30)
    await kubelet.run(pod)
    await kubelet.fail(pod, 1, default_summary("Failed", message="boom"))
    await wait_for(lambda: leader.process.poll() is not None, timeout=30,
                   message="the leader dies right after its delivery")
    assert leader.process.returncode == 137, leader.output()
    died_at = time.monotonic()
    successor = await fleet.leader(wait_for, within=TAKEOVER_BOUND + 10)
    assert successor is not leader
    assert time.monotonic() - died_at <= TAKEOVER_BOUND
    await wait_for(lambda: automation().get("delivered") == 1, timeout=30,
                   message="the new leader records the delivery")
    await asyncio.sleep(1.0)
    assert len(receiver.requests) == 2, [r.body for r in receiver.requests]
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert len(keys) == 1
    assert {r.json()["key"] for r in receiver.requests} == keys
    assert {r.json()["text"] for r in receiver.requests} == {"doomed Failed"}
    assert phase(emulator, "doomed") == "Failed"
