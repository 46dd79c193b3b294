"""Artifacts, secrets (and their redaction) and the JSON log format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from headwater import (
    Secret,
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
    flow,
    get_run_logger,
    task,
)
from headwater.artifacts import read_artifact
from headwater.blocks.system import Secret as PrefectPathSecret
from headwater.engine import LAST_RUN_TREE
from headwater.exceptions import MissingSecretError
from headwater.logging import setup_logging
from headwater.summary import build_summary, fit_summary


def test_artifacts_are_stored_and_listed(headwater_home: Path) -> None:
    @task
    def publish() -> None:
        create_markdown_artifact("# Report\nall good", key="daily-report")
        create_table_artifact([{"day": "d1", "rows": 3}], key="row-counts")
        create_link_artifact("https://example.invalid/dash", link_text="dashboard")

    @flow
    def f() -> None:
        publish()

    f()
    tree = LAST_RUN_TREE[0]
    assert tree.artifacts[:2] == ["daily-report", "row-counts"]
    assert len(tree.artifacts) == 3  # the link has no key: listed by id
    stored = read_artifact(str(headwater_home), tree.root.id, "daily-report")
    assert stored["type"] == "markdown"
    assert stored["data"].startswith("# Report")
    assert stored["taskRunId"] == tree.task_runs[0].id
    assert build_summary(tree)["artifacts"] == tree.artifacts


def test_artifact_key_rule_is_explained() -> None:
    with pytest.raises(ValueError, match="lowercase letters, digits and dashes"):
        create_markdown_artifact("x", key="Daily_Report")


def test_secret_from_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_SECRET_DB_PASSWORD", "s3cr3t-value")
    secret = Secret.load("db-password")
    assert secret.get() == "s3cr3t-value"
    assert "s3cr3t" not in repr(secret)
    assert "s3cr3t" not in str(secret)
    assert PrefectPathSecret is Secret


def test_secret_from_mounted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "api-token").write_text("tok-from-file\n")
    monkeypatch.setenv("HEADWATER_SECRETS_DIR", str(tmp_path))
    assert Secret.load("api-token").get() == "tok-from-file"


def test_missing_secret_names_both_places(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_SECRETS_DIR", str(tmp_path))
    with pytest.raises(MissingSecretError) as info:
        Secret.load("nope")
    assert "HEADWATER_SECRET_NOPE" in str(info.value)
    assert str(tmp_path / "nope") in str(info.value)


def test_secret_values_never_reach_logs_states_or_summary(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HEADWATER_SECRET_WAREHOUSE", "hunter2-very-secret")
    setup_logging(force=True)

    @flow
    def leaky() -> None:
        value = Secret.load("warehouse").get()
        get_run_logger().info("connecting with %s", value)
        raise RuntimeError(f"auth failed for password {value}")

    state = leaky(return_state=True)
    assert "hunter2" not in (state.message or "")
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "connecting with ********" in out
    encoded = fit_summary(build_summary(LAST_RUN_TREE[0], state))
    assert "hunter2" not in encoded
    assert "********" in encoded


def test_json_log_format(monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HEADWATER_LOG_FORMAT", "json")
    setup_logging(force=True)

    @flow(flow_run_name="json-run")
    def f() -> None:
        get_run_logger().info("structured")

    try:
        f()
    finally:
        monkeypatch.delenv("HEADWATER_LOG_FORMAT")
        setup_logging(force=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()
             if line.startswith("{")]
    record = next(r for r in lines if r["message"] == "structured")
    assert record["level"] == "INFO"
    assert record["flow_run_name"] == "json-run"
    assert record["flow_run_id"] == LAST_RUN_TREE[0].root.id
