"""Automations end to end: the real operator, the emulated API, a scripted kubelet, and real
receivers (a local HTTP server for webhooks, aiosmtpd for email).

What users rely on (docs/automations.md):

* a failing run notifies once, with the rendered message, and history before the
  Automation existed notifies nothing;
* a receiver answering 500 is retried (same idempotency key) while the run's own phase
  moves on without waiting;
* the guarantee across a SIGKILL of the operator between a transition's intent and its
  delivery, and between a delivery and its status write: the receiver gets the delivery
  once, or again with the same idempotency key; ``runDeployment`` creates exactly one run;
* a freshness trigger fires once per stale episode; recovery fires on Completed after
  Failed.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness
from headwater_dev.kubelet import Kubelet, default_summary
from headwater_operator import kube as kube_module
from headwater_operator import metrics
from headwater_operator.cli.get import render_objects

WaitFor = Callable[..., Awaitable[Any]]
TIMEOUT = 20.0
API = "headwater.dev/v1alpha1"
WEBHOOK_TYPE = "headwater.blocks.notifications:CustomWebhook"
SLACK_TYPE = "headwater.blocks.notifications:SlackWebhook"
SMTP_TYPE = "headwater.blocks.notifications:EmailSMTP"


# --- receivers --------------------------------------------------------------------------
@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """A local HTTP receiver: answers each POST with the next scripted status (then 200)
    and keeps what it got."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def ok(self) -> list[Request]:
        """Requests answered 2xx."""
        return [r for r in self.requests if r.headers.get("x-answered") == "200"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with lock:
                status = got.statuses.pop(0) if got.statuses else 200
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-answered"] = str(status)
                got.requests.append(Request(time.time(), self.path, headers, json.loads(raw)))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    got.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=got.server.serve_forever, daemon=True)
    thread.start()
    yield got
    got.server.shutdown()
    got.server.server_close()


async def make_block(kube: kube_module.Kube, namespace: str, name: str, *, type_: str,
                     data: dict[str, Any], secrets: dict[str, str]) -> None:
    """A Block and its Secret, as `headwater block create` writes them."""
    if secrets:
        await kube.create(kube_module.SECRETS, {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-block"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in secrets.items()},
        }, namespace=namespace)
    await kube.create(kube_module.BLOCKS, {
        "apiVersion": API, "kind": "Block", "metadata": {"name": name},
        "spec": {"type": type_, "data": data, "secretRefs": {
            k: {"name": f"{name}-block", "key": k} for k in secrets}},
    }, namespace=namespace)


async def webhook_block(kube: kube_module.Kube, namespace: str, receiver: Receiver,
                        name: str = "hook") -> None:
    await make_block(kube, namespace, name, type_=WEBHOOK_TYPE, data={
        "json_body": {"subject": "{{ subject }}", "text": "{{ body }}",
                      "key": "{{ idempotency_key }}"},
        "timeout_seconds": 3}, secrets={"url": receiver.url})


async def automation(kube: kube_module.Kube, namespace: str, name: str, *,
                     trigger: dict[str, Any], actions: list[dict[str, Any]]) -> None:
    await kube.create(kube_module.AUTOMATIONS, {
        "apiVersion": API, "kind": "Automation", "metadata": {"name": name},
        "spec": {"trigger": trigger, "actions": actions}}, namespace=namespace)


def notify(block: str = "hook") -> dict[str, Any]:
    return {"notify": {"blockRef": {"name": block},
                       "subject": "{{ run.name }} {{ run.phase }}",
                       "body": "{{ run.deployment }}: {{ run.message }} "
                               "(attempts {{ run.attempts }})"}}


def status_of(emulator: BackgroundEmulator, name: str, namespace: str) -> dict[str, Any]:
    return dict((emulator.object("automations", name, namespace) or {}).get("status") or {})


