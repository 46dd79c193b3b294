"""Result storage and the run store on S3: FsspecStorage and headwater.runstore against a
real S3-compatible server (moto's server mode, tests/support/s3_server.py) over HTTP.

What is checked through fsspec is checked again with botocore (``s3.object_keys()``), so a
mistake in s3fs's view of the bucket cannot make a test pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from headwater import runstore
from headwater.results import FsspecStorage, ResultStore, get_serializer, resolve_storage
from s3_server import BrokenEndpoint, S3Store, clear_fsspec_caches


def test_write_read_roundtrip_and_missing(s3: S3Store) -> None:
    storage = FsspecStorage(s3.root)
    storage.write("results/abc", b"header\npayload")
    assert storage.read("results/abc") == b"header\npayload"
    assert storage.read("results/nothing") is None
    assert s3.object_keys() == ["results/abc"]


def test_a_missing_bucket_is_an_error_never_created(s3: S3Store) -> None:
    """A typo in a bucket name must fail the write, not create that bucket."""
    storage = FsspecStorage("s3://headwater-no-such-bucket/runs")
    with pytest.raises(FileNotFoundError, match="create it first"):
        storage.write("flowruns/v1/x/record.json", b"{}")
    names = [b["Name"] for b in s3.server.client().list_buckets()["Buckets"]]
    assert "headwater-no-such-bucket" not in names


def test_resolve_storage_maps_s3_urls_to_fsspec(s3: S3Store) -> None:
    storage = resolve_storage(s3.root)
    assert isinstance(storage, FsspecStorage)
    assert resolve_storage(s3.root) is storage
    assert storage.url == s3.root


def test_write_replaces_a_whole_object(s3: S3Store) -> None:
    storage = FsspecStorage(s3.root)
    storage.write("record.json", b'{"v": 1}')
    storage.write("record.json", b'{"v": 2}')
    assert storage.read("record.json") == b'{"v": 2}'
    body = s3.server.client().get_object(Bucket=s3.bucket, Key=f"{s3.prefix}/record.json")
    assert body["Body"].read() == b'{"v": 2}'


def test_list_gives_files_directly_under_a_prefix_not_common_prefixes(s3: S3Store) -> None:
    storage = FsspecStorage(s3.root)
    for path in ("logs/000000.jsonl", "logs/000001.jsonl", "logs/nested/x", "logsx/y"):
        storage.write(path, b"{}\n")
    assert storage.list("logs") == ["logs/000000.jsonl", "logs/000001.jsonl"]
    assert storage.list("nothing-here") == []
    assert storage.subdirs("logs") == ["nested"]  # the common prefixes, by name
    assert storage.subdirs("") == ["logs", "logsx"]
    assert storage.subdirs("nothing-here") == []


def test_list_sees_objects_another_writer_added(s3: S3Store) -> None:
    """A reader following a running run lists segments another process keeps adding."""
    storage = FsspecStorage(s3.root)
    storage.write("logs/000000.jsonl", b"{}\n")
    assert storage.list("logs") == ["logs/000000.jsonl"]
    s3.server.client().put_object(Bucket=s3.bucket, Key=f"{s3.prefix}/logs/000001.jsonl",
                                  Body=b"{}\n")
    assert storage.list("logs") == ["logs/000000.jsonl", "logs/000001.jsonl"]


def test_delete_removes_a_tree_and_only_that_tree(s3: S3Store) -> None:
    storage = FsspecStorage(s3.root)
    for path in ("run-1/1/record.json", "run-1/2/logs/000000.jsonl", "run-10/1/record.json",
                 "run-1.json"):
        storage.write(path, b"x")
    storage.delete("run-1")
    assert s3.object_keys() == ["run-1.json", "run-10/1/record.json"]
    storage.delete("run-1")  # nothing there is fine
    storage.delete("run-1.json")  # a single object
    assert s3.object_keys() == ["run-10/1/record.json"]


def _write_attempt(root: str, namespace: str, flowrun: str, attempt: int,
                   lines: list[dict[str, str]]) -> str:
    url = runstore.attempt_url(root, namespace, flowrun, attempt)
    storage = resolve_storage(url)
    record = {"schemaVersion": runstore.SCHEMA_VERSION, "complete": True,
              "flowRun": {"name": flowrun}}
    storage.write(runstore.RECORD_FILE, json.dumps(record).encode())
    half = len(lines) // 2
    for index, chunk in enumerate((lines[:half], lines[half:])):
        data = b"".join(json.dumps(line).encode() + b"\n" for line in chunk)
        storage.write(runstore.segment_name(index), data)
    return url


def test_runstore_reads_a_record_and_its_log_segments_in_order(s3: S3Store) -> None:
    lines = [{"message": f"line {i}", "level": "INFO"} for i in range(5)]
    url = _write_attempt(s3.root, "team-a", "nightly-x7k2p", 2, lines)
    assert url == f"{s3.root}/flowruns/v1/team-a/nightly-x7k2p/2"
    assert runstore.read_record(url)["flowRun"] == {"name": "nightly-x7k2p"}
    assert list(runstore.iter_log_lines(url)) == lines
    assert s3.object_keys() == [
        "flowruns/v1/team-a/nightly-x7k2p/2/logs/000000.jsonl",
        "flowruns/v1/team-a/nightly-x7k2p/2/logs/000001.jsonl",
        "flowruns/v1/team-a/nightly-x7k2p/2/record.json",
    ]


def test_runstore_skips_a_torn_last_line(s3: S3Store) -> None:
    url = runstore.attempt_url(s3.root, "ns", "r", 1)
    resolve_storage(url).write(runstore.segment_name(0), b'{"message": "whole"}\n{"mess')
    assert list(runstore.iter_log_lines(url)) == [{"message": "whole"}]


def test_runstore_read_record_missing_names_the_location(s3: S3Store) -> None:
    url = runstore.attempt_url(s3.root, "ns", "never-written", 1)
    with pytest.raises(runstore.RecordNotFound, match=f"{url}/record.json"):
        runstore.read_record(url)
    assert list(runstore.iter_log_lines(url)) == []


def test_runstore_delete_flowrun_keeps_other_runs(s3: S3Store) -> None:
    line = [{"message": "m"}, {"message": "n"}]
    for flowrun, attempt in (("nightly-1", 1), ("nightly-1", 2), ("nightly-10", 1)):
        _write_attempt(s3.root, "ns", flowrun, attempt, line)
    _write_attempt(s3.root, "other-ns", "nightly-1", 1, line)
    runstore.delete_flowrun(s3.root, "ns", "nightly-1")
    assert {key.split("/")[3] for key in s3.object_keys() if key.split("/")[2] == "ns"} == {
        "nightly-10"}
    assert runstore.read_record(runstore.attempt_url(s3.root, "other-ns", "nightly-1", 1))
    with pytest.raises(runstore.RecordNotFound):
        runstore.read_record(runstore.attempt_url(s3.root, "ns", "nightly-1", 2))
    runstore.delete_flowrun(s3.root, "ns", "nightly-1")  # already gone is fine


_CHILD_FLOW = textwrap.dedent(
    """
    import sys
    from headwater import INPUTS, flow, task
    from headwater.engine import LAST_RUN_TREE

    @task(cache_policy=INPUTS, persist_result=True)
    def square(x: int) -> int:
        print("COMPUTED", flush=True)
        return x * x

    @flow
    def f(x: int) -> int:
        return square(x)

    print("RESULT", f(int(sys.argv[1])), LAST_RUN_TREE[0].task_runs[0].state.name)
    """
)


def test_a_flow_in_a_child_process_persists_and_caches_in_s3(s3: S3Store,
                                                             tmp_path: Path) -> None:
    """A process given only environment variables (like a flow-run pod the process
    kubelet runs) reaches the server: it persists a result, the next run is a cache hit,
    and this process reads the result back from S3."""
    script = tmp_path / "flow.py"
    script.write_text(_CHILD_FLOW)
    env = s3.child_env(HEADWATER_RESULT_STORAGE=s3.root,
                       HEADWATER_HOME=str(tmp_path / "child-home"))
    outputs = [subprocess.run([sys.executable, str(script), "7"], capture_output=True,
                              text=True, env=env, timeout=120, check=False)
               for _ in range(2)]
    for proc in outputs:
        assert proc.returncode == 0, proc.stderr
    assert "COMPUTED" in outputs[0].stdout
    assert "RESULT 49 Completed" in outputs[0].stdout
    assert "COMPUTED" not in outputs[1].stdout
    assert "RESULT 49 Cached" in outputs[1].stdout
    assert not (tmp_path / "child-home" / "results").exists()

    result_keys = [key for key in s3.object_keys() if key.startswith("results/")]
    assert len(result_keys) == 1
    clear_fsspec_caches()
    store = ResultStore(resolve_storage(s3.root), get_serializer("pickle"))
    assert store.read(result_keys[0].removeprefix("results/")) == (True, 49)


def test_an_unreachable_endpoint_fails_a_write_after_few_attempts(
        s3: S3Store, broken_endpoint: BrokenEndpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``AWS_MAX_ATTEMPTS=1`` a write to a store that is down raises after a bounded
    number of connections (measured, not timed). botocore's default (5 attempts per call)
    times s3fs's own 5 retries made 110 connections and ~84 s for one write against this
    server, and ~29 s against a closed port; see docs/run-store.md.

    The error is botocore's, not an ``OSError``: a caller that must survive a store outage
    catches ``Exception``."""
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    storage = FsspecStorage(s3.root)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever s3fs lets through
        storage.write("record.json", b"{}")
    assert "127.0.0.1" in str(caught.value)
    # s3fs retries each call up to S3FileSystem.retries (5) times and a write makes a few
    # calls (bucket checks, bucket create, put): 14 to 22 connections were seen. Without
    # AWS_MAX_ATTEMPTS botocore multiplies that by its 5 attempts per call.
    assert 1 <= broken_endpoint.connections <= 30
