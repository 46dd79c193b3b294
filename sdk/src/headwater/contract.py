"""The contract between the Headwater operator and the in-pod SDK engine.

Both halves import this module (the operator may import it; the SDK never imports the
operator), so every name that crosses the pod boundary is written down exactly once:

* the environment variables the operator sets on a flow-run pod and ``headwater
  execute`` reads,
* the label and annotation keys on Headwater-managed objects,
* the JSON run summary the engine writes to the container's termination message and
  the operator turns into ``FlowRun.status``,
* the process exit codes that tell Completed, Failed, Cancelled and Crashed apart.

It must stay import-light (standard library only): it is loaded on every pod start.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal, TypedDict

GROUP: Final = "headwater.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

# --- environment variables set on the flow-run container -----------------------------
ENV_ENTRYPOINT: Final = "HEADWATER_ENTRYPOINT"
"""``pkg.module:function`` or ``path/to/file.py:function`` of the flow to run."""
ENV_PARAMETERS: Final = "HEADWATER_PARAMETERS"
"""JSON object: the merged parameters (Flow < Deployment < Schedule < FlowRun)."""
ENV_FLOW_RUN_NAME: Final = "HEADWATER_FLOW_RUN_NAME"
ENV_FLOW_RUN_ID: Final = "HEADWATER_FLOW_RUN_ID"
"""The FlowRun's ``metadata.uid``: stable across attempts, unique per run."""
ENV_NAMESPACE: Final = "HEADWATER_NAMESPACE"
ENV_FLOW_NAME: Final = "HEADWATER_FLOW_NAME"
ENV_DEPLOYMENT_NAME: Final = "HEADWATER_DEPLOYMENT_NAME"
ENV_DEPLOYMENT_ID: Final = "HEADWATER_DEPLOYMENT_ID"
"""The Deployment's ``metadata.uid`` (unset for a FlowRun that references a Flow)."""
ENV_DEPLOYMENT_VERSION: Final = "HEADWATER_DEPLOYMENT_VERSION"
"""The Deployment's ``metadata.generation`` when the pod was made: it changes with every
edit of the Deployment's spec (``runtime.deployment.version``)."""
ENV_SCHEDULE_NAME: Final = "HEADWATER_SCHEDULE_NAME"
ENV_SCHEDULED_TIME: Final = "HEADWATER_SCHEDULED_TIME"
"""RFC 3339 UTC instant the run was scheduled for (the tick, for scheduled runs)."""
ENV_ATTEMPT: Final = "HEADWATER_ATTEMPT"
"""1-based attempt number of this pod within the FlowRun."""
ENV_RESULT_STORAGE: Final = "HEADWATER_RESULT_STORAGE"
"""Where results, caches, artifacts and asset records live: a path or fsspec URL."""
ENV_RUN_STORE: Final = "HEADWATER_RUN_STORE"
"""Root of the run store, where each attempt's run record and logs are kept: a path or
fsspec URL; ``off`` writes none. Unset: the result storage root (see
:mod:`headwater.runstore` for the layout)."""
ENV_UI_URL: Final = "HEADWATER_UI_URL"
"""The Headwater UI's public address (``https://headwater.example.com``): with it a run's
link is ``<url>/runs/<namespace>/<name>`` (:func:`run_ui_url`)."""
ENV_HOME: Final = "HEADWATER_HOME"
"""Local default for result storage (``~/.headwater`` when unset)."""
ENV_SUMMARY_PATH: Final = "HEADWATER_SUMMARY_PATH"
"""Where ``headwater execute`` writes the run summary (default: the termination log)."""
ENV_SUMMARY_MAX_BYTES: Final = "HEADWATER_SUMMARY_MAX_BYTES"
"""The run summary's byte budget in this pod (:func:`termination_message_cap` of the
pod's container count, set by the operator); unset or invalid means 4096."""
ENV_LOG_FORMAT: Final = "HEADWATER_LOG_FORMAT"
"""``text`` (default) or ``json``."""
ENV_LOG_LEVEL: Final = "HEADWATER_LOG_LEVEL"
ENV_SECRET_PREFIX: Final = "HEADWATER_SECRET_"
"""``Secret.load("db-password")`` reads ``HEADWATER_SECRET_DB_PASSWORD`` first."""
ENV_SECRETS_DIR: Final = "HEADWATER_SECRETS_DIR"
"""Directory of mounted secret files (one file per secret name)."""
SECRETS_DIR_DEFAULT: Final = "/var/run/headwater/secrets"

