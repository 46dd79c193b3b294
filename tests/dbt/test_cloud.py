"""dbt Cloud against a local server that implements the endpoints the integration calls.

The server (tests/support/dbt_cloud_server.py) listens on a real socket and answers with
the shapes of dbt Cloud's published API v2 spec; the artifacts it serves are real
``dbt build`` outputs (data/cloud/, made by make_cloud_artifacts.py with dbt-core and
dbt-duckdb).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from dbt_cloud_server import DbtCloudServer, Fault, Job
from headwater import flow, runstore
from headwater.context import RunTree
from headwater.engine import LAST_RUN_TREE
from headwater.exceptions import BlockValidationError
from headwater_dbt import asset_key
from headwater_dbt.cloud import (
    DbtCloudCredentials,
    DbtCloudHTTPError,
    DbtCloudJobRunFailed,
    DbtCloudJobRunTimedOut,
    TriggerJobRunOptions,
    _retry_after,
    run_dbt_cloud_job,
    trigger_dbt_cloud_job_run_and_wait_for_completion,
)
from pydantic import ValidationError

TOKEN = "dbtc_Zq81-service-token-never-shown"
ACCOUNT = 4321
DATA = Path(__file__).parent / "data" / "cloud"
API = f"/api/v2/accounts/{ACCOUNT}"


@pytest.fixture
def server() -> Iterator[DbtCloudServer]:
    with DbtCloudServer(TOKEN, ACCOUNT) as running:
        yield running


@pytest.fixture
def credentials(server: DbtCloudServer) -> DbtCloudCredentials:
    return DbtCloudCredentials(account_id=ACCOUNT, api_key=TOKEN, domain=server.url)


def _lineage_in_manifest(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """Each model, seed and snapshot's asset key -> its upstream assets' keys, from
    ``depends_on.nodes`` (sources included), as the manifest says."""
    relations = {**manifest["nodes"], **manifest["sources"]}
    adapter = manifest["metadata"]["adapter_type"]
    return {
        asset_key(node, adapter): sorted(
            asset_key(relations[parent], adapter) for parent in node["depends_on"].get("nodes", [])
            if relations[parent]["resource_type"] in ("model", "seed", "snapshot", "source"))
        for node in manifest["nodes"].values()
        if node["resource_type"] in ("model", "seed", "snapshot")}


def _last_record() -> dict[str, Any]:
    """The record the last root flow run wrote to this test's HEADWATER_HOME."""
    recorder = LAST_RUN_TREE[0].recorder
    assert recorder is not None, "the run wrote no record"
    return runstore.read_record(recorder.location.url)


def _states(tree: RunTree) -> dict[str, str]:
    """Each reported node's unique id (its task key is ``dbt.<unique_id>``) -> its state."""
    return {run.task_key.removeprefix("dbt."): run.state.name for run in tree.task_runs}


def _no_token_anywhere(home: Path, *texts: str) -> None:
    """The token is in no file under HEADWATER_HOME (run record, results, artifacts,
    blocks' documents) and in none of ``texts``."""
    for text in texts:
        assert TOKEN not in text
    for path in home.rglob("*"):
        if path.is_file() and not path.name.endswith(".secrets.json"):
            assert TOKEN.encode() not in path.read_bytes(), path


def test_success_run_is_triggered_polled_and_its_artifacts_fetched(
        server: DbtCloudServer, credentials: DbtCloudCredentials) -> None:
    server.jobs[42] = Job(statuses=[1, 2, 3, 10], artifacts=DATA / "success")
    options = TriggerJobRunOptions(cause="nightly", git_branch="main",
                                   steps_override=["dbt build --select tag:daily"])

    run = run_dbt_cloud_job(credentials, 42, options=options, timeout_seconds=60,
                            poll_interval_seconds=0.01)

    assert run["status"] == 10
    assert run["id"] == 70_000_001
    tree = LAST_RUN_TREE[0]
    run_results = json.loads((DATA / "success" / "run_results.json").read_text())
    manifest = json.loads((DATA / "success" / "manifest.json").read_text())
    assert _states(tree) == {r["unique_id"]: "Completed" for r in run_results["results"]}
    assert {a["key"]: a["upstream"] for a in tree.assets} == _lineage_in_manifest(manifest)
    assert "dbt-cloud-run-70000001" in tree.artifacts
    assert server.calls() == [
        f"POST {API}/jobs/42/run/",
        *[f"GET {API}/runs/70000001/"] * 3,  # Starting, Running, Success
        f"GET {API}/runs/70000001/artifacts/",
        f"GET {API}/runs/70000001/artifacts/manifest.json",
        f"GET {API}/runs/70000001/artifacts/run_results.json",
    ]
    assert json.loads(server.requests[0].body) == {
        "cause": "nightly", "git_branch": "main",
        "steps_override": ["dbt build --select tag:daily"]}
    assert server.requests[0].headers["content-type"] == "application/json"
    for request in server.requests:
        assert request.headers["authorization"] == f"Token {TOKEN}"
        assert request.headers["accept"] == "application/json"
        assert TOKEN not in request.path
        assert TOKEN.encode() not in request.body


