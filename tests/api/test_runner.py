"""The kopf operator starts, stops and restarts in-process against the emulator.

A private ``kopf.OperatorRegistry`` with a trivial handler keeps these tests independent
of the real handler modules.
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
from typing import cast

import kopf
import pytest
from headwater_operator import __main__ as entrypoint
from headwater_operator import kube as kube_module
from headwater_operator import runner
from headwater_operator.devcluster.emulator import BackgroundEmulator
from headwater_operator.devcluster.harness import OperatorHarness, wait_for
from headwater_operator.devcluster.resources import headwater_crds


def _registry(calls: list[str]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.create("headwater.dev", "v1alpha1", "flows", registry=registry, id="record")
    async def record(name: str, patch: kopf.Patch, **_: object) -> None:
        calls.append(name)
        patch.status["observedGeneration"] = 1

    return registry


async def _flow(kube: kube_module.Kube, name: str) -> None:
    await kube.create(kube_module.FLOWS, {
        "metadata": {"name": name},
        "spec": {"image": "example/flow:1", "entrypoint": "flows.hello:hello"}},
        namespace="default")


def _seen(emulator: BackgroundEmulator, name: str) -> bool:
    flow = emulator.object("flows", name) or {}
    return bool((flow.get("status") or {}).get("observedGeneration"))


async def test_operator_handles_an_object_and_stops_cleanly(
    emulator: BackgroundEmulator, kube: kube_module.Kube
) -> None:
    calls: list[str] = []
    harness = OperatorHarness(registry=_registry(calls))
    await harness.start()
    await _flow(kube, "hello")
    await wait_for(lambda: _seen(emulator, "hello"), timeout=10)
    await harness.stop()
    assert calls == ["hello"]
    assert not harness.running
    flow = emulator.object("flows", "hello") or {}
    annotations = flow["metadata"].get("annotations") or {}
    # Our conventions: our finalizer is not added for a create-only handler, progress and
    # the last-handled configuration live under our annotation prefix.
    assert "headwater.dev/last-handled-configuration" in annotations
    assert not any(key.startswith("kopf.zalando.org") for key in annotations)


async def test_restart_replays_the_watch_without_rerunning_succeeded_handlers(
    emulator: BackgroundEmulator, kube: kube_module.Kube
) -> None:
    calls: list[str] = []
    harness = OperatorHarness(registry=_registry(calls))
    await harness.start()
    await _flow(kube, "first")
    await wait_for(lambda: _seen(emulator, "first"), timeout=10)
    await harness.restart()
    await _flow(kube, "second")
    await wait_for(lambda: _seen(emulator, "second"), timeout=10)
    await harness.stop()
    # The restarted operator listed "first" again but did not handle it a second time.
    assert calls == ["first", "second"]
    assert harness.starts == 2
    relists = emulator.requests.count(verb="list", resource="flows")
    assert relists >= 2


def test_build_settings_applies_headwater_conventions() -> None:
    settings = runner.build_settings(kopf.OperatorSettings(), namespaced=True, standalone=True)
    assert settings.persistence.finalizer == "headwater.dev/finalizer"
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert settings.persistence.progress_storage.prefix == "headwater.dev"
    assert settings.scanning.disabled is True
    assert settings.peering.standalone is True
    assert settings.peering.name == "headwater"
    assert settings.posting.level == logging.WARNING
    assert settings.watching.server_timeout is not None
    assert settings.watching.client_timeout is not None
    assert settings.watching.connect_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout
    assert list(settings.watching.label_selectors.values()) == [
        "app.kubernetes.io/managed-by=headwater"]


def test_build_settings_clusterwide_keeps_scanning() -> None:
    settings = runner.build_settings(kopf.OperatorSettings(), namespaced=False, standalone=False)
    assert settings.scanning.disabled is False
    assert settings.peering.standalone is False


async def test_run_operator_rejects_ambiguous_scope() -> None:
    with pytest.raises(ValueError, match="clusterwide=True or with namespaces"):
        await runner.run_operator(namespaces=["default"], clusterwide=True,
                                  registry=kopf.OperatorRegistry())
    with pytest.raises(ValueError, match="not both or neither"):
        await runner.run_operator(registry=kopf.OperatorRegistry())


def test_main_passes_the_chart_flags_to_the_operator(
    emulator: BackgroundEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    async def fake_run_operator(**kwargs: object) -> None:
        seen.update(kwargs)

    monkeypatch.setattr(runner, "run_operator", fake_run_operator)
    # Not in the test process: freezing would keep its later cyclic garbage forever.
    monkeypatch.setattr(runner, "freeze_startup_objects", lambda: seen.update(frozen=True))
    assert entrypoint.main([
        "--namespace", "a", "--namespace", "b", "--peering", "headwater",
        "--health-port", "9001", "--metrics-port", "9002",
        "--kubeconfig", str(emulator.kubeconfig_path)]) == 0
    assert seen["namespaces"] == ["a", "b"]
    assert seen["clusterwide"] is False
    assert seen["peering"] == "headwater"
    assert seen["standalone"] is False
    assert seen["health_port"] == 9001
    assert seen["metrics_port"] == 9002
    assert seen["frozen"] is True
    assert seen["config_error_grace_seconds"] == 60  # the default grace for missing Secrets
    assert entrypoint.main(["-n", "a", "--config-error-grace-seconds", "120",
                            "--kubeconfig", str(emulator.kubeconfig_path)]) == 0
    assert seen["config_error_grace_seconds"] == 120


@pytest.mark.parametrize(("argv", "message"), [
    ([], "--namespace NS (repeatable) or --all-namespaces"),
    (["-A", "-n", "x"], "either --all-namespaces or --namespace"),
    (["-A", "--peering", "p", "--standalone"], "either --peering NAME"),
    (["-A", "--config-error-grace-seconds", "-1"], "--config-error-grace-seconds must be 0"),
])
def test_main_rejects_contradictory_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        entrypoint.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


async def test_stopping_leaves_tasks_that_are_not_the_operators_alone(
    emulator: BackgroundEmulator,
) -> None:
    # pytest-asyncio starts fixtures and runs tests in different tasks; kopf alone would
    # treat those as its own "hung" tasks and cancel them when it stops.
    harness = OperatorHarness(registry=_registry([]))
    await asyncio.create_task(harness.start())
    bystander = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.create_task(harness.stop())
    assert not bystander.cancelled()
    assert not bystander.done()
    bystander.cancel()


async def test_operator_receives_only_headwater_pods(
    emulator: BackgroundEmulator, kube: kube_module.Kube,
) -> None:
    seen: list[str] = []
    registry = kopf.OperatorRegistry()

    @kopf.on.event("v1", "pods", registry=registry)
    async def pod_event(name: str, **_: object) -> None:
        seen.append(name)

    def pod(name: str, labels: dict[str, str]) -> dict[str, object]:
        return {"metadata": {"name": name, "labels": labels},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}

    harness = OperatorHarness(registry=registry)
    await kube.create(kube_module.PODS, pod("unrelated-before", {"app": "web"}),
                      namespace="default")
    await harness.start()
    await kube.create(kube_module.PODS, pod("unrelated-after", {}), namespace="default")
    await kube.create(kube_module.PODS, pod(
        "ours", {"app.kubernetes.io/managed-by": "headwater"}), namespace="default")
    await wait_for(lambda: "ours" in seen, timeout=10)
    await harness.stop()
    assert set(seen) == {"ours"}
    watches = [r for r in emulator.requests.records if r.verb == "watch"
               and r.resource == "pods"]
    assert watches  # kopf watched pods, and the server filtered them by label


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


def test_diff_base_is_kept_only_where_a_change_handler_needs_it() -> None:
    events_only = kopf.OperatorRegistry()
    kopf.on.event("headwater.dev", "v1alpha1", "schedules", registry=events_only)(
        _noop_handler)
    kopf.daemon("headwater.dev", "v1alpha1", "schedules", registry=events_only)(
        _noop_handler)
    kopf.index("headwater.dev", "v1alpha1", "flowruns", registry=events_only)(
        _noop_handler)
    assert runner.has_change_handlers(events_only) is False
    # _registry has an on.create handler: it reads the diff-base (see the test above
    # that finds headwater.dev/last-handled-configuration written).
    assert runner.has_change_handlers(_registry([])) is True


def test_empty_diff_base_reports_no_change_for_any_edit() -> None:
    storage = runner.NoDiffBaseStorage()
    body = kopf.Body(cast(kopf.RawBody, {"metadata": {"name": "s", "generation": 2},
                                         "spec": {"interval": "5s"}, "status": {}}))
    old, new = storage.fetch(body=body), storage.build(body=body, extra_fields=["status"])
    # Equal and empty: kopf's diff of the two is empty, so no event counts as a change.
    assert old is not None
    assert dict(old) == dict(new) == {}
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=new)
    assert not patch  # nothing is written to the object


async def _noop_handler(**_: object) -> None:
    return None


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
    # crds.install=false or a GitOps wave: the CRDs come after the operator. In namespaced
    # mode kopf resolves its resources once, so the operator must not start before them.
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
                                         "schedules.headwater.dev, flowruns.headwater.dev: "
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
