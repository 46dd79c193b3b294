"""Flows whose code is fetched by an init container (Flow.spec.source), run for real.

``headwater dev`` itself (the sandbox session, from manifests) and, for finer control,
the emulator, the operator and the sandbox's process kubelet (which runs init containers
as a kubelet does) run a Flow whose code is in a local bare Git repository, standing in
for the remote, made in the test with the ``git`` binary; or in a tarball in a real
S3-compatible server (moto's server mode).

* A Flow at a tag runs the tag's code, not the branch head; the commit the tag resolved
  to is in ``FlowRun.status.source`` and in the run record.
* A retry runs the commit attempt 1 resolved, even after the branch moved.
* A ref that does not exist ends the run ``Crashed``/``SourceFetchFailed`` with git's
  reason, and the flow container never starts.
* A bundle in S3 is unpacked and its digest recorded.
* Credentials from a Secret reach git (a local HTTP server sees the header) and appear
  nowhere in the FlowRun, its Events, the pod or its log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import io
import json
import subprocess
import tarfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from headwater import contract, runstore
from headwater_dev import process_kubelet as pk
from headwater_dev import sandbox as sb
from headwater_dev.emulator import BackgroundEmulator
from headwater_dev.harness import OperatorHarness, wait_for
from headwater_operator import kube as kube_module
from s3_server import S3Store

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "sdk/src/headwater/data/run-record.schema.json").read_text())
TERMINAL = ("Completed", "Failed", "Crashed", "Cancelled")

FLOW_CODE = '''
from headwater import flow, get_run_logger
from helpers import VERSION


@flow
def greet(name: str = "world") -> str:
    get_run_logger().info("hello %s from %s", name, VERSION)
    if VERSION == "broken":
        raise RuntimeError("this version is broken")
    return VERSION
'''


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=t@example.com",
                           "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


class Remote:
    """A bare repository (the "remote") and a clone to commit to it from."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "flows.git"
        self.work = root / "work"
        self.bare.mkdir()
        git(self.bare, "init", "--bare", "--quiet")
        git(root, "clone", "--quiet", str(self.bare), str(self.work))
        (self.work / "flows").mkdir()
        (self.work / "flows" / "greet.py").write_text(FLOW_CODE)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(self, version: str, *, tag: str | None = None) -> str:
        """Commit ``helpers.VERSION = version`` on main, push it; the commit."""
        (self.work / "flows" / "helpers.py").write_text(f"VERSION = {version!r}\n")
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", version)
        if tag:
            git(self.work, "tag", "-a", tag, "-m", tag)  # annotated: resolves to its commit
        git(self.work, "push", "--quiet", "--tags", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
async def process_kubelet(emulator: BackgroundEmulator,
                          tmp_path: Path) -> AsyncIterator[pk.ProcessKubelet]:
    """The sandbox's kubelet; list it after ``s3`` so its pods get that fixture's
    variables (the runtime copies this process's environment when it is made)."""
    runtime = pk.LocalRuntime(workdir=REPO, state_dir=tmp_path / "kubelet")
    running = pk.ProcessKubelet(emulator.url, runtime, log_sink=emulator.append_log)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.stop()
        await task


async def create_run(kube: kube_module.Kube, namespace: str, name: str,
                     source: dict[str, Any], **deployment: Any) -> None:
    await kube.create(kube_module.FLOWS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Flow", "metadata": {"name": name},
        "spec": {"image": "example/runtime:1", "entrypoint": "greet.py:greet",
                 "source": source}}, namespace=namespace)
    await kube.create(kube_module.DEPLOYMENTS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": name}, "spec": {"flowRef": {"name": name}, **deployment},
    }, namespace=namespace)
    await kube.create(kube_module.FLOWRUNS, {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun", "metadata": {"name": name},
        "spec": {"deploymentRef": {"name": name}, "parameters": {"name": "Ada"}},
    }, namespace=namespace)


