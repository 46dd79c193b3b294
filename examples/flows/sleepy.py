"""A flow that sleeps: for trying cancellation and timeouts.

    headwater execute --entrypoint examples/flows/sleepy.py:sleepy --param seconds=5

Send it SIGTERM (what a pod deletion or ``spec.cancel: true`` does) and the run ends
Cancelled with exit code 3; give its FlowRun ``timeoutSeconds`` shorter than ``seconds``
and Kubernetes stops the pod at the deadline (Failed, reason TimedOut).
"""

from __future__ import annotations

import time

from headwater import flow, task


@task
def nap(seconds: float) -> float:
    """Sleep ``seconds`` in short steps, so a signal is handled promptly."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
    return seconds


@flow(log_prints=True)
def sleepy(seconds: float = 30.0) -> float:
    """Sleep for ``seconds``, then report how long it slept."""
    print(f"sleeping {seconds}s")
    slept = nap(seconds)
    print(f"slept {slept}s")
    return slept


if __name__ == "__main__":
    sleepy(1.0)
