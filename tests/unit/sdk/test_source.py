"""``headwater fetch-source`` (the init container of a Flow with ``spec.source``) and
``headwater execute`` running the fetched code."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
from headwater import contract, runstore
from headwater.source import SourceError, fetch, fetch_bundle, git_environment

FLOW = "from headwater import flow\n\n@flow\ndef hello() -> str:\n    return 'from git'\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com",
                           "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def remote(tmp_path: Path) -> tuple[str, str, str]:
    """A bare repository with ``flows/hello.py``: its URL, the commit tagged ``v1`` and
    main's head after one more commit."""
    bare, work = tmp_path / "r.git", tmp_path / "work"
    bare.mkdir()
    git(bare, "init", "--bare", "-q")
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "flows").mkdir()
    (work / "flows" / "hello.py").write_text(FLOW)
    git(work, "add", "-A")
    git(work, "commit", "-qm", "one")
    git(work, "tag", "v1")
    tagged = git(work, "rev-parse", "HEAD")
    (work / "flows" / "later.py").write_text("X = 1\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "two")
    git(work, "push", "-q", "--tags", "origin", "HEAD:main")
    return bare.as_uri(), tagged, git(work, "rev-parse", "HEAD")


def test_a_tag_is_checked_out_and_recorded_with_its_commit(
        remote: tuple[str, str, str], tmp_path: Path) -> None:
    url, tagged, _ = remote
    record = fetch({"git": {"url": url, "ref": "v1", "path": "flows"}}, tmp_path / "src", None)
    assert record == {"url": url, "ref": "v1", "commit": tagged, "path": "flows"}
    code = tmp_path / "src" / contract.SOURCE_CODE_DIR
    assert (code / "flows" / "hello.py").read_text() == FLOW
    assert not (code / "flows" / "later.py").exists()
    written = json.loads((tmp_path / "src" / contract.SOURCE_RECORD_FILE).read_text())
    assert written == record


def test_a_pinned_commit_wins_over_the_branch_it_came_from(
        remote: tuple[str, str, str], tmp_path: Path) -> None:
    url, tagged, head = remote
    assert tagged != head
    record = fetch({"git": {"url": url, "ref": "main", "commit": tagged}}, tmp_path / "s", None)
    assert (record["ref"], record["commit"]) == ("main", tagged)
    assert not (tmp_path / "s" / "code" / "flows" / "later.py").exists()


def test_credentials_reach_git_as_a_header_and_never_as_an_argument(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "username").write_text("ci")
    (creds / "password").write_text("ghp_s3cr3t\n")
    with git_environment("https://github.com/acme/flows.git", creds) as (env, secrets):
        # only for that host: a redirect elsewhere gets no credentials
        assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
        assert env["GIT_CONFIG_VALUE_0"].startswith("Authorization: Basic ")
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert "ghp_s3cr3t" in secrets
    (creds / "bearerToken").write_text("tok-123")
    with git_environment("https://github.com/acme/flows.git", creds) as (env, _):
        assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Bearer tok-123"


def test_git_sends_the_credentials_to_the_repository_s_host_only(tmp_path: Path) -> None:
    seen: list[str | None] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # git's first request: the ref advertisement
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "username").write_text("ci")
    (creds / "password").write_text("ghp_s3cr3t")
    url = f"http://127.0.0.1:{server.server_address[1]}/acme/flows.git"
    try:
        with pytest.raises(SourceError) as caught:
            fetch({"git": {"url": url, "ref": "main"}}, tmp_path / "s", creds)
    finally:
        server.shutdown()
        server.server_close()
    assert seen
    assert seen[0] == "Basic " + base64.b64encode(b"ci:ghp_s3cr3t").decode()
    assert "ghp_s3cr3t" not in str(caught.value)
    assert str(caught.value).startswith(f"cannot fetch 'main' from {url}")