def test_error_run_fails_the_flow_naming_the_run_and_its_message(
        server: DbtCloudServer, credentials: DbtCloudCredentials) -> None:
    server.jobs[7] = Job(statuses=[1, 3, 20], artifacts=DATA / "error",
                         status_message="Database Error in model orders_enriched")

    with pytest.raises(DbtCloudJobRunFailed) as info:
        run_dbt_cloud_job(credentials, 7, timeout_seconds=60, poll_interval_seconds=0.01)

    assert info.value.run_id == 70_000_001
    assert "dbt Cloud run 70000001 of job 7" in str(info.value)
    assert str(info.value).endswith(
        "Database Error in model orders_enriched; failed: model.shop.orders_enriched, "
        "test.shop.revenue_at_least")
    states = _states(LAST_RUN_TREE[0])
    assert states["model.shop.orders_enriched"] == "Failed"
    assert states["test.shop.revenue_at_least"] == "Failed"
    assert states["model.shop.orders_report"] == "NotReady"
    assert states["model.shop.customer_revenue"] == "Completed"
    assert f"GET {API}/runs/70000001/artifacts/run_results.json" in server.calls()
    assert LAST_RUN_TREE[0].root.state.type.value == "FAILED"


def test_timeout_cancels_the_run_and_fails_the_flow(
        server: DbtCloudServer, credentials: DbtCloudCredentials) -> None:
    server.jobs[9] = Job(statuses=[1, 3])  # never ends by itself

    with pytest.raises(DbtCloudJobRunTimedOut) as info:
        run_dbt_cloud_job(credentials, 9, timeout_seconds=0.2, poll_interval_seconds=0.02)

    assert info.value.cancelled
    assert str(info.value).startswith(
        "dbt Cloud run 70000001 did not finish within 0.2 s (last status Running); "
        "it was cancelled")
    assert server.calls()[-1] == f"POST {API}/runs/70000001/cancel/"
    assert server.runs[70_000_001].status == 30
    assert LAST_RUN_TREE[0].root.state.type.value == "FAILED"


def test_timeout_says_when_the_cancel_failed_too(
        server: DbtCloudServer, credentials: DbtCloudCredentials) -> None:
    server.jobs[9] = Job(statuses=[3])
    server.faults.append(Fault("POST", f"{API}/runs/70000001/cancel/", 403))

    with pytest.raises(DbtCloudJobRunTimedOut) as info:
        run_dbt_cloud_job(credentials, 9, timeout_seconds=0.05, poll_interval_seconds=0.01)

    assert not info.value.cancelled
    assert "cancelling it failed too" in str(info.value)
    assert "HTTP 403" in str(info.value)
    assert "cancel it in dbt Cloud" in str(info.value)


def test_429_and_503_are_retried_honouring_retry_after(
        server: DbtCloudServer, credentials: DbtCloudCredentials) -> None:
    server.jobs[1] = Job(statuses=[10])
    server.faults += [Fault("POST", f"{API}/jobs/1/run/", 429, {"Retry-After": "7"}),
                      Fault("GET", f"{API}/runs/70000001/", 503),
                      Fault("GET", f"{API}/runs/70000001/", 503)]
    waits: list[float] = []
    client = credentials.get_client(sleep=waits.append, backoff_seconds=0.5)

    run = client.trigger_job_run(1)
    assert client.get_run(run["id"])["status"] == 10

    assert waits == [7.0, 0.5, 1.0]  # Retry-After, then exponential backoff
    assert server.calls() == [f"POST {API}/jobs/1/run/"] * 2 + [f"GET {API}/runs/70000001/"] * 3


def test_a_flow_rides_out_429_and_503(server: DbtCloudServer,
                                      credentials: DbtCloudCredentials) -> None:
    server.jobs[1] = Job(statuses=[3, 10], artifacts=DATA / "success")
    server.faults += [Fault("POST", f"{API}/jobs/1/run/", 429, {"Retry-After": "0"}),
                      Fault("GET", f"{API}/runs/70000001/artifacts/manifest.json", 503,
                            {"Retry-After": "0"})]

    assert run_dbt_cloud_job(credentials, 1, poll_interval_seconds=0.01)["status"] == 10
    assert server.calls().count(f"POST {API}/jobs/1/run/") == 2


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert _retry_after(later, now.timestamp()) == 30.0
    assert _retry_after("12", now.timestamp()) == 12.0
    assert _retry_after("soon", now.timestamp()) is None


