"""``headwater execute`` (the pod entrypoint), ``headwater schema`` and command plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from headwater import cli, contract

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "flows"

FLOWS = textwrap.dedent(
    """
    import datetime as dt
    import time
    from pathlib import Path

    from headwater import flow, runtime, task

    @task
    def one() -> int:
        return 1

    @flow
    def ok(day: dt.date, n: int = 1) -> dict:
        one()
        return {"day": day.isoformat(), "n": n, "id": runtime.flow_run.id,
                "attempt": runtime.flow_run.run_count,
                "deployment": runtime.flow_run.deployment_name,
                "scheduled": runtime.flow_run.scheduled_start_time.isoformat()}

    @flow
    def broken() -> None:
        raise RuntimeError("the code failed")

    @task
    def sleepy(marker: str) -> None:
        Path(marker).write_text("started")
        time.sleep(60)

    @flow
    def waits_in_flow(marker: str) -> None:
        Path(marker).write_text("started")
        time.sleep(60)

    @flow
    def waits_on_task(marker: str) -> None:
        one()
        sleepy.submit(marker).result()
    """
)


@pytest.fixture
def flows_file(tmp_path: Path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(FLOWS)
    return path


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = str(home)
    env.update(extra)
    return env


def _execute(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "headwater", "execute", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_execute_completed_from_contract_env(flows_file: Path, tmp_path: Path,
                                             headwater_home: Path) -> None:
    summary_path = tmp_path / "summary.json"
    env = _env(headwater_home, **{
        contract.ENV_ENTRYPOINT: f"{flows_file}:ok",
        contract.ENV_PARAMETERS: json.dumps({"day": "2024-01-31", "n": 2}),
        contract.ENV_FLOW_RUN_ID: "uid-123",
        contract.ENV_FLOW_RUN_NAME: "nightly-20240131",
        contract.ENV_SCHEDULED_TIME: "2024-01-31T00:00:00Z",
        contract.ENV_ATTEMPT: "2",
        contract.ENV_DEPLOYMENT_NAME: "nightly",
        contract.ENV_SUMMARY_PATH: str(summary_path),
    })
    proc = _execute(env)
    assert proc.returncode == contract.EXIT_COMPLETED, proc.stderr
    summary = contract.decode_summary(summary_path.read_text())
    assert summary["state"] == "Completed"
    assert summary["flowRunId"] == "uid-123"
    assert summary["taskRuns"] == {"Completed": 1}
    assert "Flow run 'nightly-20240131'" in proc.stdout


def test_runtime_sees_operator_identity(flows_file: Path, tmp_path: Path,
                                        headwater_home: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(
        f"import json, sys\nsys.path.insert(0, {str(flows_file.parent)!r})\n"
        + "from headwater import engine\nfrom flows import ok\n"
        "engine.ROOT_RUN_CONFIG.set(engine.RootRunConfig('uid-9', 'name-9', 0.0, 3, 'dep'))\n"
        "print(json.dumps(ok(day='2024-01-01')))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], env=_env(headwater_home),
                          capture_output=True, text=True, timeout=60, check=True)
    info: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info == {"day": "2024-01-01", "n": 1, "id": "uid-9", "attempt": 3,
                    "deployment": "dep", "scheduled": "1970-01-01T00:00:00+00:00"}


def test_execute_flags_override_env_and_summary_to_stdout(flows_file: Path,
                                                          headwater_home: Path) -> None:
    env = _env(headwater_home, **{contract.ENV_PARAMETERS: json.dumps({"day": "2024-01-01"})})
    proc = _execute(env, "--entrypoint", f"{flows_file}:ok", "--param", "n=5",
                    "--summary-path", "-")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["state"] == "Completed"


def test_execute_invalid_parameters_fail_with_reason(flows_file: Path, tmp_path: Path,
                                                     headwater_home: Path) -> None:
    summary_path = tmp_path / "s.json"
    proc = _execute(_env(headwater_home), "--entrypoint", f"{flows_file}:ok",
                    "--param", "day=not-a-date", "--summary-path", str(summary_path))
    assert proc.returncode == contract.EXIT_FAILED
    summary = json.loads(summary_path.read_text())
    assert summary["reason"] == "InvalidParameters"
    assert "day" in summary["message"]


def test_execute_failed_flow(flows_file: Path, tmp_path: Path, headwater_home: Path) -> None:
    summary_path = tmp_path / "s.json"
    proc = _execute(_env(headwater_home), "--entrypoint", f"{flows_file}:broken",
                    "--summary-path", str(summary_path))
    assert proc.returncode == contract.EXIT_FAILED
    summary = json.loads(summary_path.read_text())
    assert (summary["state"], summary["reason"]) == ("Failed", "FlowRunFailed")
    assert "the code failed" in summary["message"]


@pytest.mark.parametrize(("entrypoint", "reason"), [
    ("no_such_module_xyz:flow", "EntrypointNotLoadable"),
    ("missing-colon", "EntrypointNotLoadable"),
])
def test_execute_unloadable_entrypoint_crashes(entrypoint: str, reason: str, tmp_path: Path,
                                               headwater_home: Path) -> None:
    summary_path = tmp_path / "s.json"
    proc = _execute(_env(headwater_home), "--entrypoint", entrypoint,
                    "--summary-path", str(summary_path))
    assert proc.returncode == contract.EXIT_CRASHED
    summary = json.loads(summary_path.read_text())
    assert (summary["state"], summary["reason"]) == ("Crashed", reason)


def test_execute_without_entrypoint_crashes(tmp_path: Path, headwater_home: Path) -> None:
    proc = _execute(_env(headwater_home), "--summary-path", str(tmp_path / "s.json"))
    assert proc.returncode == contract.EXIT_CRASHED
    assert contract.ENV_ENTRYPOINT in proc.stderr


def test_execute_bad_parameters_json_crashes(tmp_path: Path, headwater_home: Path) -> None:
    env = _env(headwater_home, **{contract.ENV_PARAMETERS: "{not json"})
    proc = _execute(env, "--entrypoint", "x:y", "--summary-path", str(tmp_path / "s.json"))
    assert proc.returncode == contract.EXIT_CRASHED
    assert "HEADWATER_PARAMETERS is not valid JSON" in proc.stderr


@pytest.mark.parametrize("flow_name", ["waits_in_flow", "waits_on_task"])
def test_sigterm_cancels_and_writes_summary(
    flow_name: str, flows_file: Path, execute_then_sigterm: Callable[[str], Any],
) -> None:
    done = execute_then_sigterm(f"{flows_file}:{flow_name}")
    assert done.returncode == contract.EXIT_CANCELLED, done.stderr
    summary_path = done.summary_path
    summary = contract.decode_summary(summary_path.read_text())
    assert summary["state"] == "Cancelled"
    assert summary["reason"] == "TerminationSignal"
    if flow_name == "waits_on_task":
        assert summary.get("taskRuns") == {"Completed": 1, "Cancelled": 1}


def test_schema_command_prints_prefect_style_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", f"{EXAMPLES / 'ingest.py'}:ingest"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Parameters"
    assert schema["type"] == "object"
    assert schema["required"] == ["start_date", "end_date"]
    assert schema["properties"]["start_date"] == {
        "title": "start_date", "type": "string", "format": "date", "position": 0}
    assert "definitions" in schema


def test_schema_with_model_and_defaults(flows_file: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", f"{flows_file}:ok"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["n"] == {"title": "n", "type": "integer", "default": 1,
                                         "position": 1}


def test_schema_for_module_entrypoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mypkg_flows.py").write_text(
        "from headwater import flow\n@flow\ndef f(name: str = 'x') -> None: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["schema", "mypkg_flows:f"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["name"]["default"] == "x"


def test_schema_bad_entrypoint_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", "nope.py:f"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_operator_command_without_plugin_points_to_package(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "_load_plugins", lambda subparsers: None)
    assert cli.main(["run", "my-deployment", "--param", "x=1"]) == 2
    assert "pip install headwater-operator" in capsys.readouterr().err


def test_plugins_register_subcommands(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def register(subparsers: Any) -> None:
        parser = subparsers.add_parser("run")
        parser.add_argument("deployment")
        def handler(args: Any) -> int:
            calls.append(args.deployment)
            return 0

        parser.set_defaults(func=handler)

    class FakeEntryPoint:
        name = "operator"

        def load(self) -> Any:
            return register

    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group: [FakeEntryPoint()] if group == cli.ENTRY_POINT_GROUP
                        else [])
    assert cli.main(["run", "nightly"]) == 0
    assert calls == ["nightly"]


def test_parse_param_reads_json_values() -> None:
    assert cli.parse_param("n=3") == ("n", 3)
    assert cli.parse_param("day=2024-01-01") == ("day", "2024-01-01")
    assert cli.parse_param('tags=["a"]') == ("tags", ["a"])
    with pytest.raises(ValueError, match="name=value"):
        cli.parse_param("novalue")


@pytest.mark.parametrize("example", ["hello.py", "ingest.py", "assets.py", "async_fetch.py"])
def test_examples_run_as_scripts(example: str, headwater_home: Path) -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLES / example)], env=_env(headwater_home),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Run summary: flow" in proc.stdout
    if example == "assets.py":
        assert proc.stdout.count("unchanged, skipped") == 3
    if example == "async_fetch.py":
        assert "fetched 3 pages, 60 rows" in proc.stdout