async def finished(emulator: BackgroundEmulator, namespace: str, run: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        obj = emulator.object("flowruns", run, namespace) or {}
        return obj if (obj.get("status") or {}).get("phase") in TERMINAL else None
    found: dict[str, Any] = await wait_for(done, timeout=90, message=f"FlowRun {run} ended")
    return found


def events(emulator: BackgroundEmulator, namespace: str, run: str,
           reason: str) -> list[dict[str, Any]]:
    return [e for e in emulator.objects("events", namespace)
            if e["involvedObject"]["name"] == run and e["reason"] == reason]


async def test_a_flow_from_git_runs_the_tag_s_commit_and_records_it(  # noqa: PLR0917
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, s3: S3Store, process_kubelet: pk.ProcessKubelet,
        tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    tagged = remote.commit("v1-code", tag="v1.0.0")
    remote.commit("head-code")  # main moves on; the Flow pins the tag
    await create_run(kube, namespace, "greet", {"git": {
        "url": remote.url, "ref": "v1.0.0", "path": "flows"}}, runStore={"url": s3.root})
    run = await finished(emulator, namespace, "greet")

    assert run["status"]["phase"] == "Completed", run["status"]
    assert run["status"]["source"] == {"url": remote.url, "ref": "v1.0.0",
                                       "commit": tagged, "path": "flows"}
    log = emulator.pod_log(namespace, "greet-1")
    assert "hello Ada from v1-code" in log, log
    assert "head-code" not in log
    pod = emulator.object("pods", "greet-1", namespace)
    [init] = pod["status"]["initContainerStatuses"]
    assert init["name"] == contract.SOURCE_CONTAINER_NAME
    assert init["state"]["terminated"]["exitCode"] == 0
    assert json.loads(init["state"]["terminated"]["message"])["commit"] == tagged
    [event] = await wait_for(lambda: events(emulator, namespace, "greet", "SourceResolved"),
                             timeout=15, message="a SourceResolved Event")
    assert tagged in event["message"]

    [entry] = run["status"]["runRecords"]
    assert entry["written"] is True, (entry, log)
    record = runstore.read_record(entry["url"])
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.FormatChecker()).validate(record)
    assert record["source"] == {"url": remote.url, "ref": "v1.0.0", "commit": tagged,
                                "path": "flows"}


async def test_a_retry_runs_the_commit_of_attempt_one_after_the_branch_moved(  # noqa: PLR0917
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, process_kubelet: pk.ProcessKubelet, tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    broken = remote.commit("broken")
    await create_run(kube, namespace, "moving", {"git": {
        "url": remote.url, "ref": "main", "path": "flows"}},
        retries=1, retryDelaySeconds=2)

    def pinned() -> dict[str, Any] | None:
        obj = emulator.object("flowruns", "moving", namespace) or {}
        found: dict[str, Any] | None = (obj.get("status") or {}).get("source")
        return found
    assert (await wait_for(pinned, timeout=60, message="status.source"))["commit"] == broken
    fixed = remote.commit("fixed")  # main now points at a working commit
    run = await finished(emulator, namespace, "moving")

    assert run["status"]["attempts"] == 2
    assert run["status"]["phase"] == "Failed", run["status"]
    assert "this version is broken" in run["status"]["message"]
    assert run["status"]["source"]["commit"] == broken
    second = emulator.object("pods", "moving-2", namespace)
    [init] = second["status"]["initContainerStatuses"]
    assert json.loads(init["state"]["terminated"]["message"])["commit"] == broken
    assert fixed not in emulator.pod_log(namespace, "moving-2")


async def test_a_ref_that_does_not_exist_crashes_the_run_before_the_flow_starts(  # noqa: PLR0917
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, process_kubelet: pk.ProcessKubelet, tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.commit("v1-code")
    await create_run(kube, namespace, "missing", {"git": {"url": remote.url, "ref": "v9"}})
    run = await finished(emulator, namespace, "missing")

    assert (run["status"]["phase"], run["status"]["reason"]) == ("Crashed", "SourceFetchFailed")
    assert "cannot fetch 'v9'" in run["status"]["message"]
    assert "source.git.ref" in run["status"]["message"]
    assert "source" not in run["status"]
    pod = emulator.object("pods", "missing-1", namespace)
    assert pod is None or pod["status"]["phase"] == "Failed"
    if pod is not None:
        [flow] = pod["status"]["containerStatuses"]
        assert flow["state"] == {"waiting": {"reason": "PodInitializing"}}
        [init] = pod["status"]["initContainerStatuses"]
        assert init["state"]["terminated"]["exitCode"] == 1
    assert "hello" not in emulator.pod_log(namespace, "missing-1")


async def test_credentials_reach_git_and_appear_nowhere_else(
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, process_kubelet: pk.ProcessKubelet) -> None:
    token = "ghp_MustNotLeak42"
    seen: list[str | None] = []

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/acme/flows.git"
    await kube.create(kube_module.Resource("", "v1", "secrets", kind="Secret"), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "flows-repo"},
        "data": {"username": base64.b64encode(b"ci").decode(),
                 "password": base64.b64encode(token.encode()).decode()}},
        namespace=namespace)
    try:
        await create_run(kube, namespace, "private", {"git": {
            "url": url, "ref": "main", "credentials": {"secretRef": {"name": "flows-repo"}}}})
        run = await finished(emulator, namespace, "private")
    finally:
        server.shutdown()
        server.server_close()

    assert (run["status"]["phase"], run["status"]["reason"]) == ("Crashed", "SourceFetchFailed")
    assert seen
    assert seen[0] == "Basic " + base64.b64encode(f"ci:{token}".encode()).decode()
    encoded = base64.b64encode(f"ci:{token}".encode()).decode()
    everything = json.dumps([
        emulator.object("flowruns", "private", namespace),
        [e for e in emulator.objects("events", namespace)
         if e["involvedObject"]["name"] in ("private", "private-1")],
        emulator.object("pods", "private-1", namespace),
    ]) + emulator.pod_log(namespace, "private-1")
    assert token not in everything
    assert encoded not in everything


async def test_a_bundle_in_s3_is_unpacked_and_its_digest_recorded(  # noqa: PLR0917
        emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
        operator: OperatorHarness, s3: S3Store, process_kubelet: pk.ProcessKubelet) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in (("greet.py", FLOW_CODE), ("helpers.py", "VERSION = 'bundled'\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    key = f"{s3.prefix}/bundles/greet.tar.gz"
    s3.server.client().put_object(Bucket=s3.bucket, Key=key, Body=payload)
    url = f"s3://{s3.bucket}/{key}"

    await create_run(kube, namespace, "bundled", {"bundle": {"url": url, "sha256": digest}})
    run = await finished(emulator, namespace, "bundled")

    assert run["status"]["phase"] == "Completed", run["status"]
    assert run["status"]["source"] == {"url": url, "digest": f"sha256:{digest}"}
    assert "hello Ada from bundled" in emulator.pod_log(namespace, "bundled-1")


async def test_headwater_dev_runs_a_flow_from_a_local_bare_repository(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    tagged = remote.commit("v1-code", tag="v1.0.0")
    remote.commit("head-code")
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "greet.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow", "metadata": {"name": "greet"},
         "spec": {"image": "example/runtime:1", "entrypoint": "greet.py:greet",
                  "source": {"git": {"url": remote.url, "ref": "v1.0.0", "path": "flows"}}}},
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
         "metadata": {"name": "greet"}, "spec": {"flowRef": {"name": "greet"}}},
        {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
         "metadata": {"name": "greet-1"},
         "spec": {"deploymentRef": {"name": "greet"}, "parameters": {"name": "Ada"}}},
    ]))
    options = sb.SandboxOptions(manifests=[manifests], workdir=REPO,
                                state_dir=tmp_path / "state", out=io.StringIO(),
                                refresh_seconds=0.1, until_complete=True, duration=60)
    result = await sb.Sandbox(options).run()

    [run] = [r for r in result.runs if r["metadata"]["name"] == "greet-1"]
    assert run["status"]["phase"] == "Completed", run["status"]
    assert run["status"]["source"]["commit"] == tagged
    assert "hello Ada from v1-code" in result.pod_logs["default/greet-1-1"]
    [entry] = run["status"]["runRecords"]
    assert runstore.read_record(entry["url"])["source"] == {
        "url": remote.url, "ref": "v1.0.0", "commit": tagged, "path": "flows"}
