"""Flow-run level retries: whether an attempt's outcome is retried, and when.

Retries here restart the *whole flow* in a fresh pod (task-level retries happen inside
the engine). The policy is explicit so a user can predict it from the Deployment alone:

* only the causes listed in ``Deployment.spec.retryOn`` are retried (both by default);
* some outcomes are never retried, whatever the policy says, because a new pod cannot
  change them: invalid parameters, a pod the API server rejects, a container the kubelet
  refuses for good (an unparsable image, ``runAsNonRoot`` with a root image: the
  attempt's observation is ``final``, see ``podfacts.start_blocker``), and cancellation;
* the delay grows geometrically: ``retryDelaySeconds * retryBackoffFactor**(n-1)``
  before attempt ``n+1``, capped by ``retryMaxDelaySeconds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from headwater_operator import reasons
from headwater_operator.api.enums import FlowRunPhase, RetryCause

NEVER_RETRIED_REASONS: frozenset[str] = frozenset(
    {
        reasons.INVALID_PARAMETERS,
        reasons.POD_CREATION_FAILED,
        reasons.DEPLOYMENT_NOT_FOUND,
        reasons.FLOW_NOT_FOUND,
        reasons.INVALID_SPEC,
    }
)
"""Outcomes that a new attempt would reproduce exactly."""


@dataclass(frozen=True)
class RetryPolicy:
    """The effective retry settings of one FlowRun (already resolved from its sources)."""

    retries: int = 0
    """How many attempts may follow the first one."""
    delay_seconds: float = 10.0
    backoff_factor: float = 2.0
    max_delay_seconds: float = 600.0
    retry_on: frozenset[RetryCause] = frozenset({RetryCause.FAILED, RetryCause.CRASHED})


def is_retryable(policy: RetryPolicy, phase: FlowRunPhase, reason: str, attempts: int) -> bool:
    """True when an attempt that ended in ``phase``/``reason`` gets another attempt.

    ``attempts`` is the number of attempts made so far, including the one that ended.
    """
    if attempts > policy.retries:
        return False
    if reason in NEVER_RETRIED_REASONS:
        return False
    if phase == FlowRunPhase.FAILED:
        return RetryCause.FAILED in policy.retry_on
    if phase == FlowRunPhase.CRASHED:
        return RetryCause.CRASHED in policy.retry_on
    return False


def retry_delay(policy: RetryPolicy, attempts: int) -> timedelta:
    """How long to wait after attempt number ``attempts`` (1-based) before the next one."""
    exponent = max(attempts - 1, 0)
    seconds = policy.delay_seconds * policy.backoff_factor**exponent
    return timedelta(seconds=max(0.0, min(seconds, policy.max_delay_seconds)))


def next_attempt_time(policy: RetryPolicy, attempts: int, ended_at: datetime) -> datetime:
    """When the attempt after ``attempts`` may start, counted from when the last one ended.

    Rounded *up* to a whole second: ``status.nextAttemptTime`` has Kubernetes' second
    precision and the run waits until the stored time, so rounding down would start the
    next attempt up to a second before the delay the Deployment asked for.
    """
    due = ended_at + retry_delay(policy, attempts)
    if due.microsecond:
        due = due.replace(microsecond=0) + timedelta(seconds=1)
    return due
