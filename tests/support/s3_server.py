"""A real S3-compatible HTTP server for the tests: moto's server mode in a child process.

The storage tests (result storage, the run store) talk to it over HTTP through s3fs and
botocore exactly as a flow-run pod talks to S3: nothing in the SDK knows it is moto, and
nothing in fsspec is mocked. The server runs in its own process (this file run as a
script), so moto is never imported into the test process and its in-process mocks cannot
intercept anything there.

Fixtures (import both names into a folder's ``conftest.py``:
``from s3_server import s3, s3_server  # noqa: F401``):

``s3_server``
    Session-scoped :class:`S3Server`: the server on ``127.0.0.1`` and a free port, with one
    bucket (:data:`BUCKET`) created. ``endpoint``, ``bucket``, ``env`` (what a process
    needs to reach it), ``client()`` (a botocore S3 client for checks that must not go
    through fsspec), ``object_keys(prefix)``. The server's own log is ``log_path``.
``s3``
    Function-scoped :class:`S3Store`: a prefix unique to the test in that bucket, and this
    test process pointed at the server (``monkeypatch``: the ``env`` below, any
    ``AWS_PROFILE``/``AWS_SESSION_TOKEN``/``AWS_ENDPOINT_URL_S3`` removed, ``~/.aws`` not
    read). ``root`` is ``s3://<bucket>/<prefix>``; ``env`` the variables a child process
    needs; ``child_env(**extra)`` a whole environment for ``subprocess`` (this process's,
    without ``AWS_*``/``FSSPEC_*``/``HEADWATER_*``, plus ``env`` and ``extra``);
    ``object_keys()`` the object keys under the prefix, relative to it, read with botocore.
    s3fs's instance cache and ``headwater.results._storage_cache`` are cleared before and
    after, so no filesystem object (and no endpoint) leaks from one test to the next.

The endpoint reaches s3fs through ``AWS_ENDPOINT_URL``, the AWS SDKs' own variable
(botocore >= 1.31, so aiobotocore and s3fs): it is read whenever a client is created, in
this process and in a child. fsspec's ``FSSPEC_S3_ENDPOINT_URL`` works in a child too, but
fsspec reads its ``FSSPEC_*`` variables once, at import, so setting it in a running test
process does nothing.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BUCKET = "headwater-test"
"""The one bucket the session's server holds (every test has its own prefix in it)."""
REGION = "us-east-1"
ACCESS_KEY = "headwater-test-key"
"""Dummy credentials: moto accepts any; they only have to be present."""
SECRET_KEY = "headwater-test-secret"
START_TIMEOUT = 60.0
"""Seconds the server may take to import moto and bind (about 1 s on an idle machine)."""

# The variables that could point a process at another S3 or other credentials.
_CLEARED_PREFIXES = ("AWS_", "FSSPEC_S3")


@dataclass(frozen=True)
class S3Server:
    """The running server: its endpoint, its bucket and how to reach it."""

    endpoint: str
    bucket: str
    log_path: Path
    env: Mapping[str, str] = field(repr=False)

    def client(self) -> Any:
        """A botocore S3 client for this server (explicit settings: no environment)."""
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def object_keys(self, prefix: str) -> list[str]:
        """Every object key in the bucket that starts with ``prefix``, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)


@dataclass(frozen=True)
class S3Store:
    """One test's prefix in the server's bucket."""

    server: S3Server
    prefix: str

    @property
    def endpoint(self) -> str:
        """The server's URL (``http://127.0.0.1:<port>``)."""
        return self.server.endpoint

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self.server.bucket

    @property
    def root(self) -> str:
        """``s3://<bucket>/<prefix>``: a storage root no other test uses."""
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def env(self) -> Mapping[str, str]:
        """The variables a process needs to reach the server."""
        return self.server.env

    def child_env(self, **extra: str) -> dict[str, str]:
        """A whole environment for a child process that reaches the server.

        This process's environment without ``AWS_*``, ``FSSPEC_*`` and ``HEADWATER_*``
        (so nothing of the developer's or the test's leaks in), plus :attr:`env` and
        ``extra``.
        """
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "FSSPEC_", "HEADWATER_"))}
        env.update(self.env)
        env.update(extra)
        return env

    def object_keys(self) -> list[str]:
        """The object keys under this prefix, relative to it (read with botocore)."""
        start = f"{self.prefix}/"
        return [key.removeprefix(start) for key in self.server.object_keys(start)]


