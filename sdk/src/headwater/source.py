"""Fetched flow code (``Flow.spec.source``): ``headwater fetch-source`` and its reader.

The operator gives a Flow with a ``source`` an init container, named
:data:`~headwater.contract.SOURCE_CONTAINER_NAME`, that runs ``headwater fetch-source``
in the runtime image before the flow container starts. It reads what to fetch from
``HEADWATER_SOURCE`` and writes into the volume ``HEADWATER_SOURCE_DIR`` that both
containers mount:

* ``<dir>/code``: a Git checkout at the resolved commit (with ``git``, which the runtime
  image installs), or an unpacked bundle (with fsspec, as result storage is read);
* ``<dir>/source.json``: what was fetched, ``{"url", "ref", "commit", "path"}`` or
  ``{"url", "digest"}``. The same JSON is the init container's termination message, which
  the operator copies to ``FlowRun.status.source``; ``headwater execute`` copies it into
  the run record.

A run stays reproducible: an operator-pinned ``commit`` (or ``sha256``) in
``HEADWATER_SOURCE`` is fetched exactly, so every retry runs the code of attempt 1.

What it must respect: **no credential leaves the init container.** They come from the
mounted Secret (``HEADWATER_SOURCE_CREDENTIALS_DIR``), reach ``git`` through its
environment (an HTTP header, an SSH key file in a private temporary directory), never
through its arguments or the URL, and every message this module prints or writes has
their values masked. ``git`` itself never prompts (``GIT_TERMINAL_PROMPT=0``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from headwater import contract

GIT_TIMEOUT_SECONDS = 600
"""How long one ``git`` command may take before the fetch is given up."""
DOWNLOAD_CHUNK = 1 << 20


class SourceError(Exception):
    """The code could not be fetched; the message says why and what to do."""


# --- credentials -------------------------------------------------------------------------
def _read_key(directory: Path | None, *names: str) -> str | None:
    if directory is None:
        return None
    for name in names:
        path = directory / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


@contextmanager
def git_environment(url: str, credentials: Path | None) -> Iterator[tuple[dict[str, str],
                                                                         list[str]]]:
    """The environment ``git`` runs with, and the secret values to mask in its output.

    HTTPS: ``username``/``password`` become a Basic ``Authorization`` header,
    ``bearerToken`` a Bearer one, passed as ``http.<scheme>://<host>/.extraHeader``
    (that host only) through git's ``GIT_CONFIG_*`` variables. SSH: ``identity`` (or
    ``sshPrivateKey``) is copied to a private file (ssh refuses keys others can read) and
    ``known_hosts`` is required.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"})
    secrets: list[str] = []
    username = _read_key(credentials, "username")
    password = _read_key(credentials, "password")
    token = _read_key(credentials, "bearerToken")
    identity = _read_key(credentials, "identity", "sshPrivateKey")
    known_hosts = _read_key(credentials, "known_hosts")
    with tempfile.TemporaryDirectory(prefix="headwater-git-") as scratch:
        header = None
        if token:
            secrets.append(token.strip())
            header = f"Authorization: Bearer {token.strip()}"
        elif password is not None:
            pair = f"{(username or 'git').strip()}:{password.strip()}"
            secrets.extend([password.strip(), base64.b64encode(pair.encode()).decode()])
            header = f"Authorization: Basic {base64.b64encode(pair.encode()).decode()}"
        if header is not None and url.startswith(("https://", "http://")):
            secrets.append(header)
            # Scoped to the repository's host (git's http.<url>.* matching), so a
            # redirect to another host never receives the credentials.
            parts = urlsplit(url)
            env.update({"GIT_CONFIG_COUNT": "1",
                        "GIT_CONFIG_KEY_0": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
                        "GIT_CONFIG_VALUE_0": header})
        if identity is not None:
            if known_hosts is None:
                raise SourceError(
                    "the credentials Secret has an SSH key (identity) but no known_hosts; "
                    "add key known_hosts (e.g. the output of `ssh-keyscan github.com`) so "
                    "the server's identity can be checked")
            key_path = Path(scratch) / "identity"
            key_path.write_text(identity if identity.endswith("\n") else identity + "\n",
                                encoding="utf-8")
            key_path.chmod(0o600)
            hosts_path = Path(scratch) / "known_hosts"
            hosts_path.write_text(known_hosts, encoding="utf-8")
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {key_path} -o IdentitiesOnly=yes -o UserKnownHostsFile={hosts_path} "
                "-o StrictHostKeyChecking=yes -o BatchMode=yes")
        yield env, secrets


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --- git -----------------------------------------------------------------------------
def _git(args: list[str], cwd: Path, env: Mapping[str, str], secrets: list[str],
         what: str) -> str:
    git = shutil.which("git")
    if git is None:
        raise SourceError("git is not installed in this image; use the Headwater runtime "
                          "image (it has git) or install git in yours")
    try:
        done = subprocess.run([git, *args], cwd=cwd, env=dict(env), capture_output=True,
                              text=True, timeout=GIT_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise SourceError(f"{what}: git took longer than {GIT_TIMEOUT_SECONDS}s") from None
    if done.returncode != 0:
        detail = mask((done.stderr or done.stdout).strip(), secrets)[-1500:]
        raise SourceError(f"{what}: {detail or f'git exited {done.returncode}'}")
    return done.stdout.strip()


def fetch_git(spec: Mapping[str, Any], dest: Path, credentials: Path | None) -> dict[str, Any]:
    """Check out ``spec["commit"]`` (pinned) or ``spec["ref"]`` of ``spec["url"]`` into
    ``dest``; the record of what was checked out."""
    url, ref = str(spec["url"]), str(spec["ref"])
    pinned = spec.get("commit")
    wanted = str(pinned) if pinned else ref
    dest.mkdir(parents=True, exist_ok=True)
    with git_environment(url, credentials) as (env, secrets):
        _git(["init", "--quiet", str(dest)], dest, env, secrets, "git init")
        _git(["fetch", "--quiet", "--depth", "1", "--no-tags", "--", url, wanted], dest, env,
             secrets, f"cannot fetch {wanted!r} from {url}; check that the ref exists "
             "(source.git.ref) and the credentials (source.git.credentials) grant access")
        commit = _git(["rev-parse", "--verify", "FETCH_HEAD^{commit}"], dest, env, secrets,
                      f"{wanted!r} of {url} is not a commit")
        _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit],
             dest, env, secrets, f"cannot check out {commit}")
    if pinned and commit != pinned:
        raise SourceError(f"{url} gave commit {commit} for the pinned {pinned}")
    record: dict[str, Any] = {"url": url, "ref": ref, "commit": commit}
    if spec.get("path"):
        record["path"] = str(spec["path"])
    return record


