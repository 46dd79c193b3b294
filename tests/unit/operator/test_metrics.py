"""The operator's Prometheus metrics: names, labels, exactness of the active-runs gauge.

Counters in :data:`REGISTRY` are process-wide and cumulative, so each test uses its own
namespace label value and asserts on that series only.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from headwater_operator import metrics
from headwater_operator.metrics import REGISTRY
from prometheus_client.parser import text_string_to_metric_families


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture(autouse=True)
def _forget_active_runs() -> Iterator[None]:
    metrics.reset_active_runs()
    yield
    metrics.reset_active_runs()


def test_finished_runs_are_counted_by_namespace_deployment_and_phase() -> None:
    metrics.observe_run_finished("ns-fin", "etl", "Completed", 12.5)
    metrics.observe_run_finished("ns-fin", "etl", "Completed", 30.0)
    metrics.observe_run_finished("ns-fin", "etl", "Failed", 1.0)

    assert sample("headwater_runs_total", namespace="ns-fin", deployment="etl",
                  phase="Completed") == 2
    assert sample("headwater_runs_total", namespace="ns-fin", deployment="etl",
                  phase="Failed") == 1
    assert sample("headwater_run_duration_seconds_count", namespace="ns-fin",
                  deployment="etl") == 3
    assert sample("headwater_run_duration_seconds_sum", namespace="ns-fin",
                  deployment="etl") == 43.5
    assert sample("headwater_run_duration_seconds_bucket", namespace="ns-fin",
                  deployment="etl", le="15.0") == 2


def test_run_without_duration_is_counted_but_not_timed() -> None:
    metrics.observe_run_finished("ns-nodur", "etl", "Cancelled", None)

    assert sample("headwater_runs_total", namespace="ns-nodur", deployment="etl",
                  phase="Cancelled") == 1
    assert sample("headwater_run_duration_seconds_count", namespace="ns-nodur",
                  deployment="etl") == 0


def test_queue_wait_late_crash_reconcile_error_and_api_requests() -> None:
    metrics.observe_queue_wait("ns-misc", "etl", 0.3)
    metrics.observe_queue_wait("ns-misc", "etl", -2.0)  # clock skew: clamp, don't fail
    metrics.observe_late("ns-misc", "etl")
    metrics.observe_crash("ns-misc", "etl", "OOMKilled")
    before_errors = sample("headwater_reconcile_errors_total", kind="TestKind")
    # Real label values only: the registry is process-wide and an api test asserts that
    # every verb it exposes is a Kubernetes verb.
    before_api = sample("headwater_kubernetes_api_requests_total", verb="patch", code="409")
    metrics.observe_reconcile_error("TestKind")
    metrics.observe_api_request("patch", 409)

    assert sample("headwater_run_queue_wait_seconds_count", namespace="ns-misc",
                  deployment="etl") == 2
    assert sample("headwater_run_queue_wait_seconds_bucket", namespace="ns-misc",
                  deployment="etl", le="0.1") == 1
    assert sample("headwater_runs_late_total", namespace="ns-misc", deployment="etl") == 1
    assert sample("headwater_run_crashes_total", namespace="ns-misc", deployment="etl",
                  reason="OOMKilled") == 1
    assert sample("headwater_reconcile_errors_total", kind="TestKind") == before_errors + 1
    assert sample("headwater_kubernetes_api_requests_total", verb="patch",
                  code="409") == before_api + 1


def test_active_runs_gauge_follows_each_run_and_tolerates_replays() -> None:
    metrics.set_run_phase("uid-1", "ns-act", "etl", "Pending")
    metrics.set_run_phase("uid-2", "ns-act", "etl", "Pending")
    metrics.set_run_phase("uid-1", "ns-act", "etl", "Running")
    metrics.set_run_phase("uid-1", "ns-act", "etl", "Running")  # replayed event

    assert sample("headwater_active_runs", namespace="ns-act", phase="Pending") == 1
    assert sample("headwater_active_runs", namespace="ns-act", phase="Running") == 1

    metrics.set_run_phase("uid-1", "ns-act", "etl", "Completed")
    metrics.set_run_phase("uid-2", "ns-act", "etl", None)
    metrics.set_run_phase("uid-2", "ns-act", "etl", None)  # forgetting twice is harmless

    assert sample("headwater_active_runs", namespace="ns-act", phase="Pending") == 0
    assert sample("headwater_active_runs", namespace="ns-act", phase="Running") == 0


def test_run_names_and_uids_never_become_labels() -> None:
    metrics.set_run_phase("uid-secret-123", "ns-card", "etl", "Running")
    metrics.observe_run_finished("ns-card", "etl", "Completed", 1.0)

    for family in REGISTRY.collect():
        for series in family.samples:
            assert "uid-secret-123" not in series.labels.values()
            # Bounded by what users declare and the operator's own controllers: an
            # Automation's deliveries are labelled by the Automation, the action's kind and
            # the outcome; the work queues by controller name; never by a run.
            assert set(series.labels) <= {
                "namespace", "deployment", "phase", "reason", "kind", "verb", "code", "le",
                "automation", "action", "outcome", "controller",
            }


def test_metrics_server_serves_the_registry_over_http() -> None:
    metrics.observe_run_finished("ns-http", "etl", "Completed", 2.0)
    metrics.start_metrics_server(0, addr="127.0.0.1")
    try:
        port = metrics.metrics_server_port()
        assert port is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        metrics.stop_metrics_server()

    runs = {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "headwater_runs"
        for s in family.samples
        if s.name == "headwater_runs_total"
    }
    key = (("deployment", "etl"), ("namespace", "ns-http"), ("phase", "Completed"))
    assert runs[key] == 1
    assert metrics.metrics_server_port() is None


def test_schedule_lag_is_a_histogram_by_namespace_with_subsecond_buckets() -> None:
    metrics.observe_schedule_lag("ns-lag", 0.08)
    metrics.observe_schedule_lag("ns-lag", 3.0)
    metrics.observe_schedule_lag("ns-lag", -0.5)  # clock skew: counted as on time

    assert sample("headwater_schedule_lag_seconds_count", namespace="ns-lag") == 3
    assert sample("headwater_schedule_lag_seconds_bucket", namespace="ns-lag", le="0.1") == 2
    assert sample("headwater_schedule_lag_seconds_bucket", namespace="ns-lag", le="1.0") == 2
    assert sample("headwater_schedule_lag_seconds_sum", namespace="ns-lag") == pytest.approx(3.08)