async def finish_run(kube: kube_module.Kube, kubelet: Kubelet, *, wait_for: WaitFor,
                     emulator: BackgroundEmulator, namespace: str, name: str,
                     fail: bool, deployment: str = "nightly") -> None:
    """Create FlowRun ``name`` of ``deployment``, run its pod, end it Failed or Completed."""
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": API, "kind": "FlowRun", "metadata": {"name": name},
        "spec": {"deploymentRef": {"name": deployment}}}, namespace=namespace)
    pod = await kubelet.wait_for_pod(f"{name}-1", TIMEOUT)
    await kubelet.schedule(pod)
    await kubelet.run(pod)
    await wait_for(lambda: (emulator.object("flowruns", name, namespace) or {}).get(
        "status", {}).get("phase") == "Running", timeout=TIMEOUT, message=f"{name} runs")
    if fail:
        await kubelet.fail(pod, 1, default_summary("Failed", message="ZeroDivisionError"))
    else:
        await kubelet.succeed(pod, default_summary("Completed"))
    want = "Failed" if fail else "Completed"
    await wait_for(lambda: (emulator.object("flowruns", name, namespace) or {}).get(
        "status", {}).get("phase") == want, timeout=TIMEOUT, message=f"{name} is {want}")


Finish = Callable[..., Awaitable[None]]


@pytest.fixture
def finish(*, kube: kube_module.Kube, kubelet: Kubelet, emulator: BackgroundEmulator,
           namespace: str, wait_for: WaitFor) -> Finish:
    """``await finish(name=..., fail=...)``: a run of ``nightly`` that ends so."""
    return functools.partial(finish_run, kube, kubelet, wait_for=wait_for, emulator=emulator,
                             namespace=namespace)


# --- in-process operator ----------------------------------------------------------------
async def test_a_failed_run_notifies_once_with_the_rendered_message(
        *, operator: OperatorHarness, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        hello_deployment: Any, receiver: Receiver) -> None:
    await hello_deployment()
    await webhook_block(kube, namespace, receiver)
    await finish(name="before", fail=True)
    await asyncio.sleep(1.1)  # the Automation is created a second after that failure
    await automation(kube, namespace, "on-failure", trigger={"runPhase": {
        "phases": ["Failed", "Crashed"], "selector": {"deployments": ["nightly"]}}},
        actions=[notify()])
    await wait_for(lambda: status_of(emulator, "on-failure", namespace).get("watermark"),
                   timeout=TIMEOUT, message="the Automation is watching")
    await finish(name="good", fail=False)
    await finish(name="bad", fail=True)
    await wait_for(lambda: status_of(emulator, "on-failure", namespace).get("delivered") == 1,
                   timeout=TIMEOUT, message="one delivery recorded")
    await asyncio.sleep(1.0)
    assert len(receiver.requests) == 1, [r.body for r in receiver.requests]
    request = receiver.requests[0]
    assert request.body["subject"] == "bad Failed"
    assert request.body["text"].startswith("nightly: ")
    assert "(attempts 1)" in request.body["text"]
    assert request.headers["idempotency-key"] == request.body["key"]
    assert request.headers["idempotency-key"].startswith("hw-")
    status = status_of(emulator, "on-failure", namespace)
    assert [e["run"] for e in status["ledger"]] == ["bad"]
    assert status["lastDeliveries"][0]["outcome"] == "Delivered"
    assert receiver.url not in json.dumps(emulator.object("automations", "on-failure",
                                                          namespace))
    assert metrics.REGISTRY.get_sample_value("headwater_automation_deliveries_total", {
        "automation": f"{namespace}/on-failure", "action": "notify",
        "outcome": "Delivered"}) == 1
    # `headwater get automations` shows it from the stored object.
    table = render_objects("automations", [emulator.object("automations", "on-failure",
                                                           namespace)], "table",
                           datetime.now(UTC))
    assert re.search(r"on-failure +True +runPhase Failed,Crashed +notify +1 +0 +Delivered ",
                     table), table


