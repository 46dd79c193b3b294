"""A dbt Cloud Administrative API v2 stand-in on a real socket, for the dbt Cloud tests.

It implements exactly the endpoints headwater_dbt.cloud calls, with the request and
answer shapes of dbt Cloud's published OpenAPI spec (openapi-v2.yaml in
github.com/dbt-labs/dbt-cloud-openapi-spec): JSON answers are envelopes
``{"data": ..., "status": {"code", "is_success", "user_message", "developer_message"}}``.

* ``POST /api/v2/accounts/{account_id}/jobs/{job_id}/run/`` (Trigger Job Run): the body
  must be a JSON TriggerRunRequestRequest — ``cause`` required, no unknown field — else
  400; answers the new run (status 1, Queued).
* ``GET /api/v2/accounts/{account_id}/runs/{id}/`` (Retrieve Run): each call moves the
  run one step along its job's script of statuses (the last one stays).
* ``POST /api/v2/accounts/{account_id}/runs/{run_id}/cancel/`` (Cancel Run): the run is
  Cancelled (30) from then on; answers the run.
* ``GET /api/v2/accounts/{account_id}/runs/{run_id}/artifacts/`` (List Run Artifacts):
  the files of the job's artifact directory once the run has ended, else ``[]``.
* ``GET /api/v2/accounts/{account_id}/runs/{run_id}/artifacts/{remainder}`` (Retrieve Run
  Artifact): the file itself, or 404.

Every request must carry ``Authorization: Token <token>`` (or ``Bearer``, which the API
documents as equivalent), else 401; another account is 404, as is any other path.
``faults`` injects answers (429 with ``Retry-After``, 503...) before the next matching
request. ``requests`` records every request, headers and body included.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

TRIGGER_FIELDS = frozenset({
    "cause", "git_sha", "git_branch", "azure_pull_request_id", "github_pull_request_id",
    "gitlab_merge_request_id", "non_native_pull_request_id", "schema_override",
    "dbt_version_override", "threads_override", "target_name_override",
    "generate_docs_override", "timeout_seconds_override", "steps_override",
})
"""The properties of the spec's TriggerRunRequestRequest."""

_HUMAN = {1: "Queued", 2: "Starting", 3: "Running", 10: "Success", 20: "Error",
          30: "Cancelled"}


@dataclass
class Job:
    """What a run of this job does: its status on successive polls, the artifacts it
    leaves, its status message."""

    statuses: list[int]
    artifacts: Path | None = None
    status_message: str | None = None


@dataclass
class Run:
    id: int
    job_id: int
    job: Job
    trigger: dict[str, Any]
    polls: int = 0
    cancelled: bool = False

    @property
    def status(self) -> int:
        if self.cancelled:
            return 30
        return self.job.statuses[min(self.polls, len(self.job.statuses) - 1)]


@dataclass
class Fault:
    """Answer the next ``method`` request whose path matches ``path`` with ``status``."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "injected"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class DbtCloudServer:
    """Run with ``with DbtCloudServer(token, account_id) as server:``; ``server.url`` is
    its base URL (a credentials block's ``domain``)."""

    def __init__(self, token: str, account_id: int) -> None:
        self.token = token
        self.account_id = account_id
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, Run] = {}
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._next_run = 70_000_001
        server = self
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> DbtCloudServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def calls(self) -> list[str]:
        """``METHOD path`` of every request, in order."""
        return [f"{r.method} {r.path}" for r in self.requests]

    # --- the endpoints ---

    def answer(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append(Request(method, path, query, headers, body))
            for fault in self.faults:
                if fault.method == method and re.fullmatch(fault.path, path):
                    self.faults.remove(fault)
                    return _envelope(fault.status, None, fault.message, fault.headers)
            if headers.get("authorization") not in (f"Token {self.token}",
                                                    f"Bearer {self.token}"):
                return _envelope(401, None, "Invalid token.")
            return self._route(method, path, body)

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        match = re.fullmatch(r"/api/v2/accounts/(\d+)/(.*)", path)
        if not match or int(match[1]) != self.account_id:
            return _envelope(404, None, "Not found.")
        rest = match[2]
        if method == "POST" and (m := re.fullmatch(r"jobs/(\d+)/run/", rest)):
            return self._trigger(int(m[1]), body)
        m = re.fullmatch(r"runs/(\d+)/(.*)", rest)
        run = self.runs.get(int(m[1])) if m else None
        if m is None or run is None:
            return _envelope(404, None, "Not found.")
        action = m[2]
        if method == "GET" and action == "":
            run.polls += 1
            return _envelope(200, self._document(run))
        if method == "POST" and action == "cancel/":
            run.cancelled = True
            return _envelope(200, self._document(run))
        ended = run.status >= 10
        directory = run.job.artifacts
        if method == "GET" and action == "artifacts/":
            files = sorted(p.name for p in directory.iterdir()) if ended and directory else []
            return _envelope(200, files)
        if method == "GET" and action.startswith("artifacts/") and ended and directory:
            file = directory / action.removeprefix("artifacts/")
            if file.parent == directory and file.is_file():
                return 200, {"Content-Type": "application/json"}, file.read_bytes()
        return _envelope(404, None, "Not found.")

    def _trigger(self, job_id: int, body: bytes) -> tuple[int, dict[str, str], bytes]:
        job = self.jobs.get(job_id)
        if job is None:
            return _envelope(404, None, "Job not found.")
        try:
            request = json.loads(body)
        except ValueError:
            return _envelope(400, None, "The body is not JSON.")
        if not isinstance(request, dict) or not request.get("cause"):
            return _envelope(400, None, "cause: This field is required.")
        unknown = set(request) - TRIGGER_FIELDS
        if unknown:
            return _envelope(400, None, f"Unknown fields: {sorted(unknown)}")
        run = Run(id=self._next_run, job_id=job_id, job=job, trigger=request)
        self._next_run += 1
        self.runs[run.id] = run
        return _envelope(200, self._document(run))

    def _document(self, run: Run) -> dict[str, Any]:
        """A RunResponse with the fields a client reads (the spec's RunResponse)."""
        status = run.status
        return {
            "id": run.id, "trigger_id": run.id + 1000, "account_id": self.account_id,
            "environment_id": 11, "project_id": 12, "job_definition_id": run.job_id,
            "job_id": run.job_id, "status": status, "status_humanized": _HUMAN[status],
            "status_message": run.job.status_message if status == 20 else None,
            "in_progress": status < 10, "is_complete": status >= 10,
            "is_success": status == 10, "is_error": status == 20,
            "is_cancelled": status == 30, "git_branch": run.trigger.get("git_branch"),
            "created_at": "2026-12-07 23:00:00.000000+00:00",
            "updated_at": "2026-12-07 23:00:01.000000+00:00",
            "trigger": {"cause": run.trigger["cause"],
                        "steps_override": run.trigger.get("steps_override"),
                        "schema_override": run.trigger.get("schema_override")},
            "href": f"{self.url}/deploy/{self.account_id}/projects/12/runs/{run.id}/",
        }


def _envelope(code: int, data: Any, message: str = "Success!",
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    body = {"data": data, "status": {"code": code, "is_success": code < 400,
                                     "user_message": message, "developer_message": ""}}
    return code, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _handler(server: DbtCloudServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            code, answer_headers, payload = server.answer(
                self.command, url.path, parse_qs(url.query), headers, body)
            self.send_response(code)
            for name, value in answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads server.requests

    return Handler
