"""``headwater dev`` comes from headwater-dev's own entry point, never from the operator's.

The operator image installs headwater-operator without headwater-dev, so the operator's
commands must not need it; on a machine without it, ``headwater dev`` names what to install.
"""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

import pytest
from headwater import cli
from headwater_dev import sandbox
from headwater_operator.cli import register as register_operator_commands


def test_the_operator_registers_its_commands_but_not_dev() -> None:
    subparsers = argparse.ArgumentParser().add_subparsers()
    register_operator_commands(subparsers)
    assert "run" in subparsers.choices
    assert "dev" not in subparsers.choices


def test_dev_without_headwater_dev_says_to_install_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # headwater-operator installed, headwater-dev not: only the operator's plugin loads.
    monkeypatch.setattr(cli, "_load_plugins", register_operator_commands)
    assert cli.main(["dev", "--until-complete"]) == 2
    assert "pip install headwater-dev" in capsys.readouterr().err


def test_dev_is_registered_by_the_headwater_dev_distribution() -> None:
    (entry,) = [ep for ep in entry_points(group=cli.ENTRY_POINT_GROUP) if ep.name == "dev"]
    assert entry.value == "headwater_dev.sandbox:register"
    assert entry.dist is not None
    assert entry.dist.name == "headwater-dev"
    assert cli.build_parser().parse_args(["dev", "--until-complete"]).func is sandbox.main


def test_a_missing_plugin_command_with_options_first_still_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "_load_plugins", lambda subparsers: None)
    assert cli.main(["run", "--wait", "nightly", "-p", "x=1"]) == 2
    assert "pip install headwater-operator" in capsys.readouterr().err


def test_an_installed_command_still_refuses_unknown_arguments(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["get", "runs", "--no-such-flag"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