# --- bundles -------------------------------------------------------------------------
def fetch_bundle(spec: Mapping[str, Any], dest: Path) -> dict[str, Any]:
    """Download ``spec["url"]`` with fsspec, check its SHA-256, unpack it into ``dest``."""
    url = str(spec["url"])
    expected = spec.get("sha256")
    try:
        import fsspec
    except ImportError:
        raise SourceError(f"bundle {url} needs fsspec: install 'headwater[fsspec]' (plus "
                          "the filesystem's driver, e.g. s3fs) in the image") from None
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as buffer:
        try:
            with fsspec.open(url, "rb") as handle:
                while chunk := handle.read(DOWNLOAD_CHUNK):
                    digest.update(chunk)
                    buffer.write(chunk)
        except FileNotFoundError:
            raise SourceError(f"bundle {url} does not exist; check source.bundle.url") from None
        except Exception as exc:  # driver errors: permissions, endpoints, missing drivers
            raise SourceError(f"cannot read bundle {url}: {type(exc).__name__}: {exc}; check "
                              "the pod's storage credentials (runTemplate.env/envFrom)") from None
        found = digest.hexdigest()
        if expected and found != expected:
            raise SourceError(f"bundle {url} has SHA-256 {found}, not the expected {expected}: "
                              "it changed since the run started, or source.bundle.sha256 is "
                              "out of date")
        buffer.seek(0)
        _unpack(buffer, dest, url)
    return {"url": url, "digest": f"sha256:{found}"}