def test_a_trigger_is_not_retried_on_500(server: DbtCloudServer,
                                         credentials: DbtCloudCredentials) -> None:
    server.jobs[1] = Job(statuses=[10])
    server.faults.append(Fault("POST", f"{API}/jobs/1/run/", 500))
    client = credentials.get_client(sleep=lambda _: None)

    with pytest.raises(DbtCloudHTTPError) as info:
        client.trigger_job_run(1)

    assert info.value.status == 500
    assert str(info.value) == f"dbt Cloud POST {API}/jobs/1/run/ answered HTTP 500: injected"
    assert server.calls() == [f"POST {API}/jobs/1/run/"]  # a 500 may have queued a run


def test_retries_give_up_naming_the_status_and_run(server: DbtCloudServer,
                                                   credentials: DbtCloudCredentials) -> None:
    server.jobs[1] = Job(statuses=[3])
    client = credentials.get_client(sleep=lambda _: None, max_retries=2)
    run_id = client.trigger_job_run(1)["id"]
    server.faults += [Fault("GET", f"{API}/runs/{run_id}/", 503)] * 3

    with pytest.raises(DbtCloudHTTPError) as info:
        client.get_run(run_id)

    assert str(info.value) == (f"dbt Cloud GET {API}/runs/{run_id}/ (run {run_id}) answered "
                               "HTTP 503: injected")
    assert info.value.run_id == run_id


def test_a_wrong_token_is_named_as_the_fix_never_shown(
        server: DbtCloudServer, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str], headwater_home: Path) -> None:
    server.jobs[1] = Job(statuses=[10])
    wrong = DbtCloudCredentials(account_id=ACCOUNT, api_key=TOKEN + "-revoked",
                                domain=server.url)

    with caplog.at_level(logging.DEBUG), pytest.raises(DbtCloudHTTPError) as info:
        run_dbt_cloud_job(wrong, 1)

    assert str(info.value) == (f"dbt Cloud POST {API}/jobs/1/run/ answered HTTP 401: Invalid "
                               "token.; check the api_key of the dbt Cloud credentials block")
    out, err = capsys.readouterr()
    _no_token_anywhere(headwater_home, str(info.value), repr(info.value), caplog.text, out, err)


def test_an_unknown_job_says_what_to_check(server: DbtCloudServer,
                                           credentials: DbtCloudCredentials) -> None:
    with pytest.raises(DbtCloudHTTPError, match=r"HTTP 404: Job not found.; check account_id, "
                       "the job or run id, and the domain"):
        credentials.get_client().trigger_job_run(555)


def test_no_server_is_an_error_naming_the_host() -> None:
    credentials = DbtCloudCredentials(account_id=ACCOUNT, api_key=TOKEN,
                                      domain="http://127.0.0.1:9")
    with pytest.raises(DbtCloudHTTPError, match=r"POST .*/jobs/1/run/ got no answer from "
                       r"http://127\.0\.0\.1:9") as info:
        credentials.get_client(sleep=lambda _: None).trigger_job_run(1)
    assert info.value.status is None


def test_the_token_never_reaches_logs_errors_the_record_or_artifacts(
        server: DbtCloudServer, credentials: DbtCloudCredentials,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        headwater_home: Path) -> None:
    server.jobs[1] = Job(statuses=[1, 10], artifacts=DATA / "success")
    server.jobs[2] = Job(statuses=[20], artifacts=DATA / "error", status_message="failed")
    server.jobs[3] = Job(statuses=[3])
    credentials.save("dbt-cloud")

    @flow
    def pipeline(job_id: int, timeout: float) -> None:
        run_dbt_cloud_job(DbtCloudCredentials.load("dbt-cloud"), job_id,
                          timeout_seconds=timeout, poll_interval_seconds=0.01)

    errors = []
    with caplog.at_level(logging.DEBUG):
        pipeline(1, 60)
        record = _last_record()
        for job_id, timeout in ((2, 60), (3, 0.05)):
            with pytest.raises((DbtCloudJobRunFailed, DbtCloudJobRunTimedOut)) as info:
                pipeline(job_id, timeout)
            errors += [str(info.value), repr(info.value)]
    out, err = capsys.readouterr()

    # The record of the successful run holds the subflow, its parameters (the block among
    # them), the nodes' task runs and the table artifact: and no token.
    assert "dbt-cloud-run-70000001" in json.dumps(record)
    assert sum(t["taskKey"].startswith("dbt.") for t in record["taskRuns"]) == 11
    assert any(p.name.endswith(".secrets.json") for p in headwater_home.rglob("*"))
    _no_token_anywhere(headwater_home, json.dumps(record), caplog.text, out, err, *errors)


