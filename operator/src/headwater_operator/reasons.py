"""Every ``reason`` Headwater writes, in one place.

The same CamelCase string appears in three places a user looks: ``FlowRun.status.reason``,
the ``reason`` of a Kubernetes Event on the object (``kubectl describe``), and the
``reason`` label of the crash metric. Keeping them here means a reason is spelled once,
documented once (docs/flowrun-lifecycle.md has the table with what to do for each), and
greppable. Other engineers add their reasons here too, additively.
"""

from __future__ import annotations

from typing import Final

# --- FlowRun: admission ---------------------------------------------------------------
SCHEDULED: Final = "Scheduled"
"""The run is accepted and waits for its scheduled time."""
INVALID_PARAMETERS: Final = "InvalidParameters"
"""The merged parameters do not satisfy ``Flow.spec.parametersSchema`` (no pod is created),
or, for a Flow without one, the flow function's signature (the engine's run summary says
so). Never retried."""
DEPLOYMENT_NOT_FOUND: Final = "DeploymentNotFound"
FLOW_NOT_FOUND: Final = "FlowNotFound"
INVALID_SPEC: Final = "InvalidSpec"
"""The FlowRun, its Deployment or its Flow could not be read as a valid spec."""
DEPLOYMENT_PAUSED: Final = "DeploymentPaused"
"""Held (not started) while ``Deployment.spec.paused`` is true."""
AWAITING_CONCURRENCY_SLOT: Final = "AwaitingConcurrencySlot"
"""Held by ``concurrency.collisionStrategy: Enqueue`` until an active run finishes."""
CONCURRENCY_LIMIT_REACHED: Final = "ConcurrencyLimitReached"
"""Cancelled by ``concurrency.collisionStrategy: CancelNew``."""
LATE: Final = "Late"
"""The scheduled time passed by more than ``lateAfterSeconds`` without the run starting."""
BLOCK_NOT_FOUND: Final = "BlockNotFound"
"""Held (no pod) while a Block the Deployment declares (``spec.blocks``), or one it nests
(``spec.blockRefs``), does not exist; the run starts when it appears."""
BLOCK_SECRET_NOT_FOUND: Final = "BlockSecretNotFound"
"""Held (no pod) while a Secret, or a key in it, that a declared block's secret field
names (``spec.secretRefs``) does not exist; the run starts when it appears."""
INVALID_BLOCK: Final = "InvalidBlock"
"""Held (no pod) while a declared block is invalid or nests itself; the run starts when
it is fixed."""

# --- FlowRun: attempts -----------------------------------------------------------------
POD_CREATED: Final = "PodCreated"
POD_ADOPTED: Final = "PodAdopted"
"""The attempt's pod already existed (operator restart, replayed event); it was adopted."""
STARTED: Final = "Started"
RETRY_SCHEDULED: Final = "RetryScheduled"
RETRYING: Final = "Retrying"
SOURCE_RESOLVED: Final = "SourceResolved"
"""The first attempt's init container fetched ``Flow.spec.source``: the commit (or bundle
digest) is in ``status.source`` and every retry runs the same code."""

# --- FlowRun: the run store (docs/run-store.md) ------------------------------------------
RUN_RECORD_NOT_WRITTEN: Final = "RunRecordNotWritten"
"""Warning Event on a FlowRun: an attempt's run summary says its final run record did not
reach the run store (``recordWritten: false``); the run's outcome is not affected."""

# --- FlowRun: terminal -----------------------------------------------------------------
COMPLETED: Final = "Completed"
FLOW_FAILED: Final = "FlowFailed"
"""The flow's code raised; the message carries the engine's error."""
TIMED_OUT: Final = "TimedOut"
"""The attempt ran longer than ``timeoutSeconds``."""
CANCELLED: Final = "Cancelled"
CANCEL_REQUESTED: Final = "CancelRequested"
CANCEL_FORCED: Final = "CancelForced"
"""The pod did not stop within the grace period; the run is recorded Cancelled anyway."""