def test_an_ssh_key_needs_known_hosts_and_is_kept_private(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "sshPrivateKey").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n")
    with pytest.raises(SourceError, match="add key known_hosts"), \
            git_environment("ssh://git@github.com/a/b.git", creds):
        pass
    (creds / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    with git_environment("ssh://git@github.com/a/b.git", creds) as (env, _):
        command = env["GIT_SSH_COMMAND"]
        key = Path(command.split("-i ", 1)[1].split(" ", 1)[0])
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert "StrictHostKeyChecking=yes" in command
    assert not key.exists()  # removed with its temporary directory


def test_the_command_reports_a_failure_without_the_token(
        remote: tuple[str, str, str], tmp_path: Path) -> None:
    url, _, _ = remote
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "password").write_text("ghp_s3cr3t")
    message = tmp_path / "termination-log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({contract.ENV_SOURCE: json.dumps({"git": {"url": url, "ref": "v9"}}),
                contract.ENV_SOURCE_DIR: str(tmp_path / "s"),
                contract.ENV_SOURCE_CREDENTIALS_DIR: str(creds),
                contract.ENV_SUMMARY_PATH: str(message)})
    done = subprocess.run([sys.executable, "-m", "headwater", "fetch-source"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    text = message.read_text()
    assert text.startswith(f"headwater fetch-source: cannot fetch 'v9' from {url}")
    assert "ghp_s3cr3t" not in text + done.stdout + done.stderr


def bundle(tmp_path: Path, members: dict[str, str]) -> tuple[str, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    path = tmp_path / "flow.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path.as_uri(), hashlib.sha256(buffer.getvalue()).hexdigest()


def test_a_bundle_is_unpacked_checked_and_recorded_by_digest(tmp_path: Path) -> None:
    url, digest = bundle(tmp_path, {"hello.py": FLOW})
    record = fetch_bundle({"url": url, "sha256": digest}, tmp_path / "code")
    assert record == {"url": url, "digest": f"sha256:{digest}"}
    assert (tmp_path / "code" / "hello.py").read_text() == FLOW
    with pytest.raises(SourceError, match="not the expected"):
        fetch_bundle({"url": url, "sha256": "0" * 64}, tmp_path / "other")


def test_a_bundle_reaching_outside_its_directory_is_refused(tmp_path: Path) -> None:
    url, _ = bundle(tmp_path, {"../escaped.py": "X = 1\n"})
    with pytest.raises(SourceError, match=r"not a safe \.tar\.gz"):
        fetch_bundle({"url": url}, tmp_path / "code")
    assert not (tmp_path / "escaped.py").exists()


def test_execute_runs_the_fetched_code_and_records_its_commit(
        remote: tuple[str, str, str], tmp_path: Path, headwater_home: Path) -> None:
    url, tagged, _ = remote
    fetch({"git": {"url": url, "ref": "v1", "path": "flows"}}, tmp_path / "src", None)
    store = tmp_path / "store"
    summary = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({contract.ENV_HOME: str(headwater_home), contract.ENV_RUN_STORE: str(store),
                contract.ENV_SOURCE_DIR: str(tmp_path / "src"),
                contract.ENV_ENTRYPOINT: "hello.py:hello",
                contract.ENV_FLOW_RUN_NAME: "hello-1", contract.ENV_NAMESPACE: "ns",
                contract.ENV_SUMMARY_PATH: str(summary)})
    done = subprocess.run([sys.executable, "-m", "headwater", "execute"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == contract.EXIT_COMPLETED, done.stderr
    [attempt] = list((store / "flowruns" / "v1").glob("*/hello-1/1"))
    record = runstore.read_record(str(attempt))
    assert record["source"] == {"url": url, "ref": "v1", "commit": tagged, "path": "flows"}


def test_execute_without_the_fetched_code_crashes_saying_why(
        tmp_path: Path, headwater_home: Path) -> None:
    summary = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({contract.ENV_HOME: str(headwater_home),
                contract.ENV_SOURCE_DIR: str(tmp_path / "empty"),
                contract.ENV_ENTRYPOINT: "hello.py:hello",
                contract.ENV_SUMMARY_PATH: str(summary)})
    done = subprocess.run([sys.executable, "-m", "headwater", "execute"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == contract.EXIT_CRASHED
    decoded = contract.decode_summary(summary.read_text())
    assert decoded["reason"] == "SourceMissing"
    assert "headwater fetch-source" in decoded["message"]
