"""What the controllers report as it happens, and to whom: the :class:`Observer`.

Controllers sit below the application in the operator's layers, so they never import
the metrics module; they call an :class:`Observer` they were given. The application
hands them :mod:`headwater_operator.metrics` (a module satisfies this protocol), tests
hand them a recorder or nothing (:data:`NULL_OBSERVER`).

Events go the same way, through an :class:`EventRecorder`
(:class:`headwater_operator.events.EventRecorder` posts them in the background).

What an observer must respect: each method is called on the event loop, must be cheap
and must not raise. A transition is reported once, by the process whose status write
made it (see :mod:`headwater_operator.controllers.flowruns`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class EventRecorder(Protocol):
    """Posts Kubernetes Events about objects (what ``kubectl describe`` lists).

    ``involved`` is the object's body (``apiVersion``, ``kind`` and ``metadata`` with
    ``name``, ``namespace`` and ``uid`` are read). Posting happens in the background and
    never raises: an Event that cannot be posted is logged, not retried forever.
    """

    def post(self, involved: Mapping[str, Any], type_: str, reason: str,
             message: str) -> None:
        """Post a ``type_`` (``Normal``/``Warning``) Event with ``reason`` and ``message``."""


class Observer(Protocol):
    """Receives the operator's measurements (see :mod:`headwater_operator.metrics`)."""

    def observe_run_finished(self, namespace: str, deployment: str, phase: str,
                             duration_seconds: float | None) -> None:
        """A run reached final ``phase`` (once per run)."""

    def observe_queue_wait(self, namespace: str, deployment: str, seconds: float) -> None:
        """A run's first pod was created ``seconds`` after its scheduled time."""

    def observe_crash(self, namespace: str, deployment: str, reason: str) -> None:
        """An attempt crashed (infrastructure failure) for ``reason``."""

    def observe_late(self, namespace: str, deployment: str) -> None:
        """A run was marked Late."""

    def observe_schedule_lag(self, namespace: str, seconds: float) -> None:
        """A Schedule's FlowRun was created ``seconds`` after its tick."""

    def observe_reconcile_error(self, kind: str) -> None:
        """A reconcile of a ``kind`` (``FlowRun``, ``Deployment``…) failed."""

    def set_run_phase(self, uid: str, namespace: str, deployment: str,
                      phase: str | None) -> None:
        """Run ``uid`` is now in ``phase`` (None: finished or gone)."""

    def observe_automation_delivery(self, namespace: str, automation: str, action: str,
                                    outcome: str, latency_seconds: float | None) -> None:
        """An automation's ``action`` attempt ended with ``outcome`` (``Delivered``,
        ``Retrying``, ``Failed``); a delivery's ``latency_seconds`` since its transition."""


class NullObserver:
    """An observer that keeps nothing (controllers under test, tools)."""

    def observe_run_finished(self, namespace: str, deployment: str, phase: str,
                             duration_seconds: float | None) -> None:
        """Kept nowhere."""

    def observe_queue_wait(self, namespace: str, deployment: str, seconds: float) -> None:
        """Kept nowhere."""

    def observe_crash(self, namespace: str, deployment: str, reason: str) -> None:
        """Kept nowhere."""

    def observe_late(self, namespace: str, deployment: str) -> None:
        """Kept nowhere."""

    def observe_schedule_lag(self, namespace: str, seconds: float) -> None:
        """Kept nowhere."""

    def observe_reconcile_error(self, kind: str) -> None:
        """Kept nowhere."""

    def set_run_phase(self, uid: str, namespace: str, deployment: str,
                      phase: str | None) -> None:
        """Kept nowhere."""

    def observe_automation_delivery(self, namespace: str, automation: str, action: str,
                                    outcome: str, latency_seconds: float | None) -> None:
        """Kept nowhere."""


NULL_OBSERVER: Observer = NullObserver()