# --- blocks and variables (docs/blocks.md) -------------------------------------------
ENV_BLOCK_STORE: Final = "HEADWATER_BLOCK_STORE"
"""Where ``Block.save``/``Block.load`` and ``Variable`` go: unset or ``auto`` (the blocks
mounted into a flow-run pod, then the local store), ``local`` (``$HEADWATER_HOME``), or
the name of a store plugin in :data:`STORES_ENTRY_POINT_GROUP` with an optional argument
after ``:`` (``kubernetes``, ``kubernetes:<namespace>``)."""
ENV_BLOCKS: Final = "HEADWATER_BLOCKS"
"""JSON object ``{name: block document}`` of the blocks a Deployment declares, nested
ones included (no secret values: it is in the pod spec). Set on flow-run pods."""
ENV_BLOCKS_DIR: Final = "HEADWATER_BLOCKS_DIR"
"""Where the declared blocks' secret fields are mounted: one file per field,
``<dir>/<block>/<field>``."""
BLOCKS_DIR_DEFAULT: Final = "/var/run/headwater/blocks"
ENV_VARIABLES: Final = "HEADWATER_VARIABLES"
"""JSON object ``{name: value}`` of the Variables a Deployment declares."""
ENV_CONCURRENCY_LIMITS: Final = "HEADWATER_CONCURRENCY_LIMITS"
"""JSON object ``{name: slots}`` or ``{name: {"limit": slots, "slot_decay_per_second": r,
"active": bool}}`` declaring the in-process concurrency and rate limits
(docs/concurrency.md)."""
ENV_CONCURRENCY_BACKEND: Final = "HEADWATER_CONCURRENCY_BACKEND"
"""Where ``concurrency()`` and ``rate_limit()`` count slots: unset or ``in-process`` (this
process, limits from :data:`ENV_CONCURRENCY_LIMITS`), or the name of a plugin in
:data:`CONCURRENCY_ENTRY_POINT_GROUP` with an optional argument after ``:``
(``kubernetes``, ``kubernetes:<namespace>``: Leases, limits from ConcurrencyLimit
objects)."""
CONCURRENCY_ENTRY_POINT_GROUP: Final = "headwater.concurrency"
"""Entry-point group of concurrency backends: each entry point is a callable
``(argument: str | None) -> headwater.concurrency.backends.Backend``; headwater-operator
registers ``kubernetes`` (the argument is the namespace)."""
STORES_ENTRY_POINT_GROUP: Final = "headwater.stores"
"""Entry-point group of block/variable store plugins: each entry point is a callable
``(argument: str | None) -> headwater.blocks.stores.Stores``; headwater-operator
registers ``kubernetes`` (the argument is the namespace)."""

# --- fetched flow code (Flow.spec.source, docs/flow-source.md) ------------------------
ENV_SOURCE: Final = "HEADWATER_SOURCE"
"""JSON object: what ``headwater fetch-source`` fetches, ``{"git": {"url", "ref", "path"?}}``
or ``{"bundle": {"url", "sha256"?}}`` (never a credential). Set on the init container."""
ENV_SOURCE_DIR: Final = "HEADWATER_SOURCE_DIR"
"""The volume shared by the fetching init container and the flow container. The code is
in ``<dir>/code`` (:data:`SOURCE_CODE_DIR`), and what was fetched in
``<dir>/source.json`` (:data:`SOURCE_RECORD_FILE`). On the flow container,
``headwater execute`` runs the entrypoint from there."""
ENV_SOURCE_CREDENTIALS_DIR: Final = "HEADWATER_SOURCE_CREDENTIALS_DIR"
"""Where the Secret of ``source.git.credentials.secretRef`` is mounted (init container
only): one file per key, ``username``/``password``, ``bearerToken``, ``identity`` (or
``sshPrivateKey``) and ``known_hosts``."""
SOURCE_DIR_DEFAULT: Final = "/var/run/headwater/source"
SOURCE_CREDENTIALS_DIR_DEFAULT: Final = "/var/run/headwater/source-credentials"
SOURCE_CODE_DIR: Final = "code"
SOURCE_RECORD_FILE: Final = "source.json"
SOURCE_CONTAINER_NAME: Final = "source"
"""Name of the init container that fetches the code; the operator reads its termination
message: the JSON of what it fetched (``{"url", "ref", "commit", "path"}`` or ``{"url",
"digest"}``), or why it could not."""

TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"
TERMINATION_MESSAGE_MAX_BYTES: Final = 4 * 1024
"""The kubelet reads at most the *last* 4096 bytes of a container's termination-message
file (kubernetes pkg/kubelet/container/runtime.go ``MaxContainerTerminationMessageLength``,
read by pkg/kubelet/kuberuntime/kuberuntime_container.go ``getTerminationMessage`` with
pkg/util/tail ``ReadAtMost``, which seeks to ``size - max`` from the end)."""
POD_TERMINATION_MESSAGE_MAX_BYTES: Final = 12 * 1024
"""All containers of a pod share 12 KiB of termination messages: before posting the pod's
status the kubelet keeps the *first* ``12288 // (containers + initContainers)`` bytes of
each message (pkg/kubelet/container/runtime.go ``MaxPodTerminationMessageLogLength``;
pkg/kubelet/status/status_manager.go ``normalizeStatus``)."""
SUMMARY_MAX_BYTES: Final = TERMINATION_MESSAGE_MAX_BYTES
"""The largest run summary the engine writes (with one to three containers in the pod)."""
SUMMARY_MIN_BYTES: Final = 128
"""The smallest budget the engine accepts from ``HEADWATER_SUMMARY_MAX_BYTES``."""

# --- labels and annotations ----------------------------------------------------------
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "headwater"
LABEL_FLOW_RUN: Final = f"{GROUP}/flow-run"
LABEL_FLOW: Final = f"{GROUP}/flow"
LABEL_DEPLOYMENT: Final = f"{GROUP}/deployment"
LABEL_SCHEDULE: Final = f"{GROUP}/schedule"
LABEL_ATTEMPT: Final = f"{GROUP}/attempt"
ANNOTATION_SCHEDULED_TIME: Final = f"{GROUP}/scheduled-time"
ANNOTATION_TRIGGER: Final = f"{GROUP}/trigger"
"""How a FlowRun came to be: ``schedule``, ``backfill``, ``cli`` or ``manual``."""

# --- exit codes of `headwater execute` ----------------------------------------------
EXIT_COMPLETED: Final = 0
EXIT_FAILED: Final = 1
"""The flow's code failed (or its parameters were invalid)."""
EXIT_CRASHED: Final = 2
"""The engine itself could not run the flow (entrypoint not importable, bad contract)."""
EXIT_CANCELLED: Final = 3
"""The run was stopped by SIGTERM (cancellation, pod deletion, deadline)."""

FinalState = Literal["Completed", "Failed", "Crashed", "Cancelled", "TimedOut"]

SUMMARY_REASON_INVALID_PARAMETERS: Final = "InvalidParameters"
"""A ``Failed`` summary's reason when the parameters did not fit the flow function's
signature: the operator fails the run with this reason and never retries it (a new
attempt would get the same parameters)."""


class AssetRecord(TypedDict):
    """One asset materialized by the run."""

    key: str
    version: str
    upstream: list[str]


class RunSummary(TypedDict, total=False):
    """What ``headwater execute`` writes to the termination message (JSON, ≤ 4096 bytes).

    ``state``, ``reason`` and ``message`` are always present; the rest are dropped,
    least important first, when the encoded summary would not fit.
    """

    version: int
    state: FinalState
    reason: str
    message: str
    flowRunId: str
    startTime: str
    endTime: str
    taskRuns: dict[str, int]
    """Count of task runs by final state name, e.g. ``{"Completed": 9, "Failed": 1}``."""
    assets: list[AssetRecord]
    artifacts: list[str]
    truncated: bool
    recordWritten: bool
    """Whether the attempt's final run record reached the run store (absent: no store)."""


SUMMARY_VERSION: Final = 1


