"""Prometheus metrics of the operator, served on ``/metrics``.

Every series lives in this module's own :data:`REGISTRY` rather than prometheus-client's
global one, so tests read exact values without interference from other tests or from
whatever else registered globally in the process; :func:`start_metrics_server` serves
exactly this registry.

Labels are deliberately low-cardinality: namespace, deployment name, phase, reason,
HTTP verb and code. A run's name or uid is never a label — one series per run would grow
the operator's memory and the Prometheus server's without bound. Where a per-run fact is
needed (which phase is each run in?) it is kept in a small in-memory index here and only
aggregated counts are exported.

The callers are the controllers, through their observer: the runner hands them this
module as their :class:`~headwater_operator.controllers.signals.Observer`, so they never
import it (it is the application's). The FlowRun controller calls ``observe_*`` and
:func:`set_run_phase` on transitions, each exactly once per transition (its status
patch is conditional on the resourceVersion it decided from, see
``controllers/flowruns.py``); :func:`observe_api_request` is called for every request to
the Kubernetes API, both ours (``kube.py``) and kopf's (Events: the session
``runner.login`` gives kopf traces them). The work queues are read at scrape time;
:func:`observe_api_retry` counts every retry of ours (``kube.add_retry_observer``).
"""

from __future__ import annotations