def server_env(endpoint: str, home: Path) -> dict[str, str]:
    """What a process needs to reach the server at ``endpoint``, and nothing else.

    ``AWS_CONFIG_FILE`` and ``AWS_SHARED_CREDENTIALS_FILE`` name files under ``home``
    that do not exist, so a developer's ``~/.aws`` is never read; the instance metadata
    service is never asked for credentials.
    """
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def clear_fsspec_caches() -> None:
    """Forget every cached s3fs filesystem and every resolved headwater storage."""
    import s3fs
    from headwater import results

    s3fs.S3FileSystem.clear_instance_cache()
    results._storage_cache.clear()


def _read_port(proc: subprocess.Popen[str], log_path: Path) -> int:
    """The port the server process prints once it listens; fails the session if not."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=START_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if not line.strip().isdigit():
        proc.kill()
        proc.wait()
        log = log_path.read_text(errors="replace")[-4000:]
        pytest.fail(f"the moto S3 server did not start within {START_TIMEOUT:.0f}s "
                    f"(printed {line!r}); its log ({log_path}):\n{log}", pytrace=False)
    return int(line)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server in a child process for the whole session, with :data:`BUCKET`."""
    workdir = tmp_path_factory.mktemp("s3-server")
    log_path = workdir / "moto.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True, cwd=workdir,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    try:
        port = _read_port(proc, log_path)
        endpoint = f"http://127.0.0.1:{port}"
        server = S3Server(endpoint, BUCKET, log_path, server_env(endpoint, workdir))
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the server exits when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch,
       request: pytest.FixtureRequest) -> Iterator[S3Store]:
    """A prefix of the server's bucket for this test, with this process pointed at it."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    slug = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40].strip("-")
    store = S3Store(s3_server, f"{slug}-{uuid.uuid4().hex[:12]}")
    clear_fsspec_caches()
    yield store
    clear_fsspec_caches()


def _serve() -> None:
    """Run the server until stdin closes; print the bound port on stdout first."""
    import logging

    from moto.server import ThreadedMotoServer

    # One line per request is noise; warnings and tracebacks still reach the log file.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    try:
        sys.stdin.read()  # EOF: the test session ended (or died)
    finally:
        server.stop()


if __name__ == "__main__":
    _serve()


class BrokenEndpoint:
    """A TCP listener on 127.0.0.1 standing in for an S3 endpoint that is down, observable
    without timing anything: ``reset`` closes every connection it accepts, ``silent`` holds
    each one open and never answers (a hung load balancer). ``connections`` counts them."""

    def __init__(self, mode: str) -> None:
        if mode not in ("reset", "silent"):
            raise ValueError(f"mode must be 'reset' or 'silent', not {mode!r}")
        self.mode = mode
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)  # so the loop sees ``_stop`` (close() wakes no accept)
        self.port: int = self._socket.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The endpoint's URL (``AWS_ENDPOINT_URL``)."""
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            if self.mode == "reset":
                conn.close()
            else:
                self._held.append(conn)

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self._stop.set()
        self._thread.join()
        for conn in self._held:
            conn.close()
        self._socket.close()


@pytest.fixture
def broken_endpoint(s3: S3Store, monkeypatch: pytest.MonkeyPatch,
                    request: pytest.FixtureRequest) -> Iterator[BrokenEndpoint]:
    """``s3``, but this process's S3 endpoint is a :class:`BrokenEndpoint`; the mode is
    the test's ``@pytest.mark.parametrize("broken_endpoint", [...], indirect=True)``
    parameter (``reset`` by default)."""
    server = BrokenEndpoint(getattr(request, "param", "reset"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    clear_fsspec_caches()
    yield server
    server.close()