# --- FlowRun: Crashed (the infrastructure failed, not the code) -------------------------
POD_DELETED: Final = "PodDeleted"
EVICTED: Final = "Evicted"
OOM_KILLED: Final = "OOMKilled"
NODE_LOST: Final = "NodeLost"
IMAGE_PULL_FAILED: Final = "ImagePullFailed"
UNSCHEDULABLE: Final = "Unschedulable"
CREATE_CONTAINER_CONFIG_ERROR: Final = "CreateContainerConfigError"
PENDING_TIMEOUT: Final = "PendingTimeout"
"""Pending past ``pendingTimeoutSeconds`` for a reason none of the specific ones covers."""
INVALID_RUN_SUMMARY: Final = "InvalidRunSummary"
MISSING_RUN_SUMMARY: Final = "MissingRunSummary"
ENGINE_CRASHED: Final = "EngineCrashed"
"""``headwater execute`` itself could not run the flow (exit code 2)."""
POD_TERMINATED: Final = "PodTerminated"
"""The container was stopped by a signal nobody in Headwater sent (e.g. node shutdown)."""
POD_CREATION_FAILED: Final = "PodCreationFailed"
"""The API server rejected the rendered pod (bad runTemplate field, quota, admission)."""
SOURCE_FETCH_FAILED: Final = "SourceFetchFailed"
"""The init container could not fetch ``Flow.spec.source`` (a ref that does not exist,
credentials that do not grant access, a bundle that changed); its message says why."""
STATUS_REJECTED: Final = "StatusRejected"
"""The API server refused (422) a status write of a Schedule, Deployment or FlowRun; the
same write is never retried in a loop (a FlowRun ends Crashed with this reason)."""

CRASH_REASONS: Final = frozenset(
    {
        POD_DELETED,
        EVICTED,
        OOM_KILLED,
        NODE_LOST,
        IMAGE_PULL_FAILED,
        UNSCHEDULABLE,
        CREATE_CONTAINER_CONFIG_ERROR,
        PENDING_TIMEOUT,
        INVALID_RUN_SUMMARY,
        MISSING_RUN_SUMMARY,
        ENGINE_CRASHED,
        POD_TERMINATED,
        POD_CREATION_FAILED,
        SOURCE_FETCH_FAILED,
        STATUS_REJECTED,
    }
)
"""Reasons of phase Crashed; the metric ``headwater_crashes_total`` uses exactly these."""

# --- Flow and Deployment: the Ready and Paused conditions ------------------------------
VALID: Final = "Valid"
"""Ready=True: the spec and everything it references check out."""
INVALID_ENTRYPOINT: Final = "InvalidEntrypoint"
"""``Flow.spec.entrypoint`` is not ``pkg.module:function`` or ``path/file.py:function``."""
INVALID_PARAMETERS_SCHEMA: Final = "InvalidParametersSchema"
"""``Flow.spec.parametersSchema`` is not a valid JSON Schema (meta-schema check)."""
FLOW_NOT_READY: Final = "FlowNotReady"
"""The Deployment's Flow exists but is itself not Ready; its reason is in the message."""
DEPLOYMENT_ACTIVE: Final = "Active"
"""Paused=False: ``spec.paused`` is false, new runs start."""
HISTORY_PRUNED: Final = "HistoryPruned"
"""Event on a Deployment: a finished FlowRun was deleted by history limits or TTL."""
RUN_RECORDS_NOT_DELETED: Final = "RunRecordsNotDeleted"
"""Warning Event on a Deployment: a pruned FlowRun's run records could not be deleted from
the run store (the FlowRun was deleted all the same)."""

# --- Schedule ----------------------------------------------------------------------------
RUN_REJECTED: Final = "RunRejected"
"""The API server refused a tick's FlowRun for good (400, 422, or 403 from a policy): the
tick is skipped, not retried, and ``Ready=False``/``RunRejected=True`` and a Warning
Event carry the server's message. A later tick whose run is accepted clears it."""
RUNS_ACCEPTED: Final = "RunsAccepted"
"""``RunRejected=False``: the last run the Schedule created was accepted."""

# --- Deployment: triggers (docs/triggers.md) -------------------------------------------
RUN_TRIGGERED: Final = "RunTriggered"
"""A Deployment's trigger created a run (Normal Event on the Deployment)."""
TRIGGER_FAILED: Final = "TriggerFailed"
"""A trigger fired but its run could not be created: a parameter template failed over the
upstream run, or the API server refused the run. Not retried."""
INVALID_TRIGGER: Final = "InvalidTrigger"
"""The Deployment's spec does not validate, so its triggers are not evaluated."""