async def test_a_failing_receiver_is_retried_and_never_holds_the_run(
        *, operator: OperatorHarness, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        hello_deployment: Any, receiver: Receiver) -> None:
    await hello_deployment()
    receiver.statuses = [500, 500]
    await make_block(kube, namespace, "slack", type_=SLACK_TYPE, data={"timeout_seconds": 3},
                     secrets={"url": receiver.url})
    await automation(kube, namespace, "slack-on-failure",
                     trigger={"runPhase": {"phases": ["Failed"]}}, actions=[notify("slack")])
    await wait_for(lambda: status_of(emulator, "slack-on-failure", namespace).get("watermark"),
                   timeout=TIMEOUT, message="the Automation is watching")
    await finish(name="flaky", fail=True)
    # The run is Failed (finish_run waited for it); the receiver has not accepted yet.
    assert not receiver.ok()
    await wait_for(lambda: len(receiver.ok()) == 1, timeout=TIMEOUT,
                   message="the third attempt is accepted")
    answered = [r.headers["x-answered"] for r in receiver.requests]
    assert answered == ["500", "500", "200"]
    # Slack's incoming-webhook format: a JSON object with `text`.
    assert all("bad" not in r.body.get("text", "") and "flaky" in r.body["text"]
               for r in receiver.requests)
    await wait_for(lambda: status_of(emulator, "slack-on-failure", namespace).get(
        "delivered") == 1, timeout=TIMEOUT, message="the delivery is recorded")
    status = status_of(emulator, "slack-on-failure", namespace)
    assert status["retried"] == 2
    assert status["ledger"][0]["actions"][0]["attempts"] == 3


async def test_recovery_fires_on_completed_after_failed(
        *, operator: OperatorHarness, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        hello_deployment: Any, receiver: Receiver) -> None:
    await hello_deployment()
    await webhook_block(kube, namespace, receiver)
    await automation(kube, namespace, "recovered", trigger={"recovery": {}},
                     actions=[notify()])
    await wait_for(lambda: status_of(emulator, "recovered", namespace).get("watermark"),
                   timeout=TIMEOUT, message="the Automation is watching")
    await finish(name="ok-1", fail=False)
    await asyncio.sleep(1.1)
    await finish(name="broken", fail=True)
    await asyncio.sleep(1.1)
    await finish(name="fixed", fail=False)
    await asyncio.sleep(1.1)
    await finish(name="ok-2", fail=False)
    await wait_for(lambda: status_of(emulator, "recovered", namespace).get("delivered") == 1,
                   timeout=TIMEOUT, message="the recovery is delivered")
    await asyncio.sleep(1.0)
    assert [r.body["subject"] for r in receiver.requests] == ["fixed Completed"]


async def test_freshness_fires_once_per_stale_episode(
        *, operator: OperatorHarness, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        hello_deployment: Any, receiver: Receiver) -> None:
    await hello_deployment()
    await webhook_block(kube, namespace, receiver)
    await automation(kube, namespace, "stale", trigger={"freshness": {
        "deployment": "nightly", "withinSeconds": 3}}, actions=[{"notify": {
            "blockRef": {"name": "hook"},
            "subject": "stale since {{ freshness.stale_since }}",
            "body": "{{ freshness.deployment }}: last {{ freshness.last_success }}"}}])
    await wait_for(lambda: len(receiver.requests) == 1, timeout=TIMEOUT,
                   message="the first stale episode notifies")
    await asyncio.sleep(4.0)  # still stale: the same episode, nothing more
    assert len(receiver.requests) == 1
    assert receiver.requests[0].body["text"] == "nightly: last None"
    await finish(name="fresh", fail=False)
    await wait_for(lambda: len(receiver.requests) == 2, timeout=TIMEOUT,
                   message="a new episode, 3 s after the run completed")
    end = emulator.object("flowruns", "fresh", namespace)["status"]["endTime"]
    assert receiver.requests[1].body["text"] == f"nightly: last {end}"
    await asyncio.sleep(4.0)
    assert len(receiver.requests) == 2
    assert status_of(emulator, "stale", namespace)["delivered"] == 2


