"""The commands that read the run store: ``describe run``'s task runs, ``logs`` from the
store, ``artifacts`` and ``lineage``, on hand-made records written with the SDK's storage
into a temporary directory. Every fixture record and log line is validated against the
checked-in JSON Schema, so the fixtures cannot drift from what the SDK writes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from headwater import runstore
from headwater.assets import asset_slug
from headwater.cli import build_parser
from headwater.results import resolve_storage
from headwater_operator import kube
from headwater_operator.cli import artifacts, describe, lineage, logs
from headwater_operator.cli.common import Io

SCHEMA = json.loads((Path(runstore.__file__).parent / "data" / "run-record.schema.json")
                    .read_text(encoding="utf-8"))
NOW = datetime(2026, 3, 10, 12, 1, tzinfo=UTC)
NS, RUN = "default", "nightly-x7k2p"


def validate(record: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(record)


def validate_line(line: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator({"$ref": "#/$defs/logLine", "$defs": SCHEMA["$defs"]}
                                    ).validate(line)


def state(kind: str, name: str, at: str) -> dict[str, Any]:
    return {"type": kind, "name": name, "time": at}


def task_run(ident: str, name: str, flow_run: str | None, start: str, end: str, *,
             state_name: str = "Completed", kind: str = "COMPLETED",
             attempts: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A task run that ran from ``start`` to ``end`` (``flow_run`` None: the root's)."""
    history = [state("PENDING", "Pending", start), state("RUNNING", "Running", start),
               state(kind, state_name, end)]
    return {"id": ident, "name": name, "taskKey": f"etl.{name.rsplit('-', 1)[0]}",
            **({"flowRunId": flow_run} if flow_run else {}), "state": state_name,
            "stateHistory": history,
            "attempts": attempts if attempts is not None else [
                {"number": 1, "state": state_name, "startTime": start, "endTime": end}],
            **extra}


def make_record(*, complete: bool = True) -> dict[str, Any]:
    t = "2026-03-10T12:00:0{}.000Z".format
    subflow = {"id": "fr-2", "name": "quiet-fox", "flow": "report", "parameters": {},
               "tags": [], "state": "Completed",
               "stateHistory": [state("COMPLETED", "Completed", t(8))], "runCount": 1,
               "startTime": t(6), "endTime": t(8), "parentFlowRunId": "fr-1",
               "parentTaskRunId": "tr-6", "subflowRuns": []}
    record = {
        "schemaVersion": runstore.SCHEMA_VERSION, "namespace": NS, "flowRunName": RUN,
        "attempt": 1, "complete": complete, "updatedAt": t(9),
        "flowRun": {"id": "fr-1", "name": "brave-otter", "flow": "etl",
                    "deployment": "nightly", "parameters": {"n": 3}, "tags": [],
                    "state": "Completed",
                    "stateHistory": [state("RUNNING", "Running", t(0)),
                                     state("COMPLETED", "Completed", t(9))],
                    "runCount": 1, "startTime": t(0), "endTime": t(9),
                    "subflowRuns": [subflow]},
        "taskRuns": [
            task_run("tr-1", "extract-0", None, t(0), "2026-03-10T12:00:01.250Z"),
            task_run("tr-2", "transform-0", None, t(1), t(2), mapIndex=0, upstream=["tr-1"]),
            {**task_run("tr-3", "transform-1", None, t(1), t(4), mapIndex=1,
                        upstream=["tr-1"], attempts=[
                            {"number": 1, "state": "Failed", "startTime": t(1),
                             "endTime": t(2), "error": {"type": "ValueError",
                                                        "message": "bad row 7\nmore",
                                                        "traceback": "Traceback …"}},
                            {"number": 2, "state": "Completed", "startTime": t(3),
                             "endTime": t(4)}]),
             "stateHistory": [state("PENDING", "Pending", t(1)),
                              state("RUNNING", "Running", t(1)),
                              state("SCHEDULED", "AwaitingRetry", t(2)),
                              state("RUNNING", "Retrying", t(3)),
                              state("COMPLETED", "Completed", t(4))]},
            {**task_run("tr-4", "load-0", None, t(4), t(5), state_name="Cached",
                        cacheKey="abc", cacheHit=True, upstream=["tr-2", "tr-3"],
                        attempts=[]),
             "stateHistory": [state("PENDING", "Pending", t(4)),
                              state("COMPLETED", "Cached", t(5))]},
            {**task_run("tr-6", "report-0", None, t(6), t(8), subflowRunId="fr-2",
                        attempts=[]), "taskKey": "report"},
            task_run("tr-7", "render-0", "fr-2", t(6), t(7)),
            task_run("tr-8", "load_marts-0", None, t(8), "2026-03-10T12:02:30.000Z"),
        ],
        "artifacts": [
            {"id": "a-1", "key": "summary", "type": "markdown",
             "description": "Run summary", "data": "# Orders\n\n12 rows loaded",
             "flowRunId": "fr-1", "taskRunId": "tr-4", "created": t(5)},
            {"id": "a-2", "key": "counts", "type": "table", "description": None,
             "data": [{"table": "orders", "rows": 12}, {"table": "customers", "rows": 3,
                                                       "note": "new"}],
             "flowRunId": "fr-1", "taskRunId": None, "created": t(9)},
            {"id": "a-3", "key": None, "type": "table", "description": None,
             "data": {"day": ["mon", "tue"], "n": [1]}, "created": t(9)},
            {"id": "a-4", "key": "dash", "type": "link", "description": None,
             "data": {"link": "https://bi.example/orders", "link_text": "Orders dashboard"},
             "created": t(9)},
        ],
        "assets": [{"key": "s3://lake/marts/orders", "version": "v2", "upstream": [],
                    "skipped": False, "taskRunId": "tr-8", "flowRunId": "fr-1",
                    "time": "2026-03-10T12:02:30.000Z", "metadata": {"rows": 14}}],
        "logs": {"segments": ["logs/000000.jsonl"], "lines": 4},
    }
    validate(record)
    return record


