"""Waiting for a FlowRun to end and streaming its pods' logs across attempts.

Shared by ``run --wait/--follow`` and ``logs [-f]``. Attempt *n* of run *r* runs in
pod ``r-n`` (:func:`~headwater_operator.flowruns.render.pod_name`), so the logs of a
retried run are found without listing pods. Waiting polls the FlowRun (one GET per
poll interval): a CLI waiting for minutes does not need a watch connection, and polling
survives API-server restarts without any resume logic. The sleep and the clock are
injected so the unit tests never sleep.

Logs are always asked for by container (``container=flow``, :data:`LOG_CONTAINER`): an
injected sidecar (istio-proxy, a vault agent) makes the pod a multi-container pod, and
the API server refuses a log request that does not name one (kubernetes v1.32
``pkg/registry/core/pod/strategy.go`` ``validateContainer``). A pod not yet bound to a
node has no log location: the API server answers ``204 No Content`` and the follow
stream ends at once, empty; :func:`log_stream_complete` tells that apart from a
container that has really finished.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headwater_operator import kube
from headwater_operator.api import TERMINAL_PHASES
from headwater_operator.cli.common import EXIT_FAILED, EXIT_OK, CliError, Io
from headwater_operator.cli.parsers import DEFAULT_POLL_SECONDS
from headwater_operator.flowruns.render import CONTAINER_NAME, pod_name

_TERMINAL = frozenset(str(phase) for phase in TERMINAL_PHASES)
LOG_CONTAINER = CONTAINER_NAME
"""The container whose log is the flow's output (the one Headwater renders)."""
_FINISHED_POD_PHASES = frozenset({"Succeeded", "Failed"})


def log_stream_complete(received: bool, pod: dict[str, Any] | None) -> bool:
    """Whether a follow stream that just ended has shown the attempt's whole log.

    A stream that delivered output ended because the container exited. An empty one
    ended either because the container exited without output, or because the pod has no
    log yet (not bound to a node: ``204``); only a finished or deleted pod (``pod`` None)
    says it was the former. Streaming again then shows nothing twice.
    """
    if received or pod is None:
        return True
    return (pod.get("status") or {}).get("phase") in _FINISHED_POD_PHASES


@dataclass
class Watcher:
    """Reads one FlowRun repeatedly until it ends (or a deadline passes)."""

    client: kube.BlockingKube
    namespace: str
    name: str
    io: Io
    poll_seconds: float = DEFAULT_POLL_SECONDS
    timeout_seconds: float | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    pod_gone: Callable[[dict[str, Any], int], None] | None = None
    """Shows an attempt whose pod no longer exists another way (``logs``: from the run
    store); without it the watcher says the pod is gone."""
    _deadline: float | None = field(default=None, init=False)
    _headers: set[int] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if self.timeout_seconds is not None:
            self._deadline = self.monotonic() + self.timeout_seconds

    def expired(self) -> bool:
        """Whether ``--timeout`` has passed."""
        return self._deadline is not None and self.monotonic() >= self._deadline

    def read(self) -> dict[str, Any]:
        """The FlowRun now; a missing run is an error naming it."""
        try:
            return self.client.get(kube.FLOWRUNS, self.name, namespace=self.namespace)
        except kube.NotFound:
            raise CliError(f"FlowRun {self.namespace}/{self.name} not found (was it deleted? "
                           f"list runs with: headwater get runs -n {self.namespace})") from None

    def wait(self) -> dict[str, Any] | None:
        """The run once its phase is terminal; None if the timeout passed first."""
        while True:
            run = self.read()
            if phase_of(run) in _TERMINAL:
                return run
            if self.expired():
                return None
            self.sleep(self.poll_seconds)

    def follow_logs(self, first_attempt: int = 1) -> dict[str, Any] | None:
        """Stream every attempt's log from ``first_attempt`` on, until the run ends.

        Returns the final run, or None when the timeout passed (checked between log
        chunks of different attempts and between polls).
        """
        attempt = first_attempt
        while True:
            run = self.read()
            started = int((run.get("status") or {}).get("attempts") or 0)
            if attempt <= started:
                done = self._stream_attempt(attempt, run, more_follow=attempt < started
                                            or phase_of(run) in _TERMINAL)
                if done:
                    attempt += 1
                    continue
            elif phase_of(run) in _TERMINAL:
                return run
            if self.expired():
                return None
            self.sleep(self.poll_seconds)

    def _stream_attempt(self, attempt: int, run: dict[str, Any], *, more_follow: bool) -> bool:
        """Follow one attempt's pod log to its end; False if it cannot be read yet."""
        pod = pod_name(self.name, attempt)
        self._header(attempt, pod)
        received = False
        try:
            # Closed however the loop ends (an interrupt, a failed write): that closes the
            # connection at once.
            with contextlib.closing(self.client.follow_pod_log(
                    pod, namespace=self.namespace, container=LOG_CONTAINER)) as chunks:
                for chunk in chunks:
                    received = received or bool(chunk)
                    self.io.out.write(chunk)
                    self.io.out.flush()
            if not received:
                return log_stream_complete(False, self._pod_or_none(pod))
        except kube.NotFound:
            if more_follow:
                # Deleted (e.g. a pod stuck Pending is removed, or pruned by history
                # limits): only the run store, if any, still has its output.
                if self.pod_gone is not None:
                    self.pod_gone(run, attempt)
                else:
                    self.io.err.write(f"(pod {pod} of attempt {attempt} no longer exists)\n")
                return True
            return False
        except kube.KubeError as exc:
            if exc.status == 400:  # container not started yet: try again after a poll
                return False
            raise
        return True

    def _pod_or_none(self, pod: str) -> dict[str, Any] | None:
        try:
            return self.client.get(kube.PODS, pod, namespace=self.namespace)
        except kube.NotFound:
            return None

    def _header(self, attempt: int, pod: str) -> None:
        if attempt not in self._headers:
            self._headers.add(attempt)
            self.io.err.write(f"==> attempt {attempt} (pod {pod}) <==\n")


def phase_of(run: dict[str, Any]) -> str:
    """The run's phase; an unreconciled run counts as ``Scheduled``."""
    return str((run.get("status") or {}).get("phase") or "Scheduled")


def final_line(run: dict[str, Any]) -> str:
    """``flowrun/x Failed (FlowFailed): <message>`` — the phase, reason and message."""
    status = run.get("status") or {}
    reason = f" ({status['reason']})" if status.get("reason") else ""
    message = f": {status['message']}" if status.get("message") else ""
    return f"flowrun/{run['metadata']['name']} {phase_of(run)}{reason}{message}"


def exit_code_for(run: dict[str, Any] | None) -> int:
    """0 only for a run that ended Completed."""
    return EXIT_OK if run is not None and phase_of(run) == "Completed" else EXIT_FAILED