def test_credentials_block_keeps_the_token_apart(headwater_home: Path) -> None:
    DbtCloudCredentials(account_id=ACCOUNT, api_key=TOKEN, domain="emea.dbt.com").save("dbtc")

    loaded = DbtCloudCredentials.load("dbtc")

    assert loaded.api_key.get_secret_value() == TOKEN
    assert loaded.base_url == "https://emea.dbt.com"
    assert TOKEN not in repr(loaded)
    document = (headwater_home / "blocks" / "dbtc.json").read_text()
    assert TOKEN not in document
    assert json.loads(document)["secrets"] == ["api_key"]


def test_credentials_domain_forms() -> None:
    def base(domain: str) -> str:
        return DbtCloudCredentials(account_id=1, api_key=TOKEN, domain=domain).base_url

    assert base("cloud.getdbt.com") == "https://cloud.getdbt.com"
    assert base("ab123.us1.dbt.com") == "https://ab123.us1.dbt.com"
    assert base("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert DbtCloudCredentials(account_id=1, api_key=TOKEN).base_url == "https://cloud.getdbt.com"
    with pytest.raises((ValidationError, BlockValidationError),
                       match="is not a host or an http\\(s\\) base URL"):
        DbtCloudCredentials(account_id=1, api_key=TOKEN, domain="ftp://dbt.example.com")


def test_trigger_options_are_checked_before_any_request() -> None:
    with pytest.raises(ValidationError, match="steps_overide"):
        TriggerJobRunOptions(steps_overide=["dbt run"])  # type: ignore[call-arg]
    assert TriggerJobRunOptions().body() == {"cause": "Triggered by Headwater"}


def test_prefect_name_and_parameters(server: DbtCloudServer,
                                     credentials: DbtCloudCredentials) -> None:
    server.jobs[5] = Job(statuses=[3, 3, 3])
    with pytest.raises(DbtCloudJobRunTimedOut, match=r"within 0\.05 s"):
        trigger_dbt_cloud_job_run_and_wait_for_completion(
            dbt_cloud_credentials=credentials, job_id=5,
            trigger_job_run_options=TriggerJobRunOptions(schema_override="ci_42"),
            max_wait_seconds=0.05, poll_frequency_seconds=0.01)  # type: ignore[arg-type]
    assert json.loads(server.requests[0].body)["schema_override"] == "ci_42"


def test_a_redirect_elsewhere_is_not_followed_with_the_token(
        server: DbtCloudServer, credentials: DbtCloudCredentials) -> None:
    server.jobs[1] = Job(statuses=[3])
    client = credentials.get_client()
    run_id = client.trigger_job_run(1)["id"]
    with DbtCloudServer(TOKEN, ACCOUNT) as elsewhere:
        server.faults.append(Fault("GET", f"{API}/runs/{run_id}/", 302,
                                   {"Location": f"{elsewhere.url}{API}/runs/{run_id}/"}))
        with pytest.raises(DbtCloudHTTPError, match="HTTP 302: injected; it redirected to "
                           "another host, where the token is not sent"):
            client.get_run(run_id)
        assert elsewhere.requests == []


def test_a_redirect_within_the_host_is_followed(server: DbtCloudServer,
                                                credentials: DbtCloudCredentials) -> None:
    server.jobs[1] = Job(statuses=[3])
    run_id = credentials.get_client().trigger_job_run(1)["id"]
    server.faults.append(Fault("GET", f"{API}/runs/{run_id}", 301,
                               {"Location": f"{server.url}{API}/runs/{run_id}/"}))

    assert credentials.get_client()._json("GET", f"/runs/{run_id}")["id"] == run_id
    assert server.calls()[-2:] == [f"GET {API}/runs/{run_id}", f"GET {API}/runs/{run_id}/"]
    assert server.requests[-1].headers["authorization"] == f"Token {TOKEN}"


def test_a_token_the_server_echoes_is_masked_in_the_error(
        server: DbtCloudServer, credentials: DbtCloudCredentials) -> None:
    server.faults.append(Fault("POST", f"{API}/jobs/1/run/", 403,
                               message=f"token {TOKEN} may not trigger job 1"))

    with pytest.raises(DbtCloudHTTPError) as info:
        credentials.get_client().trigger_job_run(1)

    assert str(info.value).startswith(
        f"dbt Cloud POST {API}/jobs/1/run/ answered HTTP 403: token ******** may not trigger")