import threading
from collections import Counter as _Tally
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.runtime import Controller

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry every Headwater metric is registered in (and the one ``/metrics`` serves)."""

NO_DEPLOYMENT = ""
"""Label value for runs created from a ``flowRef`` without a Deployment."""

# Flow runs range from seconds to many hours; buckets up to 1 day.
RUN_DURATION_BUCKETS = (
    1, 5, 15, 30, 60, 120, 300, 600, 1_800, 3_600, 7_200, 14_400, 43_200, 86_400,
)
# Queue wait is admission latency: usually sub-second, minutes when enqueued.
QUEUE_WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3_600)

# Schedule lag is the scheduler's precision: tick → FlowRun created. Sub-second normally;
# the tail buckets catch an overloaded operator or catch-up after downtime.
SCHEDULE_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3_600)

RUNS_TOTAL = Counter(
    "headwater_runs",
    "Flow runs that reached a final phase, by namespace, deployment and phase.",
    ["namespace", "deployment", "phase"],
    registry=REGISTRY,
)
RUN_DURATION = Histogram(
    "headwater_run_duration_seconds",
    "Wall-clock duration of finished flow runs (first start to end), in seconds.",
    ["namespace", "deployment"],
    buckets=RUN_DURATION_BUCKETS,
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "headwater_run_queue_wait_seconds",
    "Time from a run's scheduled time to its first pod being created, in seconds.",
    ["namespace", "deployment"],
    buckets=QUEUE_WAIT_BUCKETS,
    registry=REGISTRY,
)
CRASHES_TOTAL = Counter(
    "headwater_run_crashes",
    "Flow-run attempts that crashed (infrastructure failures), by reason.",
    ["namespace", "deployment", "reason"],
    registry=REGISTRY,
)
LATE_TOTAL = Counter(
    "headwater_runs_late",
    "Flow runs marked Late: their scheduled time passed before they started.",
    ["namespace", "deployment"],
    registry=REGISTRY,
)
ACTIVE_RUNS = Gauge(
    "headwater_active_runs",
    "Flow runs that have not finished, by namespace and current phase.",
    ["namespace", "phase"],
    registry=REGISTRY,
)
RECONCILE_ERRORS_TOTAL = Counter(
    "headwater_reconcile_errors",
    "Reconcile handler failures (retried by the operator), by resource kind.",
    ["kind"],
    registry=REGISTRY,
)
SCHEDULE_LAG = Histogram(
    "headwater_schedule_lag_seconds",
    "Time from a Schedule's tick to the creation of its FlowRun, in seconds.",
    ["namespace"],
    buckets=SCHEDULE_LAG_BUCKETS,
    registry=REGISTRY,
)
LEADER = Gauge(
    "headwater_leader",
    "1 while this operator process holds the leader Lease and runs the controllers "
    "(always 1 without leader election); 0 on a standby.",
    registry=REGISTRY,
)
API_REQUESTS_TOTAL = Counter(
    "headwater_kubernetes_api_requests",
    "Requests the operator (its client and kopf's) made to the Kubernetes API, by verb "
    "and HTTP status code (0: no response).",
    ["verb", "code"],
    registry=REGISTRY,
)
API_RETRIES_TOTAL = Counter(
    "headwater_kubernetes_api_retries",
    "Requests Headwater's client sent again after a 429, a 5xx or a lost connection, by "
    "verb and reason (TooManyRequests, InternalError, BadGateway, ServiceUnavailable, "
    "Timeout, ConnectionFailed); kopf's own retries are not counted.",
    ["verb", "reason"],
    registry=REGISTRY,
)

AUTOMATION_DELIVERIES_TOTAL = Counter(
    "headwater_automation_deliveries_total",
    "Automation action attempts by outcome: Delivered, Retrying (an attempt failed and is "
    "retried), Failed (given up). Labelled namespace/automation.",
    ["automation", "action", "outcome"],
    registry=REGISTRY,
)
AUTOMATION_DELIVERY_LATENCY = Histogram(
    "headwater_automation_delivery_latency_seconds",
    "Seconds from a transition (a run's endTime, Late time, or a freshness deadline) to "
    "its action's delivery being recorded, by action.",
    ["action"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)


def observe_automation_delivery(namespace: str, automation: str, action: str, outcome: str,
                                latency_seconds: float | None) -> None:
    """Count one automation action attempt's ``outcome``; a delivery's latency."""
    AUTOMATION_DELIVERIES_TOTAL.labels(automation=f"{namespace}/{automation}", action=action,
                                       outcome=outcome).inc()
    if latency_seconds is not None:
        AUTOMATION_DELIVERY_LATENCY.labels(action=action).observe(max(0.0, latency_seconds))



def observe_run_finished(
    namespace: str, deployment: str, phase: str, duration_seconds: float | None
) -> None:
    """Count a run that reached final ``phase``; record its duration when it has one.

    Call once per run, on the transition into the final phase (a run cancelled before it
    started has no duration).
    """
    RUNS_TOTAL.labels(namespace=namespace, deployment=deployment, phase=phase).inc()
    if duration_seconds is not None:
        RUN_DURATION.labels(namespace=namespace, deployment=deployment).observe(
            max(0.0, duration_seconds)
        )


def observe_queue_wait(namespace: str, deployment: str, seconds: float) -> None:
    """Record the wait from scheduled time to first pod creation (negative → 0)."""
    QUEUE_WAIT.labels(namespace=namespace, deployment=deployment).observe(max(0.0, seconds))


def observe_crash(namespace: str, deployment: str, reason: str) -> None:
    """Count one crashed attempt; ``reason`` is a CamelCase constant, e.g. ``OOMKilled``."""
    CRASHES_TOTAL.labels(namespace=namespace, deployment=deployment, reason=reason).inc()


def observe_late(namespace: str, deployment: str) -> None:
    """Count a run that was marked Late (call once per run, on that transition)."""
    LATE_TOTAL.labels(namespace=namespace, deployment=deployment).inc()


def observe_schedule_lag(namespace: str, seconds: float) -> None:
    """Record how late the scheduler created a tick's FlowRun (negative → 0).

    Labelled by namespace only: Schedule names are unbounded in number, so they are not
    labels (per-Schedule lateness shows in its status and Events).
    """
    SCHEDULE_LAG.labels(namespace=namespace).observe(max(0.0, seconds))


def observe_reconcile_error(kind: str) -> None:
    """Count a failed reconcile of a ``kind`` such as ``FlowRun`` or ``Deployment``."""
    RECONCILE_ERRORS_TOTAL.labels(kind=kind).inc()


def observe_api_request(verb: str, code: int) -> None:
    """Count one Kubernetes API request (``verb`` e.g. ``patch``; ``code`` the HTTP status)."""
    API_REQUESTS_TOTAL.labels(verb=verb, code=str(code)).inc()


def observe_api_retry(verb: str, reason: str) -> None:
    """Count one retry of a Kubernetes API request (``reason`` e.g. ``TooManyRequests``)."""
    API_RETRIES_TOTAL.labels(verb=verb, reason=reason).inc()


@dataclass(frozen=True)
class _RunPlace:
    namespace: str
    phase: str


class _ActiveRunIndex:
    """Which phase each unfinished run is in, so ``headwater_active_runs`` is exact.

    A gauge updated with inc/dec drifts as soon as one transition is observed twice
    (a replayed watch event, an operator restart). Keeping the per-run phase, and the
    count per (namespace, phase) moved only when a run's place changes, makes repeated
    calls harmless; each call costs the same however many runs are active.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, _RunPlace] = {}
        self._tally: _Tally[_RunPlace] = _Tally()

    def set(self, uid: str, namespace: str, phase: str | None) -> None:
        with self._lock:
            before = self._runs.pop(uid, None)
            after = _RunPlace(namespace, phase) if phase is not None else None
            if after is not None:
                self._runs[uid] = after
            if before == after:
                return
            for place, change in ((before, -1), (after, 1)):
                if place is None:
                    continue
                self._tally[place] += change
                ACTIVE_RUNS.labels(namespace=place.namespace, phase=place.phase).set(
                    self._tally[place])
                if not self._tally[place]:
                    del self._tally[place]

    def clear(self) -> None:
        with self._lock:
            self._runs.clear()
            self._tally.clear()
            ACTIVE_RUNS.clear()