async def test_email_through_smtp(
        *, operator: OperatorHarness, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        hello_deployment: Any) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Keep(Message):  # type: ignore[misc]
        def handle_message(self, message: Any) -> None:
            received.append(message)

    port = _free_port()
    smtp = Controller(Keep(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        await hello_deployment()
        await make_block(kube, namespace, "mail", type_=SMTP_TYPE, data={
            "host": "127.0.0.1", "port": port, "security": "none",
            "from_address": "headwater@example.com", "to_addresses": ["oncall@example.com"],
            "timeout_seconds": 3}, secrets={})
        await automation(kube, namespace, "mail-on-failure",
                         trigger={"runPhase": {"phases": ["Failed"]}}, actions=[notify("mail")])
        await wait_for(lambda: status_of(emulator, "mail-on-failure", namespace).get(
            "watermark"), timeout=TIMEOUT, message="the Automation is watching")
        await finish(name="mailed", fail=True)
        await wait_for(lambda: len(received) == 1, timeout=TIMEOUT, message="one email")
        message = received[0]
        assert message["Subject"] == "mailed Failed"
        assert message["To"] == "oncall@example.com"
        assert message["Message-ID"].startswith("<hw-")
    finally:
        smtp.stop()


# --- the operator as a process, killed at the fault points ------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Process:
    emulator: BackgroundEmulator
    namespace: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, fault: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "HEADWATER_AUTOMATION_FAULT"}
        if fault:
            env["HEADWATER_AUTOMATION_FAULT"] = fault
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "headwater_operator", "--namespace", self.namespace,
                 "--kubeconfig", str(self.emulator.kubeconfig_path),
                 "--health-port", str(_free_port()), "--metrics-port", "0"],
                stdout=sink, stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
async def operator_process(emulator: BackgroundEmulator, namespace: str,
                           tmp_path: Path) -> AsyncIterator[Process]:
    process = Process(emulator, namespace, tmp_path / "operator.log")
    try:
        yield process
    finally:
        process.stop()


async def _killed_at(point: str, process: Process, *, kube: kube_module.Kube,
                     finish: Finish, emulator: BackgroundEmulator, namespace: str,
                     wait_for: WaitFor, receiver: Receiver,
                     actions: list[dict[str, Any]]) -> dict[str, Any]:
    await kube.create(kube_module.FLOWS, {
        "apiVersion": API, "kind": "Flow", "metadata": {"name": "hello"},
        "spec": {"image": "example/flow:1", "entrypoint": "flows/hello.py:hello"},
    }, namespace=namespace)
    for name in ("nightly", "cleanup"):
        await kube.create(kube_module.DEPLOYMENTS, {
            "apiVersion": API, "kind": "Deployment", "metadata": {"name": name},
            "spec": {"flowRef": {"name": "hello"}}}, namespace=namespace)
    await webhook_block(kube, namespace, receiver)
    await automation(kube, namespace, "guarded", trigger={"runPhase": {"phases": ["Failed"]}},
                     actions=actions)
    process.start(fault=point)
    await wait_for(lambda: status_of(emulator, "guarded", namespace).get("watermark"),
                   timeout=30, message="the operator process watches the Automation")
    await finish(name="doomed", fail=True)
    assert process.process is not None
    await wait_for(lambda: process.process is not None and process.process.poll() is not None,
                   timeout=TIMEOUT, message=f"the operator exits at {point}")
    assert process.process.returncode == 137, process.log.read_text()[-3000:]
    pending = status_of(emulator, "guarded", namespace)
    assert [a["state"] for a in pending["ledger"][0]["actions"]] == ["Pending"] * len(actions)
    process.start()  # no fault: the restarted operator finishes the job
    await wait_for(lambda: status_of(emulator, "guarded", namespace).get("delivered")
                   == len(actions), timeout=30, message="the restarted operator delivers")
    return pending


async def test_killed_between_intent_and_delivery_delivers_once(
        *, operator_process: Process, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        receiver: Receiver) -> None:
    await _killed_at("after-intent", operator_process, kube=kube, finish=finish,
                     emulator=emulator, namespace=namespace, wait_for=wait_for,
                     receiver=receiver, actions=[notify()])
    await asyncio.sleep(1.0)
    assert len(receiver.requests) == 1
    assert receiver.requests[0].body["subject"] == "doomed Failed"