LOG_LINES = [
    {"time": "2026-03-10T12:00:00.005Z", "level": "INFO", "logger": "headwater.flow_runs",
     "flowRunId": "fr-1", "message": "Beginning flow run 'brave-otter'"},
    {"time": "2026-03-10T12:00:00.120Z", "level": "INFO", "logger": "headwater.task_runs",
     "flowRunId": "fr-1", "taskRunId": "tr-1", "taskRunName": "extract-0",
     "message": "extracted 12 rows"},
    {"time": "2026-03-10T12:00:01.500Z", "level": "ERROR", "logger": "headwater.task_runs",
     "flowRunId": "fr-1", "taskRunId": "tr-3", "taskRunName": "transform-1",
     "message": "Task run failed", "exception": "Traceback (most recent call last):\n"
     "ValueError: bad row 7"},
    {"time": "2026-03-10T12:00:04.250Z", "level": "WARNING", "logger": "headwater.task_runs",
     "flowRunId": "fr-1", "taskRunId": "tr-4", "taskRunName": "load-0",
     "message": "cache hit"},
]


def write_attempt(root: Path, record: dict[str, Any], attempt: int = 1,
                  lines: list[dict[str, Any]] | None = None) -> str:
    url = runstore.attempt_url(str(root), NS, RUN, attempt)
    storage = resolve_storage(str(root))
    base = runstore.attempt_path(NS, RUN, attempt)
    storage.write(f"{base}/{runstore.RECORD_FILE}", json.dumps(record).encode())
    for line in lines or []:
        validate_line(line)
    if lines is not None:
        storage.write(f"{base}/{runstore.segment_name(0)}",
                      "".join(json.dumps(line) + "\n" for line in lines).encode())
    return url


def flowrun(*records: tuple[int, str], attempts: int = 1, **status: Any) -> dict[str, Any]:
    return {"apiVersion": "headwater.dev/v1alpha1", "kind": "FlowRun",
            "metadata": {"name": RUN, "namespace": NS,
                         "creationTimestamp": "2026-03-10T11:59:00Z"},
            "spec": {"deploymentRef": {"name": "nightly"}},
            "status": {"phase": "Completed", "attempts": attempts,
                       "taskRuns": {"Completed": 6, "Cached": 1},
                       **({"runRecords": [{"attempt": a, "url": u} for a, u in records]}
                          if records else {}), **status}}


class FakeCluster:
    """Answers the calls the store-reading commands make (get/list, pod logs)."""

    def __init__(self, runs: list[dict[str, Any]], pods: dict[str, str] | None = None,
                 deployments: list[dict[str, Any]] | None = None) -> None:
        self.runs = {r["metadata"]["name"]: r for r in runs}
        self.pods = pods or {}
        self.deployments = deployments or []

    def get(self, resource: kube.Resource, name: str, *, namespace: str) -> dict[str, Any]:
        if resource == kube.FLOWRUNS and name in self.runs:
            return self.runs[name]
        raise kube.NotFound(404, "NotFound", f'{resource.plural} "{name}" not found')

    def list(self, resource: kube.Resource, *, namespace: str | None = None,
             **_: Any) -> list[dict[str, Any]]:
        return {kube.FLOWRUNS: list(self.runs.values()),
                kube.DEPLOYMENTS: self.deployments}.get(resource, [])

    def read_pod_log(self, name: str, *, namespace: str, container: str | None = None) -> str:
        assert container == "flow"
        if name not in self.pods:
            raise kube.NotFound(404, "NotFound", f'pods "{name}" not found')
        return self.pods[name]


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeCluster]]:
    holder: list[FakeCluster] = []
    for module in (describe, logs, artifacts, lineage):
        monkeypatch.setattr(module, "connect", lambda args: (holder[0], NS))
    return holder


