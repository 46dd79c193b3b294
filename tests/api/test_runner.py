"""The operator process: starts, stops and restarts in-process and as ``python -m``.

kopf runs the process (start-up, clean-up, signals, login); the controllers watch and
write. These tests check the process around the controllers: its flags, its conventions,
its stopping, and that it watches only what it should.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import kopf
import pytest
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness, wait_for
from headwater_dev.resources import headwater_crds
from headwater_operator import __main__ as entrypoint
from headwater_operator import kube as kube_module
from headwater_operator import runner
from headwater_operator.leader import Timing


async def _flow(kube: kube_module.Kube, name: str) -> None:
    await kube.create(kube_module.FLOWS, {
        "metadata": {"name": name},
        "spec": {"image": "example/flow:1", "entrypoint": "flows.hello:hello"}},
        namespace="default")


def _ready(emulator: BackgroundEmulator, name: str) -> bool:
    flow = emulator.object("flows", name) or {}
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in (flow.get("status") or {}).get("conditions") or ())


async def test_operator_handles_an_object_and_stops_cleanly(
    emulator: BackgroundEmulator, kube: kube_module.Kube
) -> None:
    harness = OperatorHarness()
    await harness.start()
    await _flow(kube, "hello")
    await wait_for(lambda: _ready(emulator, "hello"), timeout=10)
    await harness.stop()
    assert not harness.running
    flow = emulator.object("flows", "hello") or {}
    # The operator writes a Flow's status only: no finalizer, no annotation of its own or
    # kopf's (GitOps tools see no drift, deleting never waits for the operator).
    assert not flow["metadata"].get("finalizers")
    assert not flow["metadata"].get("annotations")


async def test_restart_lists_everything_again_and_writes_nothing_it_wrote_before(
    emulator: BackgroundEmulator, kube: kube_module.Kube
) -> None:
    harness = OperatorHarness()
    await harness.start()
    await _flow(kube, "first")
    await wait_for(lambda: _ready(emulator, "first"), timeout=10)
    mark = emulator.requests.mark()
    await harness.restart()
    await _flow(kube, "second")
    await wait_for(lambda: _ready(emulator, "second"), timeout=10)
    await harness.stop()
    assert harness.starts == 2
    served = emulator.requests.counter(mark)
    # One LIST per kind per start (shared informers: no kind is listed twice), and the
    # restarted operator found "first" as it had left it: one status write, for "second".
    assert served[("list", "flows", 200)] == 1
    assert served[("list", "flowruns", 200)] == 1
    assert served[("patch", "flows/status", 200)] == 1


def test_build_settings_applies_headwater_conventions() -> None:
    settings = runner.build_settings(kopf.OperatorSettings())
    assert settings.posting.level == logging.WARNING
    assert settings.posting.reporting_component == "headwater-operator"
    assert settings.scanning.disabled is True  # kopf watches nothing: nothing to scan
    assert settings.peering.standalone is True  # no kopf peering: a Lease elects the leader


async def test_run_operator_rejects_ambiguous_scope() -> None:
    with pytest.raises(ValueError, match="clusterwide=True or with namespaces"):
        await runner.run_operator(namespaces=["default"], clusterwide=True)
    with pytest.raises(ValueError, match="not both or neither"):
        await runner.run_operator()


def test_main_passes_the_chart_flags_to_the_operator(
    emulator: BackgroundEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    async def fake_run_operator(**kwargs: object) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(runner, "run_operator", fake_run_operator)
    # Not in the test process: freezing would keep its later cyclic garbage forever.
    monkeypatch.setattr(runner, "freeze_startup_objects", lambda: seen.update(frozen=True))
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    assert entrypoint.main([
        "--namespace", "a", "--namespace", "b", "--leader-elect",
        "--leader-elect-resource-name", "hw", "--leader-elect-resource-namespace", "ops",
        "--leader-elect-lease-duration", "20s", "--leader-elect-renew-deadline", "15s",
        "--leader-elect-retry-period", "2s",
        "--health-port", "9001", "--metrics-port", "9002",
        "--kubeconfig", str(emulator.kubeconfig_path)]) == 0
    assert seen["namespaces"] == ["a", "b"]
    assert seen["clusterwide"] is False
    assert seen["leader_election"] == runner.LeaderElectionConfig(
        namespace="ops", name="hw", timing=Timing(20, 15, 2))
    assert seen["health_port"] == 9001
    assert seen["metrics_port"] == 9002
    assert seen["frozen"] is True
    assert seen["config_error_grace_seconds"] == 60  # the default grace for missing Secrets
    assert seen["run_store"] is None  # no default run store unless one is given
    assert set(seen["controllers"]) == {"flowruns", "schedules", "deployments", "flows",
                                        "triggers", "automations"}
    assert entrypoint.main(["-n", "a", "--config-error-grace-seconds", "120",
                            "--run-store", "s3://acme-runs/headwater",
                            "--kubeconfig", str(emulator.kubeconfig_path)]) == 0
    assert seen["config_error_grace_seconds"] == 120
    assert seen["run_store"] == "s3://acme-runs/headwater"
    assert seen["leader_election"] is None  # python -m without --leader-elect: it leads
    # The Lease's namespace defaults to the pod's (the chart sets POD_NAMESPACE), else
    # the first watched one; durations take Go's forms.
    monkeypatch.setenv("POD_NAMESPACE", "headwater-system")
    assert entrypoint.main(["-A", "--leader-elect", "--leader-elect-lease-duration", "1m",
                            "--kubeconfig", str(emulator.kubeconfig_path)]) == 0
    assert seen["leader_election"] == runner.LeaderElectionConfig(
        namespace="headwater-system", timing=Timing(60, 10, 2))


@pytest.mark.parametrize(("argv", "message"), [
    ([], "--namespace NS (repeatable) or --all-namespaces"),
    (["-A", "-n", "x"], "either --all-namespaces or --namespace"),
    (["-A", "--config-error-grace-seconds", "-1"], "--config-error-grace-seconds must be 0"),
    (["-A", "--run-store", " "], "--run-store needs a path or fsspec URL"),
    (["-n", "x", "--leader-elect", "--leader-elect-renew-deadline", "15s"],
     "the lease duration (15s) must be greater than the renew deadline (15s)"),
    (["-n", "x", "--leader-elect", "--leader-elect-retry-period", "9s"],
     "the renew deadline (10s) must be greater than 1.2 × the retry period (9s)"),
    (["-A", "--leader-elect"], "--leader-elect needs the Lease's namespace"),
    (["-n", "x", "--leader-elect", "--leader-elect-lease-duration", "15 seconds"],
     "'15 seconds' is not a duration; write e.g. 15s, 1m or 1m30s"),
    (["-n", "x", "--controllers", "flowruns,cronjobs"], "--controllers: unknown cronjobs"),
])
def test_main_rejects_contradictory_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    with pytest.raises(SystemExit) as exc:
        entrypoint.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


async def test_stopping_leaves_tasks_that_are_not_the_operators_alone(
    emulator: BackgroundEmulator,
) -> None:
    # pytest-asyncio starts fixtures and runs tests in different tasks; kopf alone would
    # treat those as its own "hung" tasks and cancel them when it stops.
    harness = OperatorHarness()
    await asyncio.create_task(harness.start())
    bystander = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.create_task(harness.stop())
    assert not bystander.cancelled()
    assert not bystander.done()
    bystander.cancel()


async def test_operator_watches_only_headwater_pods_and_each_kind_once(
    emulator: BackgroundEmulator, kube: kube_module.Kube,
) -> None:
    harness = OperatorHarness()
    mark = emulator.requests.mark()
    await harness.start()
    await harness.stop()
    records = [record for record in emulator.requests.records[mark:]
               if record.verb in ("list", "watch")]
    pods = [record for record in records if record.resource == "pods"]
    assert pods  # pods are watched, and the server filters them by label:
    assert all(record.label_selector == "app.kubernetes.io/managed-by=headwater"
               for record in pods)
    listed = sorted(record.resource for record in records if record.verb == "list")
    assert listed == ["automations", "blocks", "deployments", "flowruns", "flows", "pods",
                      "schedules", "secrets", "variables"]
    # Secrets are listed and watched as metadata only: their data never reaches it.
    secrets = [record for record in records if record.resource == "secrets"]
    assert secrets
    assert all("as=PartialObjectMetadata" in record.accept for record in secrets)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_operator_process_serves_health_and_metrics_and_stops_on_sigterm(
    emulator: BackgroundEmulator,
) -> None:
    health, metrics = _free_port(), _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "headwater_operator", "--namespace", "default",
         "--kubeconfig", str(emulator.kubeconfig_path), "--health-port", str(health),
         "--metrics-port", str(metrics), "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz",
                                            timeout=1) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.communicate()[0].decode()[-2000:]
                assert time.monotonic() < deadline, "not ready (/readyz) within 60s"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as page:
            assert b"# TYPE" in page.read()
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any("SIGTERM" in line["message"] for line in lines)  # --log-format json


@pytest.mark.parametrize("signals", [
    (signal.SIGTERM, signal.SIGINT),  # the kubelet's, then a Ctrl-C (run locally)
    (signal.SIGINT, signal.SIGTERM),
])
def test_operator_process_stops_once_on_repeated_signals_without_a_traceback(
    emulator: BackgroundEmulator, signals: tuple[signal.Signals, signal.Signals],
) -> None:
    # kopf's own handler resolved its stop future again on the second signal: an
    # InvalidStateError traceback from the event loop.
    health = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "headwater_operator", "--namespace", "default",
         "--kubeconfig", str(emulator.kubeconfig_path), "--health-port", str(health),
         "--metrics-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.communicate()[0].decode()[-2000:]
                assert time.monotonic() < deadline, "not ready (/readyz) within 60s"
                time.sleep(0.1)
        started = time.monotonic()
        # At once: the operator stops in a fraction of a second. Two different signals,
        # since a second one of the same kind would merge with the first while pending.
        process.send_signal(signals[0])
        process.send_signal(signals[1])
        output = process.communicate(timeout=30)[0].decode()
        took = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    # Pending signals reach the process in the kernel's order, not the sending order:
    # one stops the operator (kopf says which), the other is only noted.
    names = {sig.name for sig in signals}
    assert sum(f"Signal {name} is received" in output for name in names) == 1, output[-3000:]
    assert sum(f"{name} received while the operator is stopping" in output
               for name in names) == 1, output[-3000:]
    assert took < 10, f"took {took:.1f}s to stop"


def _probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError:
        return 0, ""  # not listening yet


async def test_the_operator_waits_unready_until_its_crds_are_served_then_serves_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # crds.install=false or a GitOps wave: the CRDs come after the operator, which waits
    # for them (alive, not ready) instead of failing its watches.
    crds = kube_module.Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                namespaced=False, kind="CustomResourceDefinition")
    with BackgroundEmulator(crds=[]) as api:
        monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig_path))
        kube_module.configure(str(api.kubeconfig_path))
        kube = kube_module.get_client()
        port = _free_port()
        harness = OperatorHarness(namespaces=["default"], health_port=port,
                                  crd_poll_seconds=0.1, startup_timeout=30)
        starting = asyncio.create_task(harness.start())
        try:
            async def refused_readiness() -> bool:
                # In a thread: the probe server runs on this very loop.
                return (await asyncio.to_thread(_probe, port, "/readyz"))[0] == 503

            await wait_for(refused_readiness, timeout=10)
            code, text = await asyncio.to_thread(_probe, port, "/readyz")
            assert (code, text) == (503, "not ready: the API server does not serve "
                                         "flows.headwater.dev, deployments.headwater.dev, "
                                         "schedules.headwater.dev, flowruns.headwater.dev, "
                                         "blocks.headwater.dev, variables.headwater.dev, "
                                         "concurrencylimits.headwater.dev, "
                                         "automations.headwater.dev: "
                                         "install the CRDs (kubectl apply -f crds/, or the "
                                         "chart with crds.install=true); the operator starts "
                                         "once they are served")
            assert (await asyncio.to_thread(_probe, port, "/healthz"))[0] == 200
            await asyncio.sleep(0.5)
            assert not starting.done()
            for crd in headwater_crds():
                await kube.create(crds, crd)
            await starting
            assert (await asyncio.to_thread(_probe, port, "/readyz")) == (200, "ok")
            await _flow(kube, "after-crds")
            await wait_for(lambda: ((api.object("flows", "after-crds") or {}).get("status")
                                    or {}).get("conditions"), timeout=10)
        finally:
            starting.cancel()
            await harness.stop()
            kube_module.close()
