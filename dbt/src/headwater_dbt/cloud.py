"""dbt Cloud: trigger a job run, wait for it, fetch its artifacts and report its nodes.

Speaks the dbt Cloud Administrative API v2 (https://docs.getdbt.com/dbt-cloud/api-v2,
generated from ``openapi-v2.yaml`` in github.com/dbt-labs/dbt-cloud-openapi-spec). The
endpoints used, all under ``<base URL>/api/v2/accounts/{account_id}/``:

=============================  =====================================  ======================
operation (spec operationId)   request                                answer (``data``)
=============================  =====================================  ======================
Trigger Job Run                ``POST jobs/{job_id}/run/``            the new run
Retrieve Run                   ``GET runs/{run_id}/``                 the run
Cancel Run                     ``POST runs/{run_id}/cancel/``         the run
List Run Artifacts             ``GET runs/{run_id}/artifacts/``       list of paths
Retrieve Run Artifact          ``GET runs/{run_id}/artifacts/{path}`` the file itself
=============================  =====================================  ======================

Every JSON answer is an envelope ``{"data": ..., "status": {"code", "is_success",
"user_message", "developer_message"}}``; an artifact is the file itself. A run's
``status`` is 1 Queued, 2 Starting, 3 Running, 10 Success, 20 Error, 30 Cancelled.

What this module must respect:

* The API token travels only in the ``Authorization: Token <key>`` header the API
  documents. It is never part of a URL, an error, a log line, a parameter of the run
  record or an artifact: errors are built from the method, the path, the HTTP status and
  the run id, and the token (registered for redaction by the credentials Block) is masked
  from anything the server echoes back.
* HTTP is the standard library's ``urllib.request``: no dependency for five endpoints.
* 429 and 5xx answers are retried with exponential backoff, honouring ``Retry-After``
  (RFC 9110 §10.2.3: seconds or an HTTP date). A POST that triggers a run is retried only
  on 429, 502, 503 and 504, where the request did not reach the job scheduler; a 500
  might have queued a run, and a second one must not be started behind the user's back.
* The nodes of a finished run are reported through the same reporter as dbt Core runs
  (:func:`headwater_dbt.report.report_results`): a task run per node, assets with
  lineage, a table artifact. There is no second reporter here.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from enum import IntEnum
from typing import Any

from headwater.blocks.core import Block
from headwater.flows import flow
from headwater.logging import get_run_logger
from headwater.secrets import redact
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from headwater_dbt.report import DbtReport, report_results

__all__ = [
    "DbtCloudClient",
    "DbtCloudCredentials",
    "DbtCloudError",
    "DbtCloudHTTPError",
    "DbtCloudJobRunCancelled",
    "DbtCloudJobRunFailed",
    "DbtCloudJobRunStatus",
    "DbtCloudJobRunTimedOut",
    "TriggerJobRunOptions",
    "run_dbt_cloud_job",
    "trigger_dbt_cloud_job_run_and_wait_for_completion",
    "wait_for_job_run",
]

_log = logging.getLogger(__name__)

DEFAULT_DOMAIN = "cloud.getdbt.com"
_RETRYABLE = frozenset({429, 500, 502, 503, 504})
_RETRYABLE_TRIGGER = frozenset({429, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 600.0


class DbtCloudJobRunStatus(IntEnum):
    """A dbt Cloud run's ``status`` (the spec's RunResponse.status)."""

    QUEUED = 1
    STARTING = 2
    RUNNING = 3
    SUCCESS = 10
    ERROR = 20
    CANCELLED = 30

    @property
    def is_terminal(self) -> bool:
        return self >= DbtCloudJobRunStatus.SUCCESS

    @classmethod
    def of(cls, run: Mapping[str, Any]) -> DbtCloudJobRunStatus:
        """The status of a run document, naming the run when the value is unknown."""
        try:
            return cls(run["status"])
        except (KeyError, ValueError):
            raise DbtCloudError(
                f"dbt Cloud run {run.get('id')} has status {run.get('status')!r}, which is none "
                "of the documented codes 1, 2, 3, 10, 20, 30") from None


# --- errors ------------------------------------------------------------------------------


class DbtCloudError(RuntimeError):
    """Something went wrong talking to dbt Cloud or in the run it was asked to do."""


class DbtCloudHTTPError(DbtCloudError):
    """dbt Cloud answered a request with an error (or could not be reached).

    ``status`` is the HTTP status (``None`` when no answer came), ``run_id`` the run the
    request was about, if any.
    """

    def __init__(self, message: str, *, method: str, path: str, status: int | None,
                 run_id: int | None = None) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.run_id = run_id


class DbtCloudJobRunFailed(DbtCloudError):
    """The run ended in Error (20); ``run`` is its last document."""

    def __init__(self, message: str, run: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.run = dict(run)
        self.run_id: int = run["id"]


class DbtCloudJobRunCancelled(DbtCloudJobRunFailed):
    """The run ended Cancelled (30), by someone else (a timeout raises
    :class:`DbtCloudJobRunTimedOut`)."""


class DbtCloudJobRunTimedOut(DbtCloudError):
    """The run did not finish within the timeout; it was cancelled (``cancelled``) or the
    cancel request failed (``cancel_error``)."""

    def __init__(self, message: str, *, run_id: int, timeout_seconds: float,
                 cancelled: bool) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.timeout_seconds = timeout_seconds
        self.cancelled = cancelled


# --- credentials and options -------------------------------------------------------------


class DbtCloudCredentials(Block):
    """A dbt Cloud account and the API token to use it (a service token, or a personal
    access token), as prefect-dbt's block of the same name.

    ``domain`` is the host of the account's access URL: ``cloud.getdbt.com`` (the default,
    US multi-tenant), ``emea.dbt.com``, ``au.dbt.com``, ``<prefix>.us1.dbt.com`` for
    cell-based accounts, a single-tenant host; or a full ``http(s)://host[:port]`` URL
    (a proxy, a test server). A bare host means HTTPS.
    """

    _block_type_name = "dbt Cloud Credentials"

    account_id: int = Field(gt=0, description="The numeric account id (in the account's URLs).")
    api_key: SecretStr = Field(description="A service token or personal access token.")
    domain: str = Field(default=DEFAULT_DOMAIN,
                        description="The access URL's host, or an http(s):// base URL.")

    @field_validator("domain")
    @classmethod
    def _check_domain(cls, value: str) -> str:
        url = urllib.parse.urlsplit(value if "://" in value else f"https://{value}")
        if (url.scheme not in ("http", "https") or not url.hostname or url.query
                or url.fragment or url.username or url.password):
            raise ValueError(
                f"domain {value!r} is not a host or an http(s) base URL: give the host of "
                "the account's access URL (e.g. cloud.getdbt.com, emea.dbt.com, "
                "ab123.us1.dbt.com) or a URL like https://dbt.example.com")
        return value

    @property
    def base_url(self) -> str:
        """``https://<domain>``, or ``domain`` itself when it is a URL, without a final
        ``/``."""
        base = self.domain if "://" in self.domain else f"https://{self.domain}"
        return base.rstrip("/")

    def get_client(self, **options: Any) -> DbtCloudClient:
        """A :class:`DbtCloudClient` for this account (``options`` go to it)."""
        return DbtCloudClient(self, **options)


class TriggerJobRunOptions(BaseModel):
    """The body of Trigger Job Run (the spec's TriggerRunRequestRequest): overrides for
    this one run. Fields left ``None`` are not sent, so the job's own settings apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cause: str = Field(default="Triggered by Headwater", min_length=1)
    git_sha: str | None = Field(default=None, min_length=1)
    git_branch: str | None = Field(default=None, min_length=1)
    schema_override: str | None = Field(default=None, min_length=1)
    dbt_version_override: str | None = Field(default=None, min_length=1)
    threads_override: int | None = Field(default=None, gt=0)
    target_name_override: str | None = Field(default=None, min_length=1)
    generate_docs_override: bool | None = None
    timeout_seconds_override: int | None = Field(default=None, ge=0)
    steps_override: list[str] | None = Field(default=None, min_length=1)

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# --- the client --------------------------------------------------------------------------


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


class DbtCloudClient:
    """The five Administrative API v2 calls a job run needs, with retries.

    ``max_retries`` retries follow a retryable answer (see the module docstring), waiting
    ``Retry-After`` when the server sends it (at most 600 s), else ``backoff_seconds *
    2**attempt`` capped at ``max_backoff_seconds``. ``sleep`` is how it waits (tests pass
    a recorder).
    """

    def __init__(self, credentials: DbtCloudCredentials, *, request_timeout_seconds: float = 30.0,
                 max_retries: int = 5, backoff_seconds: float = 1.0,
                 max_backoff_seconds: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._credentials = credentials
        self._api = f"{credentials.base_url}/api/v2/accounts/{credentials.account_id}"
        self._timeout = request_timeout_seconds
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._sleep = sleep

    # Trigger Job Run: POST /api/v2/accounts/{account_id}/jobs/{job_id}/run/
    def trigger_job_run(self, job_id: int,
                        options: TriggerJobRunOptions | None = None) -> dict[str, Any]:
        """Queue a run of job ``job_id``; the run's document (its ``id``, status 1)."""
        body = (options or TriggerJobRunOptions()).body()
        run = self._json("POST", f"/jobs/{job_id}/run/", body=body, retry_on=_RETRYABLE_TRIGGER)
        if not isinstance(run, dict) or not isinstance(run.get("id"), int):
            raise DbtCloudError(f"dbt Cloud answered the trigger of job {job_id} without a run id")
        return run

    # Retrieve Run: GET /api/v2/accounts/{account_id}/runs/{id}/
    def get_run(self, run_id: int) -> dict[str, Any]:
        """The run's document (``status``, ``status_message``, ``href``...)."""
        run: dict[str, Any] = self._json("GET", f"/runs/{run_id}/", run_id=run_id)
        return run

    # Cancel Run: POST /api/v2/accounts/{account_id}/runs/{run_id}/cancel/
    def cancel_run(self, run_id: int) -> dict[str, Any]:
        """Ask dbt Cloud to cancel the run; its document as the answer gives it. Retried
        like a GET: cancelling twice is harmless."""
        run: dict[str, Any] = self._json("POST", f"/runs/{run_id}/cancel/", run_id=run_id)
        return run

    # List Run Artifacts: GET /api/v2/accounts/{account_id}/runs/{run_id}/artifacts/
    def list_run_artifacts(self, run_id: int, step: int | None = None) -> list[str]:
        """The paths of the run's artifacts (of its last step, or of step ``step``,
        counted from 1)."""
        paths = self._json("GET", f"/runs/{run_id}/artifacts/", run_id=run_id,
                           query={"step": step} if step is not None else None)
        if not isinstance(paths, list):
            raise DbtCloudError(f"dbt Cloud listed the artifacts of run {run_id} as "
                                f"{type(paths).__name__}, not a list of paths")
        return [str(p) for p in paths]

    # Retrieve Run Artifact: GET /api/v2/accounts/{account_id}/runs/{run_id}/artifacts/{path}
    def get_run_artifact(self, run_id: int, path: str, step: int | None = None) -> bytes:
        """The artifact ``path`` (``manifest.json``, ``run_results.json``...) as bytes."""
        quoted = urllib.parse.quote(path.lstrip("/"), safe="/")
        return self._request("GET", f"/runs/{run_id}/artifacts/{quoted}", run_id=run_id,
                             query={"step": step} if step is not None else None)

    def get_run_artifact_json(self, run_id: int, path: str,
                              step: int | None = None) -> dict[str, Any]:
        """A JSON artifact, parsed."""
        raw = self.get_run_artifact(run_id, path, step)
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise DbtCloudError(f"artifact {path} of dbt Cloud run {run_id} is not JSON: "
                                f"{exc}") from None
        if not isinstance(value, dict):
            raise DbtCloudError(f"artifact {path} of dbt Cloud run {run_id} is not a JSON object")
        return value

    # --- plumbing ---

    def _json(self, method: str, path: str, *, body: dict[str, Any] | None = None,
              query: Mapping[str, Any] | None = None, run_id: int | None = None,
              retry_on: frozenset[int] = _RETRYABLE) -> Any:
        raw = self._request(method, path, body=body, query=query, run_id=run_id,
                            retry_on=retry_on)
        try:
            envelope = json.loads(raw)
            return envelope["data"]
        except (ValueError, TypeError, KeyError):
            raise DbtCloudError(
                f"dbt Cloud answered {method} {self._path(path)} with something other than a "
                "{'data': ..., 'status': ...} envelope; is the domain of the credentials "
                "block a dbt Cloud access URL?") from None

    def _path(self, path: str) -> str:
        return urllib.parse.urlsplit(self._api + path).path

    def _request(self, method: str, path: str, *, body: dict[str, Any] | None = None,
                 query: Mapping[str, Any] | None = None, run_id: int | None = None,
                 retry_on: frozenset[int] = _RETRYABLE) -> bytes:
        url = self._api + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        token = self._credentials.api_key.get_secret_value()
        headers = {"Accept": "application/json", "Authorization": f"Token {token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with _OPENER.open(request, timeout=self._timeout) as response:
                    payload: bytes = response.read()
                    return payload
            except urllib.error.HTTPError as exc:
                status, retry_after, detail = exc.code, exc.headers.get("Retry-After"), exc.read()
                exc.close()
                if status in retry_on and attempt < self._max_retries:
                    self._wait(attempt, retry_after, method, path, status)
                    attempt += 1
                    continue
                raise self._error(method, path, status=status, run_id=run_id, detail=detail,
                                  token=token) from None
            except (urllib.error.URLError, OSError) as exc:
                # No answer: a GET (or a cancel) can be sent again; a trigger cannot
                # know whether it queued a run.
                if method == "GET" and attempt < self._max_retries:
                    self._wait(attempt, None, method, path, None)
                    attempt += 1
                    continue
                reason = getattr(exc, "reason", exc)
                raise DbtCloudHTTPError(
                    _mask(f"dbt Cloud {method} {self._path(path)} got no answer from "
                          f"{self._credentials.base_url}: {reason}", token),
                    method=method, path=self._path(path), status=None, run_id=run_id) from None

    def _wait(self, attempt: int, retry_after: str | None, method: str, path: str,
              status: int | None) -> None:
        delay = _retry_after(retry_after, time.time())
        if delay is None:
            delay = min(self._backoff * 2 ** attempt, self._max_backoff)
        delay = min(delay, _MAX_RETRY_AFTER_SECONDS)
        _log.warning("dbt Cloud %s %s answered %s; retrying in %.1f s (retry %d of %d)",
                     method, self._path(path), status if status else "nothing", delay,
                     attempt + 1, self._max_retries)
        self._sleep(delay)

    def _error(self, method: str, path: str, *, status: int, run_id: int | None,
               detail: bytes, token: str) -> DbtCloudHTTPError:
        message = ""
        try:
            envelope_status = json.loads(detail).get("status") or {}
            message = envelope_status.get("user_message") or envelope_status.get(
                "developer_message") or ""
        except (ValueError, AttributeError):
            pass
        hint = {
            401: "check the api_key of the dbt Cloud credentials block",
            403: "the token lacks a permission (a Job Admin or Job Runner service token "
                 "can trigger and read runs)",
            404: "check account_id, the job or run id, and the domain of the credentials block",
        }.get(status, "")
        if 300 <= status < 400:
            hint = ("it redirected to another host, where the token is not sent: set the "
                    "domain of the credentials block to the account's access URL")
        about = f" (run {run_id})" if run_id is not None else ""
        text = (f"dbt Cloud {method} {self._path(path)}{about} answered HTTP {status}"
                + (f": {message}" if message else "") + (f"; {hint}" if hint else ""))
        return DbtCloudHTTPError(_mask(text, token), method=method, path=self._path(path),
                                 status=status, run_id=run_id)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the same scheme, host and port.

    urllib copies a request's headers, ``Authorization`` included, onto the redirected
    request wherever it goes; a redirect elsewhere is not followed, so the token is never
    sent to another origin (the 3xx becomes the error).
    """

    def redirect_request(  # noqa: PLR0917 - urllib calls it with these, positionally
            self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects())


def _mask(text: str, token: str) -> str:
    """``text`` without the token, even where the block's redaction was not registered
    (a token under 4 characters, a client built from an unregistered value)."""
    return redact(text.replace(token, "********") if token else text)


# --- waiting -----------------------------------------------------------------------------


def wait_for_job_run(client: DbtCloudClient, run_id: int, *, timeout_seconds: float,
                     poll_interval_seconds: float,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll Retrieve Run until the run is Success, Error or Cancelled; its last document.

    Raises :class:`DbtCloudJobRunTimedOut` (``cancelled=False``) when ``timeout_seconds``
    pass first; cancelling is the caller's choice (:func:`run_dbt_cloud_job` does).
    """
    deadline = clock() + timeout_seconds
    while True:
        run = client.get_run(run_id)
        status = DbtCloudJobRunStatus.of(run)
        if status.is_terminal:
            return run
        remaining = deadline - clock()
        if remaining <= 0:
            raise DbtCloudJobRunTimedOut(
                f"dbt Cloud run {run_id} did not finish within {timeout_seconds:g} s "
                f"(last status {status.name.title()})", run_id=run_id,
                timeout_seconds=timeout_seconds, cancelled=False)
        sleep(min(poll_interval_seconds, remaining))


# --- the flow ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Artifacts:
    manifest: dict[str, Any]
    run_results: dict[str, Any]


def _fetch_artifacts(client: DbtCloudClient, run_id: int,
                     step: int | None) -> _Artifacts | None:
    """manifest.json and run_results.json of the run, or ``None`` when it has not both
    (a run that failed before dbt ran)."""
    try:
        paths = set(client.list_run_artifacts(run_id, step))
    except DbtCloudHTTPError as exc:
        if exc.status == 404:
            return None
        raise
    if not {"manifest.json", "run_results.json"} <= paths:
        return None
    return _Artifacts(manifest=client.get_run_artifact_json(run_id, "manifest.json", step),
                      run_results=client.get_run_artifact_json(run_id, "run_results.json", step))


def _report(artifacts: _Artifacts, run_id: int) -> DbtReport:
    return report_results(artifacts.manifest, artifacts.run_results,
                          artifact_key=f"dbt-cloud-run-{run_id}", tags=("dbt-cloud",))


def _describe(run: Mapping[str, Any]) -> str:
    parts = [f"dbt Cloud run {run['id']}"]
    if run.get("job_definition_id") is not None:
        parts.append(f"of job {run['job_definition_id']}")
    text = " ".join(parts)
    if run.get("href"):
        text += f" ({run['href']})"
    return text


@flow(name="dbt-cloud-job-run")
def run_dbt_cloud_job(
    credentials: DbtCloudCredentials,
    job_id: int,
    *,
    options: TriggerJobRunOptions | None = None,
    timeout_seconds: float = 900.0,
    poll_interval_seconds: float = 10.0,
    artifacts_step: int | None = None,
    report_nodes: bool = True,
) -> dict[str, Any]:
    """Trigger dbt Cloud job ``job_id``, wait for its run, report its nodes; the run's
    final document (Retrieve Run's ``data``).

    A flow: called in a flow it is a subflow, and its nodes are task runs of it.

    * The run is polled every ``poll_interval_seconds``. When ``timeout_seconds`` pass
      first, the run is cancelled (Cancel Run) and :class:`DbtCloudJobRunTimedOut` fails
      the flow, saying whether the cancel was accepted.
    * Once it ends, its ``manifest.json`` and ``run_results.json`` (of the last step, or of
      ``artifacts_step``) are fetched and each node reported as dbt Core's are: a task run,
      an asset with its lineage, a row of the results table. ``report_nodes=False`` skips
      that.
    * A run that ends in Error fails the flow with :class:`DbtCloudJobRunFailed`, after
      its nodes are reported; one cancelled in dbt Cloud with
      :class:`DbtCloudJobRunCancelled`.
    """
    client = credentials.get_client()
    logger = get_run_logger()
    run = client.trigger_job_run(job_id, options)
    run_id: int = run["id"]
    logger.info("Triggered %s", _describe(run))
    try:
        run = wait_for_job_run(client, run_id, timeout_seconds=timeout_seconds,
                               poll_interval_seconds=poll_interval_seconds)
    except DbtCloudJobRunTimedOut as exc:
        raise _cancel_after_timeout(client, exc) from None
    status = DbtCloudJobRunStatus.of(run)
    logger.info("%s ended %s", _describe(run), status.name.title())
    failed_nodes = ""
    if report_nodes:
        artifacts = _fetch_artifacts(client, run_id, artifacts_step)
        if artifacts is None:
            logger.warning("%s has no manifest.json and run_results.json to report",
                           _describe(run))
        else:
            report = _report(artifacts, run_id)
            if report.failed:
                failed_nodes = "; failed: " + ", ".join(n.unique_id for n in report.failed)
    if status is DbtCloudJobRunStatus.ERROR:
        raise DbtCloudJobRunFailed(
            f"{_describe(run)} failed: {run.get('status_message') or 'no message'}"
            f"{failed_nodes}", run)
    if status is DbtCloudJobRunStatus.CANCELLED:
        raise DbtCloudJobRunCancelled(
            f"{_describe(run)} was cancelled in dbt Cloud{failed_nodes}", run)
    return run


def _cancel_after_timeout(client: DbtCloudClient,
                          timeout: DbtCloudJobRunTimedOut) -> DbtCloudJobRunTimedOut:
    try:
        client.cancel_run(timeout.run_id)
    except DbtCloudError as exc:
        return DbtCloudJobRunTimedOut(
            f"{timeout}; cancelling it failed too ({exc}): cancel it in dbt Cloud",
            run_id=timeout.run_id, timeout_seconds=timeout.timeout_seconds, cancelled=False)
    return DbtCloudJobRunTimedOut(
        f"{timeout}; it was cancelled. Raise timeout_seconds if the job needs longer",
        run_id=timeout.run_id, timeout_seconds=timeout.timeout_seconds, cancelled=True)


def trigger_dbt_cloud_job_run_and_wait_for_completion(
    dbt_cloud_credentials: DbtCloudCredentials,
    job_id: int,
    trigger_job_run_options: TriggerJobRunOptions | None = None,
    max_wait_seconds: int = 900,
    poll_frequency_seconds: int = 10,
) -> dict[str, Any]:
    """prefect-dbt's name and parameters for :func:`run_dbt_cloud_job` (a flow there too).

    prefect-dbt's ``retry_filtered_models_attempts`` is not taken: a failed run fails the
    flow, and dbt Cloud's Retry Failed Job is the way to re-run its failed nodes.
    """
    return run_dbt_cloud_job(dbt_cloud_credentials, job_id, options=trigger_job_run_options,
                             timeout_seconds=max_wait_seconds,
                             poll_interval_seconds=poll_frequency_seconds)