def termination_message_cap(containers: int) -> int:
    """The most bytes of one container's termination message that reach ``Pod.status``
    in a pod of ``containers`` containers and init containers (see
    :data:`POD_TERMINATION_MESSAGE_MAX_BYTES`): 4096 up to three, 3072 with four, …"""
    return min(TERMINATION_MESSAGE_MAX_BYTES,
               POD_TERMINATION_MESSAGE_MAX_BYTES // max(containers, 1))


SUMMARY_FIELD_ORDER: Final = ("version", "state", "reason", "truncated", "recordWritten",
                               "message",
                               "taskRuns", "startTime", "endTime", "flowRunId", "artifacts",
                               "assets")
"""The order the engine writes a summary's fields in: what decides the phase first.

When a summary is longer than its container's share of the pod's 12 KiB, the kubelet keeps
its *first* bytes (:data:`POD_TERMINATION_MESSAGE_MAX_BYTES`), so a cut summary still says
how the run ended (:func:`decode_cut_summary` reads it); the lists that can be long come
last."""


def run_ui_url(base: str | None, namespace: str | None, name: str | None) -> str | None:
    """A FlowRun's page in the UI at ``base`` (``None`` without a UI address or a run)."""
    if not base or not namespace or not name:
        return None
    from urllib.parse import quote

    return f"{base.rstrip('/')}/runs/{quote(namespace, safe='')}/{quote(name, safe='')}"


def run_api_url(host: str | None, port: str | None, namespace: str | None,
                name: str | None) -> str | None:
    """A FlowRun's address on the Kubernetes API server that ``host``/``port`` name (the
    ``KUBERNETES_SERVICE_HOST``/``_PORT`` the kubelet gives every pod: kubernetes
    pkg/kubelet/kubelet_pods.go ``getServiceEnvVarMap``); ``None`` when one is missing."""
    if not host or not namespace or not name:
        return None
    from urllib.parse import quote

    address = f"[{host}]" if ":" in host else host
    if port and port != "443":
        address = f"{address}:{port}"
    return (f"https://{address}/apis/{API_VERSION}/namespaces/{quote(namespace, safe='')}"
            f"/flowruns/{quote(name, safe='')}")


def summary_budget(value: str | None) -> int:
    """The summary's byte budget from ``HEADWATER_SUMMARY_MAX_BYTES`` (4096 when unset or
    not a number; never more than 4096 nor less than :data:`SUMMARY_MIN_BYTES`)."""
    try:
        budget = int(value) if value else TERMINATION_MESSAGE_MAX_BYTES
    except ValueError:
        budget = TERMINATION_MESSAGE_MAX_BYTES
    return max(SUMMARY_MIN_BYTES, min(budget, TERMINATION_MESSAGE_MAX_BYTES))


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def encode_summary(summary: RunSummary) -> str:
    """Encode ``summary`` compactly, fields in :data:`SUMMARY_FIELD_ORDER` (then any
    others, sorted), nested keys sorted; the caller is responsible for the size limit.

    ASCII only (``\\uXXXX`` escapes), so a cut at any byte never splits a character."""
    data: dict[str, Any] = dict(summary)
    ordered: dict[str, Any] = {}
    ordered.update({key: _sorted_keys(data[key]) for key in SUMMARY_FIELD_ORDER if key in data})
    ordered.update({key: _sorted_keys(data[key]) for key in sorted(data)
                    if key not in ordered})
    return json.dumps(ordered, separators=(",", ":"), default=str)


def decode_summary(text: str) -> RunSummary:
    """Parse a termination message written by the engine.

    Raises ``ValueError`` naming what is wrong when the text is not a run summary, so
    the operator can mark the run Crashed with reason ``InvalidRunSummary``.
    """
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"run summary is not JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(data, dict):
        raise ValueError("run summary must be a JSON object")
    for key in ("state", "reason", "message"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"run summary field {key!r} is missing or not a string")
    return _checked(data)


FINAL_STATES: Final = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")


def _checked(data: dict[str, Any]) -> RunSummary:
    if data["state"] not in FINAL_STATES:
        raise ValueError(f"run summary field 'state' has unknown value {data['state']!r}")
    result: RunSummary = data  # type: ignore[assignment]
    return result


def decode_cut_summary(text: str) -> RunSummary:
    """The members of a run summary whose end was cut off, marked ``truncated``.

    Every member complete before the cut is kept; a ``message`` cut in the middle keeps
    its beginning (ending in ``...``); anything else cut is dropped, and so is a number
    that runs up to the cut (it may have lost digits). ``state`` and ``reason`` must have
    survived (the engine writes them first): otherwise ``ValueError`` says what is missing.
    """
    data: dict[str, Any] = {}
    decoder = json.JSONDecoder()
    pos = _skip_space(text, 0)
    if not text.startswith("{", pos):
        raise ValueError("run summary is not a JSON object: it does not start with '{'")
    pos += 1
    while True:
        pos = _skip_space(text, pos)
        if text.startswith(",", pos):
            pos = _skip_space(text, pos + 1)
        if not text.startswith('"', pos):
            break
        try:
            key, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        pos = _skip_space(text, pos)
        if not text.startswith(":", pos):
            break
        pos = _skip_space(text, pos + 1)
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            if key == "message" and text.startswith('"', pos):
                data[key] = _cut_string(text[pos + 1:]) + "..."
            break
        if end >= len(text) and isinstance(value, int | float) and not isinstance(value, bool):
            break
        data[key], pos = value, end
    for key in ("state", "reason"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"run summary was cut before its field {key!r}")
    if not isinstance(data.get("message"), str):
        data["message"] = ""
    data["truncated"] = True
    return _checked(data)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _cut_string(body: str) -> str:
    """The beginning of a JSON string whose closing quote was cut off."""
    for drop in range(min(len(body), 6) + 1):  # a cut can split an escape such as \u00e9
        try:
            decoded: str = json.loads('"' + body[:len(body) - drop] + '"')
        except ValueError:
            continue
        return decoded
    return ""
