"""Argument parsing, parameters, namespaces, times and error reporting of the CLI."""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import yaml
from headwater.cli import build_parser
from headwater_operator import kube
from headwater_operator.api import Deployment, Flow
from headwater_operator.cli import common
from headwater_operator.cli.common import CliError, Io, guarded, kubeconfig_namespace
from headwater_operator.cli.params import (
    check_parameters,
    cli_parameters,
    effective_parameters,
    load_params_file,
    parse_param_flags,
)


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_every_operator_command_is_registered_through_the_entry_point() -> None:
    parser = build_parser()
    for argv in (["run", "d"], ["backfill", "s", "--start", "a", "--end", "b"],
                 ["get", "runs"], ["describe", "run", "r"], ["logs", "r"], ["cancel", "r"],
                 ["artifacts", "r"], ["lineage", "s3://lake/x"],
                 ["schedule", "preview", "-f", "x.yaml"]):
        args = parser.parse_args(argv)
        # The SDK's stub for a missing plugin is a _MissingPlugin, not a cmd_ function.
        assert args.func.__name__.startswith("cmd_"), argv


def test_run_options() -> None:
    args = parse("run", "nightly", "-p", "a=1", "--param", "b=x", "--params-file", "p.yaml",
                 "--wait", "--timeout", "30", "-n", "data", "-o", "json")
    assert args.deployment == "nightly"
    assert args.param == ["a=1", "b=x"]
    assert (args.params_file, args.wait, args.follow, args.timeout) == ("p.yaml", True, False,
                                                                        30.0)
    assert (args.namespace, args.output) == ("data", "json")
    defaults = parse("run", "nightly")
    assert (defaults.param, defaults.output, defaults.namespace, defaults.name) == (
        [], "table", None, None)


def test_backfill_requires_a_window_and_output_formats_are_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as missing:
        parse("backfill", "daily", "--start", "2026-01-01")
    assert missing.value.code == 2
    assert "--end" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_output:
        parse("get", "runs", "-o", "xml")
    assert bad_output.value.code == 2
    args = parse("backfill", "daily", "--start", "a", "--end", "b", "--max-runs", "500",
                 "--dry-run")
    assert (args.max_runs, args.dry_run) == (500, True)


def test_get_accepts_kind_aliases_and_filters() -> None:
    args = parse("get", "flowruns", "-l", "team=data", "--deployment", "nightly")
    assert (args.kind, args.selector, args.deployment) == ("flowruns", "team=data", "nightly")
    with pytest.raises(SystemExit):
        parse("get", "pods")


# --- parameters -------------------------------------------------------------------------
def test_param_flags_parse_json_values_and_later_flags_win() -> None:
    assert parse_param_flags(["n=3", "day=2026-03-01", 'tags=["a","b"]', "n=4", "s="]) == {
        "n": 4, "day": "2026-03-01", "tags": ["a", "b"], "s": ""}


@pytest.mark.parametrize("flag", ["novalue", "=3"])
def test_malformed_param_flag_is_a_usage_error(flag: str) -> None:
    with pytest.raises(CliError) as error:
        parse_param_flags([flag])
    assert error.value.code == 2
    assert "NAME=VALUE" in error.value.message


def test_params_file_yaml_dates_become_strings_and_flags_override(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("start_date: 2026-03-01\nn: 2\nnested: {a: 1}\n", encoding="utf-8")
    assert load_params_file(str(path)) == {"start_date": "2026-03-01", "n": 2,
                                           "nested": {"a": 1}}
    assert cli_parameters(str(path), ["n=5"]) == {"start_date": "2026-03-01", "n": 5,
                                                  "nested": {"a": 1}}
    json_path = tmp_path / "p.json"
    json_path.write_text('{"n": 7}', encoding="utf-8")
    assert cli_parameters(str(json_path), []) == {"n": 7}


@pytest.mark.parametrize(("content", "expected"), [
    ("- 1\n- 2\n", "must hold one object"),
    ("a: [1\n", "not valid YAML"),
])
def test_bad_params_file_names_the_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CliError) as error:
        load_params_file(str(path))
    assert error.value.code == 2
    assert str(path) in error.value.message
    assert expected in error.value.message


def test_missing_params_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(CliError) as error:
        load_params_file(str(tmp_path / "nope.yaml"))
    assert error.value.code == 2


def _flow(schema: dict[str, object] | None = None, **defaults: object) -> Flow:
    return Flow.model_validate({
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Flow", "metadata": {"name": "etl"},
        "spec": {"image": "i", "entrypoint": "m:f", "parameters": defaults,
                 **({"parametersSchema": schema} if schema else {})}})


def _deployment(**parameters: object) -> Deployment:
    return Deployment.model_validate({
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": "nightly"},
        "spec": {"flowRef": {"name": "etl"}, "parameters": parameters}})


def test_effective_parameters_flow_then_deployment_then_cli() -> None:
    flow = _flow(a=1, b=1, c=1)
    assert effective_parameters(flow, _deployment(b=2, c=2), {"c": 3}) == {"a": 1, "b": 2,
                                                                           "c": 3}
    assert effective_parameters(flow, None, {}) == {"a": 1, "b": 1, "c": 1}