_ACTIVE = _ActiveRunIndex()


def set_run_phase(uid: str, namespace: str, deployment: str, phase: str | None) -> None:
    """Record that run ``uid`` is now in ``phase``; ``None`` (or a final phase) forgets it.

    Idempotent: calling it again with the same phase changes nothing. ``deployment`` is
    accepted for symmetry with the other calls but not used as a label: the gauge is
    by namespace and phase only, to stay small.
    """
    del deployment  # not a label of this gauge; see docstring
    if phase in TERMINAL_PHASES:
        phase = None
    _ACTIVE.set(uid, namespace, phase)




def reset_active_runs() -> None:
    """Forget every tracked run (for tests and operator restarts within one process)."""
    _ACTIVE.clear()


def set_leader(leading: bool) -> None:
    """Record whether this process leads (runs the controllers) or stands by."""
    LEADER.set(1 if leading else 0)


class _QueueCollector(Collector):
    """The controllers' work queues, read at scrape time (no bookkeeping per wake-up).

    ``headwater_workqueue_depth``: keys waiting for a worker (a queue that only grows
    means the operator cannot keep up); ``headwater_workqueue_busy``: keys being
    reconciled; ``headwater_reconciles_total`` and ``headwater_reconcile_seconds_total``
    per controller (their ratio is the mean reconcile time).
    """

    def __init__(self) -> None:
        self.queues: list[Controller[Any]] = []

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        depth = GaugeMetricFamily("headwater_workqueue_depth",
                                  "Keys waiting for a worker, by controller.",
                                  labels=["controller"])
        busy = GaugeMetricFamily("headwater_workqueue_busy",
                                 "Keys being reconciled now, by controller.",
                                 labels=["controller"])
        runs = CounterMetricFamily("headwater_reconciles",
                                   "Reconciles done (including failed ones), by controller.",
                                   labels=["controller"])
        seconds = CounterMetricFamily("headwater_reconcile_seconds",
                                      "Seconds spent reconciling, by controller.",
                                      labels=["controller"])
        for queue in self.queues:
            depth.add_metric([queue.name], queue.depth)
            busy.add_metric([queue.name], queue.busy)
            runs.add_metric([queue.name], queue.stats.reconciles)
            seconds.add_metric([queue.name], queue.stats.seconds)
        yield from (depth, busy, runs, seconds)


_QUEUES = _QueueCollector()
REGISTRY.register(_QUEUES)


def watch_queues(queues: list[Controller[Any]]) -> None:
    """Export these work queues (the running manager's) from now on."""
    _QUEUES.queues = list(queues)


def start_metrics_server(port: int, addr: str = "0.0.0.0") -> None:
    """Serve :data:`REGISTRY` as ``http://addr:port/metrics`` from a daemon thread.

    Binding all interfaces is the default because Prometheus scrapes the pod IP.
    ``port=0`` picks a free port (tests); :func:`metrics_server_port` tells which.
    A second call replaces the running server.
    """
    stop_metrics_server()
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    _SERVERS.append(server)


def metrics_server_port() -> int | None:
    """The port ``/metrics`` is served on, or None when the server is not running."""
    return int(_SERVERS[-1].server_port) if _SERVERS else None


def stop_metrics_server() -> None:
    """Stop serving ``/metrics`` (a no-op when not started); the metrics keep their values."""
    while _SERVERS:
        server = _SERVERS.pop()
        server.shutdown()
        server.server_close()


# At most one element; a list so the functions above need no ``global`` statement.
_SERVERS: list[WSGIServer] = []