async def test_killed_between_delivery_and_status_write_redelivers_with_the_same_key(
        *, operator_process: Process, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        receiver: Receiver) -> None:
    await _killed_at("after-delivery", operator_process, kube=kube, finish=finish,
                     emulator=emulator, namespace=namespace, wait_for=wait_for,
                     receiver=receiver, actions=[notify()])
    await asyncio.sleep(1.0)
    # The stated guarantee: at least once, a repeat carries the same idempotency key.
    assert len(receiver.requests) == 2
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert len(keys) == 1
    assert {r.body["key"] for r in receiver.requests} == keys


async def test_run_deployment_creates_exactly_one_run_across_a_restart(
        *, operator_process: Process, kube: kube_module.Kube, finish: Finish,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        receiver: Receiver) -> None:
    await _killed_at("after-delivery", operator_process, kube=kube, finish=finish,
                     emulator=emulator, namespace=namespace, wait_for=wait_for,
                     receiver=receiver, actions=[{"runDeployment": {
                         "name": "cleanup",
                         "parameters": {"failed_run": "{{ run.name }}",
                                        "attempts": "{{ run.attempts }}"}}}])
    runs = [r for r in emulator.objects("flowruns", namespace)
            if r["spec"].get("deploymentRef", {}).get("name") == "cleanup"]
    assert len(runs) == 1
    assert runs[0]["spec"]["parameters"] == {"failed_run": "doomed", "attempts": 1}
    assert runs[0]["metadata"]["annotations"]["headwater.dev/trigger"] == "automation"


async def test_a_late_run_is_cancelled_and_a_failure_pauses_the_deployment(
        *, operator: OperatorHarness, kube: kube_module.Kube, kubelet: Kubelet,
        emulator: BackgroundEmulator, namespace: str, wait_for: WaitFor,
        hello_deployment: Any, finish: Finish) -> None:
    await hello_deployment(lateAfterSeconds=1, concurrency={"limit": 1})
    await automation(kube, namespace, "cancel-late", trigger={"runPhase": {"phases": ["Late"]}},
                     actions=[{"cancelRun": {}}])
    await automation(kube, namespace, "pause-on-failure",
                     trigger={"runPhase": {"phases": ["Failed"]}}, actions=[{"suspend": {}}])
    await wait_for(lambda: status_of(emulator, "pause-on-failure", namespace).get("watermark"),
                   timeout=TIMEOUT, message="the Automations are watching")
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": API, "kind": "FlowRun", "metadata": {"name": "holder"},
        "spec": {"deploymentRef": {"name": "nightly"}}}, namespace=namespace)
    holder = await kubelet.wait_for_pod("holder-1", TIMEOUT)
    await kubelet.schedule(holder)
    await kubelet.run(holder)
    await kube.create(kube_module.FLOWRUNS, {  # waits for the slot, then goes Late
        "apiVersion": API, "kind": "FlowRun", "metadata": {"name": "waiter"},
        "spec": {"deploymentRef": {"name": "nightly"}}}, namespace=namespace)
    await wait_for(lambda: (emulator.object("flowruns", "waiter", namespace) or {}).get(
        "status", {}).get("phase") == "Cancelled", timeout=TIMEOUT,
        message="the late run is cancelled by the automation")
    await wait_for(lambda: status_of(emulator, "cancel-late", namespace).get("delivered") == 1,
                   timeout=TIMEOUT, message="the cancellation is recorded")
    waiter = emulator.object("flowruns", "waiter", namespace)
    assert waiter["spec"]["cancel"] is True
    assert any(c["type"] == "Late" for c in waiter["status"]["conditions"])
    await kubelet.fail(holder, 1, default_summary("Failed", message="boom"))
    await wait_for(lambda: (emulator.object("deployments", "nightly", namespace) or {}).get(
        "spec", {}).get("paused") is True, timeout=TIMEOUT,
        message="the failed run's Deployment is paused")
    assert status_of(emulator, "pause-on-failure", namespace)["ledger"][0]["run"] == "holder"
