"""``headwater ui``: its options, and the errors that name the fix."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from headwater.cli import build_parser
from headwater_operator.cli.common import Io
from headwater_operator.cli.ui import options_from


def _options(*argv: str):  # type: ignore[no-untyped-def]
    return options_from(build_parser().parse_args(["ui", *argv]))


def test_local_defaults_bind_loopback_and_serve_the_kubeconfig_namespace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config"
    config.write_text("current-context: c\ncontexts:\n- name: c\n  context:\n"
                      "    namespace: team-a\n")
    monkeypatch.delenv("HEADWATER_UI_URL", raising=False)
    options = _options("--kubeconfig", str(config))
    assert (options.address, options.port, options.namespaces, options.mode, options.url) == (
        "127.0.0.1", 8090, ["team-a"], "local", None)


def test_namespaces_all_namespaces_in_cluster_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_UI_URL", "https://hw.example.com/")
    assert _options("-n", "a", "-n", "b", "-n", "a").namespaces == ["a", "b"]
    everything = _options("-A", "--in-cluster", "--auth", "client")
    assert (everything.namespaces, everything.address, everything.mode) == (
        None, "0.0.0.0", "client")
    assert everything.url == "https://hw.example.com"
    assert _options("--in-cluster").mode == "server"


@pytest.mark.parametrize(("argv", "message"), [
    (("--auth", "client"), "--auth client is for --in-cluster"),
    (("--in-cluster", "--context", "x"), "drop --kubeconfig and --context"),
    (("--port", "0"), "--port 0 is not a TCP port"),
    (("-A", "-n", "x"), "not both"),
    (("-A", "--image-origin", "https://grafana.example.com/d/abc"), "is not an origin"),
    (("-A", "--image-origin", "ftp://files.example.com"), "is not an origin"),
    (("-A", "--image-origin", "https://*.example.com"), "is not an origin"),
    (("-A", "--image-origin", "grafana.example.com"), "is not an origin"),
])
def test_contradictions_exit_2_naming_the_fix(argv: tuple[str, ...], message: str) -> None:
    args = build_parser().parse_args(["ui", *argv])
    err = io.StringIO()
    args.io = Io(out=io.StringIO(), err=err, now=lambda: datetime.now(UTC))
    assert args.func(args) == 2
    assert message in err.getvalue()


def test_image_origins_are_normalised_as_csp_compares_them() -> None:
    options = _options("-A", "--image-origin", "HTTPS://Grafana.Example.com/",
                       "--image-origin", "http://10.0.0.5:3000",
                       "--image-origin", "https://grafana.example.com")
    assert options.image_origins == ("https://grafana.example.com", "http://10.0.0.5:3000")
    assert _options("-A").image_origins == ()