def test_check_parameters_names_each_bad_parameter() -> None:
    flow = _flow({"type": "object", "properties": {"n": {"type": "integer"}},
                  "required": ["n", "day"]})
    check_parameters(flow, {"n": 1, "day": "x"}, "Deployment d")  # valid: no error
    with pytest.raises(CliError) as error:
        check_parameters(flow, {"n": "one"}, "Deployment default/nightly")
    assert error.value.code == 2
    message = error.value.message
    assert message.startswith("Deployment default/nightly: parameters rejected by Flow etl")
    assert "parameter 'n'" in message
    assert "'day' is a required property" in message
    assert "nothing was created" in message


# --- namespaces, times, errors ----------------------------------------------------------
def test_namespace_from_the_kubeconfig_context() -> None:
    config = {"current-context": "a", "contexts": [
        {"name": "a", "context": {"namespace": "team-a"}},
        {"name": "b", "context": {}}]}
    assert kubeconfig_namespace(config, None) == "team-a"
    assert kubeconfig_namespace(config, "b") is None
    assert kubeconfig_namespace(config, "missing") is None
    assert kubeconfig_namespace(None, None) is None


def test_resolve_namespace_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({"current-context": "c", "contexts": [
        {"name": "c", "context": {"namespace": "from-context"}}]}), encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert common.resolve_namespace(argparse.Namespace(namespace="explicit")) == "explicit"
    assert common.resolve_namespace(argparse.Namespace(namespace=None)) == "from-context"
    path.write_text(yaml.safe_dump({"current-context": "c", "contexts": [
        {"name": "c", "context": {}}]}), encoding="utf-8")
    assert common.resolve_namespace(argparse.Namespace(namespace=None)) == "default"


def test_parse_instant_reads_naive_times_in_the_given_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert common.parse_instant("2026-03-01", berlin) == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert common.parse_instant("2026-07-01T06:00", berlin) == datetime(2026, 7, 1, 4,
                                                                        tzinfo=UTC)
    assert common.parse_instant("2026-03-01T06:00:00Z", berlin) == datetime(
        2026, 3, 1, 6, tzinfo=UTC)
    with pytest.raises(CliError) as error:
        common.parse_instant("yesterday", berlin, "--start")
    assert error.value.code == 2
    assert "--start 'yesterday'" in error.value.message


def _io() -> tuple[Io, io.StringIO]:
    err = io.StringIO()
    return Io(out=io.StringIO(), err=err, now=lambda: datetime(2026, 1, 1, tzinfo=UTC)), err


@pytest.mark.parametrize(("error", "code", "text"), [
    (CliError("Deployment d not found; fix it", 1), 1, "headwater x: Deployment d not found"),
    (CliError("bad input", 2), 2, "headwater x: bad input"),
    (kube.Invalid(422, "Invalid", "spec.cancel: must be a boolean"), 1,
     "refused the request (422 Invalid): spec.cancel: must be a boolean"),
    (ConnectionRefusedError(111, "Connection refused"), 1,
     "cannot reach the Kubernetes API server"),
    # What the client's aiohttp transport raises once retries are spent.
    (aiohttp.ServerDisconnectedError(), 1,
     "cannot reach the Kubernetes API server (Server disconnected); check --kubeconfig"),
    (aiohttp.ClientPayloadError("Response payload is not completed"), 1,
     "cannot reach the Kubernetes API server (Response payload is not completed)"),
    (TimeoutError(), 1, "cannot reach the Kubernetes API server (no answer within 30 s)"),
])
def test_guarded_turns_failures_into_a_message_and_exit_code(
    error: Exception, code: int, text: str,
) -> None:
    def handler(args: argparse.Namespace, io: Io) -> int:
        raise error

    stream_io, err = _io()
    result = guarded("x", handler)(argparse.Namespace(io=stream_io))
    assert result == code
    assert text in err.getvalue()


def test_a_server_that_refuses_connections_is_reported_unreachable(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "down",
        "clusters": [{"name": "down", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": "down", "context": {"cluster": "down", "user": "me"}}]}))
    # The commands' short policy: three retries (the operator's would make seven, over
    # ~26 s), and the flow-run pods' shared client keeps the long one.
    retries: list[tuple[str, str]] = []

    def retried(verb: str, reason: str) -> None:
        retries.append((verb, reason))

    kube.add_retry_observer(retried)
    args = parse("get", "runs", "--kubeconfig", str(kubeconfig))
    args.io, err = _io()
    try:
        assert args.func(args) == 1
    finally:
        kube.remove_retry_observer(retried)
        kube.close()
    assert retries == [("list", kube.CONNECTION_FAILED)] * 3
    assert kube.get_blocking_client().kube.retry == kube.DEFAULT_RETRY_POLICY
    assert err.getvalue() == (
        f"headwater get: cannot reach the Kubernetes API server (Cannot connect to host "
        f"127.0.0.1:{port} ssl:default [Connect call failed ('127.0.0.1', {port})]); check "
        "--kubeconfig/--context or $KUBECONFIG\n")


def test_building_the_parser_does_not_import_the_kubernetes_client() -> None:
    # `headwater --help` (and `headwater execute` next to the operator package) build the
    # whole parser; the Kubernetes client and models cost ~1.5 s to import, only on use.
    code = ("import sys; from headwater.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('kubernetes', 'headwater_operator.kube', "
            "'headwater_operator.api', 'headwater_operator.scheduling') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