def cli(*argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    args.io = Io(out=out, err=err, now=lambda: NOW)
    return args.func(args), out.getvalue(), err.getvalue()


# --- describe run -----------------------------------------------------------------------


def test_describe_lists_task_runs_with_subflows_nested(tmp_path: Path,
                                                       cluster: list[FakeCluster]) -> None:
    url = write_attempt(tmp_path, make_record())
    cluster.append(FakeCluster([flowrun((1, url))]))
    code, out, err = cli("describe", "run", RUN)
    assert (code, err) == (0, "")
    assert out.startswith(f"Name:           {RUN}\n")  # the report as before …
    assert "Task runs:      Cached=1 Completed=6\n" in out
    assert f"Run record:     {url} (attempt 1)\n" in out  # … plus the record
    assert "Record:" not in out  # complete: nothing to warn about
    table = out.split("Task run list:\n")[1].split("Task run errors:")[0].splitlines()
    assert [line.split("   ")[0].strip() for line in table[:1]] == ["NAME"]
    rows = {line.strip().split()[0]: line.strip().split() for line in table[1:]}
    assert rows["extract-0"][1:] == ["Completed", "2026-03-10T12:00:00.000Z", "1.25s", "1",
                                     "false"]
    assert rows["transform-1[1]"][1:] == ["Completed", "2026-03-10T12:00:01.000Z", "3.00s",
                                          "2", "false"]
    assert rows["load-0"][1:] == ["Cached", "2026-03-10T12:00:04.000Z", "1.00s", "0", "true"]
    assert rows["load_marts-0"][3] == "2m22s"
    assert rows["report-0"][1:3] == ["->", "quiet-fox"]
    # The subflow's task run follows the call, indented one level.
    names = [line[2:].split("   ")[0] for line in table[1:]]
    assert names.index("  render-0") == names.index("report-0 -> quiet-fox") + 1
    assert "  transform-1   1         ValueError: bad row 7\n" in out  # why it was retried
    assert "Subflow runs:\n  NAME        FLOW     STATE       START" in out
    assert "  quiet-fox   report   Completed   2026-03-10T12:00:06.000Z   2.00s\n" in out
    assert out.index("Task run list:") < out.index("Conditions:") < out.index("Events:")


def test_describe_task_filter_glob_and_substring(tmp_path: Path,
                                                 cluster: list[FakeCluster]) -> None:
    url = write_attempt(tmp_path, make_record())
    cluster.append(FakeCluster([flowrun((1, url))]))

    def listed(pattern: str) -> list[str]:
        _, out, _ = cli("describe", "run", RUN, "--task", pattern)
        table = out.split("Task run list:")[1].split("\n", 1)[1].split("Subflow runs:")[0]
        return [line.split()[0] for line in table.split("Task run errors:")[0].splitlines()
                if line.startswith("  ") and not line.strip().startswith("NAME")]

    assert listed("load*") == ["load-0", "load_marts-0"]
    assert listed("LOAD-*") == ["load-0"]  # case-insensitive; a glob is the whole name
    assert listed("transform") == ["transform-0[0]", "transform-1[1]"]  # substring
    assert listed("render") == ["render-0"]  # a subflow's task run too
    _, out, _ = cli("describe", "run", RUN, "--task", "nothing*")
    assert "Task run list:  <none matching 'nothing*': 7 task runs in all>\n" in out
    _, out, _ = cli("describe", "run", RUN, "--task", "extract")
    assert "Task run errors" not in out  # transform-1's error is filtered out too


def test_describe_json_has_the_whole_record_with_filtered_task_runs(
    tmp_path: Path, cluster: list[FakeCluster],
) -> None:
    record = make_record()
    url = write_attempt(tmp_path, record)
    cluster.append(FakeCluster([flowrun((1, url))]))
    code, out, _ = cli("describe", "run", RUN, "-o", "json")
    data = json.loads(out)
    assert code == 0
    assert list(data) == ["flowRun", "events", "record"]
    assert data["record"] == record
    assert data["flowRun"]["metadata"]["name"] == RUN
    _, out, _ = cli("describe", "run", RUN, "-o", "yaml", "--task", "transform-*")
    data = yaml.safe_load(out)
    assert [t["name"] for t in data["record"]["taskRuns"]] == ["transform-0", "transform-1"]
    assert data["record"]["artifacts"] == record["artifacts"]


def test_describe_picks_the_latest_attempt_or_the_one_asked_for(
    tmp_path: Path, cluster: list[FakeCluster],
) -> None:
    first = make_record()
    first["taskRuns"] = first["taskRuns"][:1]
    first["attempt"] = 1
    second = make_record(complete=False)
    second["attempt"] = 2
    url1, url2 = write_attempt(tmp_path, first, 1), write_attempt(tmp_path, second, 2)
    cluster.append(FakeCluster([flowrun((1, url1), (2, url2), attempts=2,
                                        phase="Running")]))
    _, out, _ = cli("describe", "run", RUN)
    assert f"Run record:     {url2} (attempt 2)\n" in out
    assert "Record:         still being written (the run is running; last flushed 51s ago)\n" in out
    assert "load-0" in out
    cluster[0] = FakeCluster([flowrun((1, url1), (2, url2), attempts=2, phase="Failed")])
    _, out, _ = cli("describe", "run", RUN)
    assert ("Record:         incomplete: the attempt ended without its final record (killed, "
            "e.g. OOMKilled); this is its last flush, 51s before now\n") in out
    run = flowrun((1, url1), (2, url2), attempts=2, phase="Failed")
    run["status"]["runRecords"][1]["written"] = False
    cluster[0] = FakeCluster([run])
    _, out, _ = cli("describe", "run", RUN)
    assert "Record:         incomplete: the pod could not write its final record" in out
    _, out, _ = cli("describe", "run", RUN, "--attempt", "1")
    assert "(attempt 1)" in out
    assert "load-0" not in out
    code, _, err = cli("describe", "run", RUN, "--attempt", "3")
    assert code == 2
    assert "has no run record for attempt 3; its records are for attempt(s) 1, 2" in err


def test_describe_without_run_records_says_why_and_keeps_the_report(
    cluster: list[FakeCluster],
) -> None:
    cluster.append(FakeCluster([flowrun()]))
    code, out, err = cli("describe", "run", RUN)
    assert (code, err) == (0, "")
    line = next(line for line in out.splitlines() if line.startswith("Run record:"))
    assert line.startswith(f"Run record:     <none>: FlowRun {NS}/{RUN} has no run record: "
                           "no run store is configured")
    assert "Deployment.spec.runStore.url" in line
    assert "Phase:          Completed" in out
    assert "Events:" in out
    code, out, _ = cli("describe", "run", RUN, "-o", "json")
    data = json.loads(out)
    assert data["record"] is None
    assert "no run store is configured" in data["recordError"]


def test_describe_with_a_missing_record_names_the_location(
    tmp_path: Path, cluster: list[FakeCluster],
) -> None:
    url = runstore.attempt_url(str(tmp_path), NS, RUN, 1)  # never written
    cluster.append(FakeCluster([flowrun((1, url))]))
    code, out, _ = cli("describe", "run", RUN)
    assert code == 0
    assert (f"Run record:     <none>: no run record at {url}/record.json: the attempt has "
            "not flushed its first record yet") in out
    assert "Task run list" not in out


@pytest.fixture
def missing_driver() -> Iterator[str]:
    """A URL scheme registered the way fsspec registers s3:// (a driver module imported on
    first use), whose driver is not installed: fsspec raises ImportError, as for s3://
    without s3fs."""
    registry = pytest.importorskip("fsspec.registry")
    registry.register_implementation(
        "hwmissing", "hw_missing_driver.HwFileSystem", clobber=True,
        errtxt="Install hw-missing-driver to access hwmissing://")
    yield "hwmissing"
    registry.known_implementations.pop("hwmissing", None)


def test_describe_with_a_missing_fsspec_driver_says_what_to_install(
    cluster: list[FakeCluster], missing_driver: str,
) -> None:
    url = f"{missing_driver}://bucket/hw/flowruns/v1/default/nightly-x7k2p/1"
    cluster.append(FakeCluster([flowrun((1, url))]))
    code, out, err = cli("describe", "run", RUN)
    assert (code, err) == (0, "")
    line = next(line for line in out.splitlines() if line.startswith("Run record:"))
    assert (f"<none>: cannot read the run store at {url}: Install hw-missing-driver to "
            "access hwmissing://; install the filesystem's driver where the CLI runs") in line


def test_describe_with_an_unknown_scheme_says_to_check_the_url(
    cluster: list[FakeCluster],
) -> None:
    url = "nosuchproto://bucket/hw/flowruns/v1/default/nightly-x7k2p/1"
    cluster.append(FakeCluster([flowrun((1, url))]))
    code, out, _ = cli("describe", "run", RUN)
    assert code == 0
    assert (f"cannot read the run store at {url}: Protocol not known: nosuchproto; check the "
            "URL's scheme") in out


def test_schedule_describe_refuses_run_options(cluster: list[FakeCluster]) -> None:
    cluster.append(FakeCluster([]))
    code, _, err = cli("describe", "schedule", "s", "--task", "x")
    assert code == 2
    assert "--task and --attempt apply to 'describe run' only" in err


# --- logs ---------------------------------------------------------------------------------


def test_logs_read_the_store_once_the_pod_is_gone(tmp_path: Path,
                                                  cluster: list[FakeCluster]) -> None:
    url = write_attempt(tmp_path, make_record(), lines=LOG_LINES)
    cluster.append(FakeCluster([flowrun((1, url))], pods={}))
    code, out, err = cli("logs", RUN)
    assert code == 0
    assert out == (
        "12:00:00.005 | INFO    | Flow run 'brave-otter' - Beginning flow run 'brave-otter'\n"
        "12:00:00.120 | INFO    | Task run 'extract-0' - extracted 12 rows\n"
        "12:00:01.500 | ERROR   | Task run 'transform-1' - Task run failed\n"
        "Traceback (most recent call last):\n"
        "ValueError: bad row 7\n"
        "12:00:04.250 | WARNING | Task run 'load-0' - cache hit\n")
    assert err == (f"==> attempt 1 (pod {RUN}-1) <==\n"
                   f"(pod {RUN}-1 no longer exists; reading the run store at {url})\n")


def test_logs_read_the_pod_while_it_exists(tmp_path: Path, cluster: list[FakeCluster]) -> None:
    url = write_attempt(tmp_path, make_record(), lines=LOG_LINES)
    cluster.append(FakeCluster([flowrun((1, url))], pods={f"{RUN}-1": "from the pod\n"}))
    code, out, _ = cli("logs", RUN)
    assert (code, out) == (0, "from the pod\n")
    code, out, _ = cli("logs", RUN, "--from-store")
    assert code == 0
    assert out.count("\n") == 6
    assert "from the pod" not in out


def test_logs_task_filter_reads_the_store_even_with_a_pod(
    tmp_path: Path, cluster: list[FakeCluster],
) -> None:
    url = write_attempt(tmp_path, make_record(), lines=LOG_LINES)
    cluster.append(FakeCluster([flowrun((1, url))], pods={f"{RUN}-1": "pod text\n"}))
    code, out, err = cli("logs", RUN, "--task", "transform-1")
    assert code == 0
    assert out == ("12:00:01.500 | ERROR   | Task run 'transform-1' - Task run failed\n"
                   "Traceback (most recent call last):\nValueError: bad row 7\n")
    _, out, _ = cli("logs", RUN, "--task", "*-0")
    assert [line.split(" | ")[2].split(" - ")[0] for line in out.splitlines()] == [
        "Task run 'extract-0'", "Task run 'load-0'"]
    _, out, err = cli("logs", RUN, "--task", "transform")  # exact name unless a glob
    assert out == ""
    assert "(no lines of task run 'transform' in attempt 1)" in err
    code, _, err = cli("logs", RUN, "--task", "x", "-f")
    assert code == 2
    assert "-f does not follow" in err


def test_logs_of_a_gone_pod_without_a_store_say_why(cluster: list[FakeCluster]) -> None:
    cluster.append(FakeCluster([flowrun()]))
    code, out, err = cli("logs", RUN)
    assert (code, out) == (0, "")
    assert (f"(pod {RUN}-1 no longer exists; attempt 1 has no run record: no run store is "
            "configured") in err
    code, _, err = cli("logs", RUN, "--from-store")
    assert code == 1
    assert f"FlowRun {NS}/{RUN} has no run record" in err


def test_logs_with_a_missing_store_fail_naming_the_location(
    tmp_path: Path, cluster: list[FakeCluster],
) -> None:
    url = runstore.attempt_url(str(tmp_path / "elsewhere"), NS, RUN, 1)
    cluster.append(FakeCluster([flowrun((1, url))]))
    code, out, err = cli("logs", RUN)  # no segments: nothing to print, nothing failed
    assert (code, out) == (0, "")
    url = "nosuchproto://bucket/flowruns/v1/default/nightly-x7k2p/1"
    cluster[0] = FakeCluster([flowrun((1, url))])
    code, out, err = cli("logs", RUN)
    assert code == 1
    assert f"cannot read the run store at {url}" in err


def test_a_store_line_is_rendered_like_the_pods_text_format() -> None:
    line = {"time": "2026-03-10T23:59:59.999Z", "level": "DEBUG", "logger": "etl.helpers",
            "message": "x"}
    assert logs.render_log_line(line, {}) == "23:59:59.999 | DEBUG   | etl.helpers - x\n"
    unknown = {**line, "flowRunId": "fr-9", "logger": "headwater.flow_runs"}
    assert logs.render_log_line(unknown, {}) == ("23:59:59.999 | DEBUG   | "
                                                 "headwater.flow_runs - x\n")


# --- artifacts ----------------------------------------------------------------------------


def test_artifacts_render_markdown_tables_and_links(tmp_path: Path,
                                                     cluster: list[FakeCluster]) -> None:
    url = write_attempt(tmp_path, make_record())
    cluster.append(FakeCluster([flowrun((1, url))]))
    code, out, err = cli("artifacts", RUN)
    assert code == 0
    assert err == f"==> attempt 1 ({url}) <==\n"
    assert out == (
        "== summary (markdown) · task run load-0 · 2026-03-10T12:00:05.000Z\n"
        "Run summary\n\n"
        "# Orders\n\n12 rows loaded\n"
        "\n"
        "== counts (table) · flow run brave-otter · 2026-03-10T12:00:09.000Z\n\n"
        "table       rows   note\n"
        "orders      12\n"
        "customers   3      new\n"
        "\n"
        "== <no key> (table) · 2026-03-10T12:00:09.000Z\n\n"
        "day   n\n"
        "mon   1\n"
        "tue\n"
        "\n"
        "== dash (link) · 2026-03-10T12:00:09.000Z\n\n"
        "Orders dashboard <https://bi.example/orders>\n")
    code, out, _ = cli("artifacts", RUN, "-o", "json")
    assert code == 0
    assert json.loads(out) == make_record()["artifacts"]


def test_progress_and_image_artifacts_read_as_text() -> None:
    assert artifacts.content_text({"type": "progress", "data": 62.5}) == "62.5%\n"
    assert artifacts.content_text({"type": "progress", "data": 100.0}) == "100%\n"
    assert artifacts.content_text({"type": "image", "data": "https://e.example/c.png"}) == (
        "image <https://e.example/c.png>\n")


def test_a_table_of_lists_has_no_header_row() -> None:
    assert artifacts.table_text([["a", 1], ["bb", None, {"x": 1}]]) == (
        "a    1\n"
        'bb       {"x": 1}\n')


def test_artifacts_of_a_run_without_a_record_is_an_error(
    tmp_path: Path, cluster: list[FakeCluster],
) -> None:
    cluster.append(FakeCluster([flowrun()]))
    code, out, err = cli("artifacts", RUN)
    assert (code, out) == (1, "")
    assert err.startswith(f"headwater artifacts: FlowRun {NS}/{RUN} has no run record: no "
                          "run store is configured")
    url = runstore.attempt_url(str(tmp_path), NS, RUN, 1)
    cluster[0] = FakeCluster([flowrun((1, url))])
    code, _, err = cli("artifacts", RUN)
    assert code == 1
    assert f"no run record at {url}/record.json" in err


# --- lineage ------------------------------------------------------------------------------


def write_asset(root: Path, key: str, version: str, at: float, upstream: dict[str, str],
                **extra: Any) -> None:
    storage = resolve_storage(str(root))
    record = {"key": key, "version": version, "upstream": sorted(upstream),
              "upstreamVersions": upstream, "skipped": False, "flowRunId": f"fr-{version}",
              "taskRunId": f"tr-{version}", "materializedAt": at, **extra}
    slug = asset_slug(key)
    body = json.dumps(record).encode()
    storage.write(f"assets/{slug}/history/{at:.6f}-{version}.json", body)
    storage.write(f"assets/{slug}/latest.json", body)


ORDERS, STG, RAW, REPORT = ("s3://lake/marts/orders", "s3://lake/stg/orders",
                            "s3://raw/orders", "s3://lake/reports/daily")
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()


def lineage_store(root: Path) -> None:
    write_asset(root, STG, "s1", T0, {RAW: "external"})
    write_asset(root, ORDERS, "o1", T0 + 10, {STG: "s1"}, metadata={"rows": 12})
    write_asset(root, STG, "s2", T0 + 60, {RAW: "external"})  # orders is stale now
    write_asset(root, ORDERS, "o2", T0 + 70, {STG: "s2"}, metadata={"rows": 14},
                properties={"name": "Orders mart", "owners": ["data-team"]})
    write_asset(root, REPORT, "r1", T0 + 80, {ORDERS: "o2"})


def test_lineage_shows_upstream_downstream_and_materializations(tmp_path: Path) -> None:
    lineage_store(tmp_path)
    code, out, err = cli("lineage", ORDERS, "--store", str(tmp_path))
    assert (code, err) == (0, "")
    assert out == (
        f"Asset:          {ORDERS}\n"
        "Name:           Orders mart\n"
        "Owners:         data-team\n"
        "Version:        o2\n"
        "Materialized:   2026-03-10T12:01:10.000Z (flow run fr-o2, task run tr-o2)\n"
        f"Stores:         {tmp_path}\n"
        "Upstream:\n"
        "  KEY                    USED VERSION   CURRENT VERSION\n"
        "  s3://lake/stg/orders   s2             s2\n"
        "Downstream:\n"
        "  KEY                       VERSION   MATERIALIZED\n"
        "  s3://lake/reports/daily   r1        2026-03-10T12:01:20.000Z\n"
        "Materializations:\n"
        "  TIME                       VERSION   FLOW RUN   TASK RUN   METADATA\n"
        "  2026-03-10T12:01:10.000Z   o2        fr-o2      tr-o2      rows=14\n"
        "  2026-03-10T12:00:10.000Z   o1        fr-o1      tr-o1      rows=12\n")
    code, out, _ = cli("lineage", ORDERS, "--store", str(tmp_path), "-o", "json", "--limit",
                       "1")
    data = json.loads(out)
    assert [m["version"] for m in data["materializations"]] == ["o2"]
    assert data["upstream"] == [{"key": STG, "version": "s2", "current": "s2"}]
    assert [d["key"] for d in data["downstream"]] == [REPORT]


def test_lineage_of_an_external_asset_shows_its_downstream(tmp_path: Path) -> None:
    lineage_store(tmp_path)
    code, out, _ = cli("lineage", RAW, "--store", str(tmp_path))
    assert code == 0
    assert "Version:        <none: never materialized by Headwater (external)>\n" in out
    assert "  s3://lake/stg/orders   s2        2026-03-10T12:01:00.000Z\n" in out
    assert "Materializations:<none>\n" in out


def test_lineage_of_an_unknown_asset_names_where_it_looked(tmp_path: Path) -> None:
    lineage_store(tmp_path)
    code, out, err = cli("lineage", "s3://nope/x", "--store", str(tmp_path))
    assert (code, out) == (1, "")
    assert f"asset 's3://nope/x' has no record in {tmp_path}" in err
    assert f"assets/{asset_slug('s3://nope/x')}/latest.json" in err


def test_lineage_finds_the_stores_the_cluster_names(tmp_path: Path,
                                                    cluster: list[FakeCluster]) -> None:
    results, records = tmp_path / "results", tmp_path / "records"
    lineage_store(results)
    write_asset(records, "s3://other/thing", "t1", T0, {ORDERS: "o2"})
    deployment = {"metadata": {"name": "nightly"},
                  "spec": {"resultStorage": {"url": str(results)}}}
    run = flowrun((1, runstore.attempt_url(str(records), NS, RUN, 1)))
    cluster.append(FakeCluster([run], deployments=[deployment]))
    code, out, _ = cli("lineage", ORDERS)
    assert code == 0
    assert f"Stores:         {results}, {records}\n" in out
    assert "s3://lake/reports/daily" in out
    assert "s3://other/thing" in out


def test_lineage_without_a_cluster_reads_the_local_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    lineage_store(tmp_path)
    monkeypatch.setenv("HEADWATER_RESULT_STORAGE", str(tmp_path))

    def no_cluster(args: Any) -> Any:
        raise kube.KubeError(0, "NoConfiguration", "no kubeconfig found")

    monkeypatch.setattr(lineage, "connect", no_cluster)
    code, out, err = cli("lineage", ORDERS)
    assert code == 0
    assert "Version:        o2" in out
    assert f"no cluster reachable (no kubeconfig found); reading the local result storage " \
           f"{tmp_path}" in err


def test_lineage_skips_an_unreadable_store_and_says_so(tmp_path: Path) -> None:
    lineage_store(tmp_path)
    code, out, err = cli("lineage", ORDERS, "--store", "nosuchproto://x",
                         "--store", str(tmp_path))
    assert code == 0
    assert "Version:        o2" in out
    assert "skipped a store: cannot read the run store at nosuchproto://x" in err


# --- a record the SDK really wrote ----------------------------------------------------------


def test_the_commands_read_a_record_the_sdk_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  cluster: list[FakeCluster]) -> None:
    """The hand-made fixtures above follow the schema; this holds the commands to what
    the SDK's writer (headwater.runrecord) actually produces."""
    from headwater import contract, flow, results, task
    from headwater.artifacts import create_markdown_artifact, create_table_artifact
    from headwater.assets import materialize
    from headwater.logging import get_run_logger

    store = tmp_path / "store"
    for name, value in ((contract.ENV_HOME, str(tmp_path / "home")),
                        (contract.ENV_RESULT_STORAGE, str(store)),
                        (contract.ENV_RUN_STORE, str(store)), (contract.ENV_NAMESPACE, NS),
                        (contract.ENV_FLOW_RUN_NAME, RUN), (contract.ENV_ATTEMPT, "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(results, "_storage_cache", {})

    @task
    def extract(n: int) -> list[int]:
        get_run_logger().info("extracted %d rows", n)
        return list(range(n))

    @materialize("file://lake/marts/rows")
    def load(rows: list[int]) -> int:
        create_table_artifact([{"n": r} for r in rows], key="rows")
        return len(rows)

    @flow
    def child(rows: list[int]) -> int:
        create_markdown_artifact("# Child\n\ndone", key="child-report")
        return load(rows)

    @flow
    def nightly(n: int = 2) -> int:
        return child(extract(n))

    assert nightly() == 2
    url = runstore.attempt_url(str(store), NS, RUN, 1)
    validate(runstore.read_record(url))
    cluster.append(FakeCluster([flowrun((1, url))]))

    code, out, _ = cli("describe", "run", RUN)
    assert code == 0
    table = out.split("Task run list:\n")[1].split("Subflow runs:")[0].splitlines()
    names = [line[2:].split("   ")[0] for line in table[1:]]
    assert names == ["extract-0", "child-0 -> " + names[1].split(" -> ")[1], "  load-0"]
    assert all(line.split()[-4:][1] != "<none>" for line in table[1:])  # every duration
    _, out, _ = cli("describe", "run", RUN, "--task", "load", "-o", "json")
    assert [t["name"] for t in json.loads(out)["record"]["taskRuns"]] == ["load-0"]

    code, out, _ = cli("logs", RUN)  # no pod: the store
    assert code == 0
    assert "| INFO    | Task run 'extract-0' - extracted 2 rows\n" in out
    _, out, _ = cli("logs", RUN, "--task", "extract-0")
    assert out.count("\n") == 1

    code, out, _ = cli("artifacts", RUN)
    assert code == 0
    assert "# Child\n\ndone\n" in out
    assert "== rows (table) · task run load-0 · " in out
    assert "n\n0\n1\n" in out
    assert f"== child-report (markdown) · flow run {names[1].split(' -> ')[1]} · " in out

    code, out, _ = cli("lineage", "file://lake/marts/rows", "--store", str(store))
    assert code == 0
    assert "Materializations:\n  TIME" in out


def test_lineage_reads_an_fsspec_store(tmp_path: Path) -> None:
    """An fsspec URL (memory://) lists asset directories differently from a local path;
    downstream assets are found in both."""
    pytest.importorskip("fsspec")
    root = f"memory://cli-lineage-{tmp_path.name}"
    storage = resolve_storage(root)
    for key, version, upstream in ((STG, "s1", {}), (ORDERS, "o1", {STG: "s1"})):
        body = json.dumps({"key": key, "version": version, "upstream": sorted(upstream),
                           "upstreamVersions": upstream, "skipped": False,
                           "materializedAt": T0}).encode()
        storage.write(f"assets/{asset_slug(key)}/latest.json", body)
        storage.write(f"assets/{asset_slug(key)}/history/{T0:.6f}-{version}.json", body)
    code, out, _ = cli("lineage", STG, "--store", root, "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert [d["key"] for d in data["downstream"]] == [ORDERS]
    assert [m["version"] for m in data["materializations"]] == ["s1"]
    storage.delete("assets")


def test_describe_run_links_the_ui_when_its_address_is_known(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater_operator.cli.describe import run_link

    monkeypatch.delenv("HEADWATER_UI_URL", raising=False)
    assert run_link("team-a", "nightly-x") is None
    monkeypatch.setenv("HEADWATER_UI_URL", "https://headwater.example.com/")
    assert run_link("team-a", "nightly-x") == (
        "https://headwater.example.com/runs/team-a/nightly-x")
