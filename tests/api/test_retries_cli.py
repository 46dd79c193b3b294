"""The CLI through a failing API server: ``headwater run`` retries what is safe to repeat
and nothing else, and a named run whose create answer was lost is still reported created.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from headwater.cli import build_parser
from headwater_dev import faults
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.faults import FaultPlan
from headwater_operator import kube as kube_module
from headwater_operator.cli.common import Io


def headwater(*argv: str) -> tuple[int, str, str]:
    """Run ``headwater <argv>`` in this thread: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(list(argv))
    args.io = Io(out=out, err=err, now=lambda: datetime.now(UTC))
    return args.func(args), out.getvalue(), err.getvalue()


@pytest.fixture
def nightly(emulator: BackgroundEmulator, namespace: str) -> FaultPlan:
    """Flow ``etl`` and Deployment ``nightly``; returns the emulator's (empty) fault plan."""
    client = kube_module.get_blocking_client()
    client.create(kube_module.FLOWS, {"metadata": {"name": "etl"}, "spec": {
        "image": "ghcr.io/acme/etl:1", "entrypoint": "etl.flows:ingest"}}, namespace=namespace)
    client.create(kube_module.DEPLOYMENTS, {"metadata": {"name": "nightly"}, "spec": {
        "flowRef": {"name": "etl"}}}, namespace=namespace)
    return emulator.install_faults(FaultPlan())


def _creates(emulator: BackgroundEmulator) -> list[int]:
    return [r.code for r in emulator.requests.records
            if r.verb == "create" and r.resource == "flowruns"]


def test_run_reads_through_a_busy_server_and_a_lost_answer_is_its_own_run(
    emulator: BackgroundEmulator, nightly: FaultPlan,
) -> None:
    nightly.add(faults.internal_error(), verb="get", resource="deployments")
    nightly.add(faults.throttled(retry_after=1), verb="get", resource="flows")
    nightly.add(faults.Reset(after_serving=True), verb="create", resource="flowruns")
    code, out, err = headwater("run", "nightly", "--name", "adhoc-1")
    assert (code, err) == (0, "")
    assert out == "flowrun/adhoc-1 created\n"
    assert _creates(emulator) == [0, 409]
    assert [run["metadata"]["name"] for run in emulator.objects("flowruns")] == ["adhoc-1"]


def test_run_still_refuses_a_name_someone_else_took(
    emulator: BackgroundEmulator, nightly: FaultPlan, namespace: str,
) -> None:
    kube_module.get_blocking_client().create(kube_module.FLOWRUNS, {
        "metadata": {"name": "adhoc-1"},
        "spec": {"deploymentRef": {"name": "nightly"}, "parameters": {"other": 1}}},
        namespace=namespace)
    nightly.add(faults.Reset(after_serving=True), verb="create", resource="flowruns")
    code, _, err = headwater("run", "nightly", "--name", "adhoc-1")
    assert code != 0
    assert "FlowRun default/adhoc-1 already exists; choose another --name" in err


def test_run_with_a_generated_name_is_repeated_after_a_429_never_after_a_5xx(
    emulator: BackgroundEmulator, nightly: FaultPlan,
) -> None:
    # A 429 is answered before the server does anything: sending it again is safe.
    nightly.add(faults.throttled(retry_after=1), verb="create", resource="flowruns")
    code, out, _ = headwater("run", "nightly")
    assert code == 0
    assert out.startswith("flowrun/nightly-")
    assert _creates(emulator) == [429, 201]
    # A 503 may come after the run was made: a second create would make a second run.
    nightly.add(faults.service_unavailable(), verb="create", resource="flowruns")
    code, _, err = headwater("run", "nightly")
    assert code != 0
    assert "apiserver is shutting down" in err
    assert _creates(emulator) == [429, 201, 503]
    assert len(emulator.objects("flowruns")) == 1