def _unpack(buffer: Any, dest: Path, url: str) -> None:
    if not hasattr(tarfile, "data_filter"):  # Python < 3.11.4 cannot unpack safely
        raise SourceError("unpacking a bundle safely needs Python 3.11.4 or later")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=buffer, mode="r:gz") as archive:
            archive.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise SourceError(f"bundle {url} is not a safe .tar.gz ({exc}); build it with "
                          "`tar -czf flow.tar.gz -C <dir> .`") from None


# --- the command ---------------------------------------------------------------------
def fetch(spec: Mapping[str, Any], directory: Path,
          credentials: Path | None) -> dict[str, Any]:
    """Fetch ``spec`` (the ``HEADWATER_SOURCE`` object) into ``directory``; the record."""
    code = directory / contract.SOURCE_CODE_DIR
    if code.exists():  # a restarted init container starts over
        shutil.rmtree(code)
    if "git" in spec:
        record = fetch_git(spec["git"], code, credentials)
    elif "bundle" in spec:
        record = fetch_bundle(spec["bundle"], code)
    else:
        raise SourceError(f"{contract.ENV_SOURCE} names neither git nor bundle")
    (directory / contract.SOURCE_RECORD_FILE).write_text(json.dumps(record, sort_keys=True),
                                                         encoding="utf-8")
    return record


def _termination_path() -> str | None:
    explicit = os.environ.get(contract.ENV_SUMMARY_PATH)
    if explicit:
        return explicit
    path = contract.TERMINATION_MESSAGE_PATH
    return path if os.path.exists(path) else None


def _report(text: str) -> None:
    path = _termination_path()
    if path is not None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text[-contract.TERMINATION_MESSAGE_MAX_BYTES:])


def main() -> int:
    """``headwater fetch-source``: 0 and the record as the termination message, or 1 and
    why not."""
    env = os.environ
    try:
        spec = json.loads(env.get(contract.ENV_SOURCE) or "null")
        if not isinstance(spec, dict):
            raise SourceError(f"{contract.ENV_SOURCE} is not set to a JSON object")
        directory = Path(env.get(contract.ENV_SOURCE_DIR) or contract.SOURCE_DIR_DEFAULT)
        creds = env.get(contract.ENV_SOURCE_CREDENTIALS_DIR)
        record = fetch(spec, directory, Path(creds) if creds else None)
    except (SourceError, json.JSONDecodeError, OSError) as exc:
        message = f"headwater fetch-source: {exc}"
        sys.stderr.write(message + "\n")
        _report(message)
        return 1
    text = json.dumps(record, sort_keys=True)
    sys.stdout.write(f"headwater fetch-source: fetched {text}\n")
    _report(text)
    return 0


# --- the flow container's side -------------------------------------------------------
def fetched_source() -> tuple[Path, dict[str, Any]] | None:
    """Where the fetched code is and its record, when this pod has a ``source``.

    ``None`` when ``HEADWATER_SOURCE_DIR`` is unset (the code is in the image);
    :class:`SourceError` when it is set but nothing was fetched there.
    """
    root = os.environ.get(contract.ENV_SOURCE_DIR)
    if not root:
        return None
    record_path = Path(root) / contract.SOURCE_RECORD_FILE
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"no fetched code at {root} ({exc}); the init container "
                          f"{contract.SOURCE_CONTAINER_NAME!r} must run `headwater "
                          "fetch-source` first") from None
    code = Path(root) / contract.SOURCE_CODE_DIR
    if record.get("path"):
        code = code / str(record["path"])
    if not code.is_dir():
        raise SourceError(f"source.git.path {record.get('path')!r} is not a directory of "
                          f"{record.get('url')} at {record.get('commit')}")
    return code, record


def enter(code: Path) -> None:
    """Run from ``code``: the working directory and the first import path."""
    os.chdir(code)
    sys.path.insert(0, str(code))
