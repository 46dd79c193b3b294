"""``block create``'s inputs: field values, and secret values that never come from argv."""

from __future__ import annotations

import io
from typing import Any

import pytest
from headwater_operator.cli.blocks import describe_block, field_values, secret_values
from headwater_operator.cli.common import EXIT_USAGE, CliError


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_field_values_are_json_when_json_else_strings() -> None:
    assert field_values(["port=5432", "schema=raw", "tags=[\"a\"]", "on=true"]) == {
        "port": 5432, "schema": "raw", "tags": ["a"], "on": True}
    with pytest.raises(CliError, match="--field 'schema' must look like FIELD=VALUE") as bad:
        field_values(["schema"])
    assert bad.value.code == EXIT_USAGE


def test_secrets_come_from_stdin_lines_or_the_environment() -> None:
    stdin = io.StringIO("p4ss word\ntoken-2\n")
    values = secret_values(["password", "token"], ["api=API_KEY"], {"API_KEY": "k3y"}, stdin)
    assert values == {"api": "k3y", "password": "p4ss word", "token": "token-2"}
    with pytest.raises(CliError, match="environment variable MISSING is not set"):
        secret_values([], ["api=MISSING"], {}, io.StringIO())
    with pytest.raises(CliError, match="stdin ended before its value"):
        secret_values(["password"], [], {}, io.StringIO(""))
    with pytest.raises(CliError, match="given twice"):
        secret_values(["api"], ["api=API_KEY"], {"API_KEY": "k"}, io.StringIO("x\n"))


def test_a_terminal_is_prompted_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "typed"

    monkeypatch.setattr("getpass.getpass", getpass)
    assert secret_values(["password"], [], {}, _Tty()) == {"password": "typed"}
    assert prompts == ["value of secret field 'password': "]


def test_describe_masks_secret_fields_and_names_their_secret() -> None:
    body: dict[str, Any] = {
        "apiVersion": "headwater.dev/v1alpha1", "kind": "Block",
        "metadata": {"name": "sf-creds", "namespace": "data"},
        "spec": {"type": "m:C", "data": {"account": "xy"},
                 "blockRefs": {"parent": {"name": "base"}},
                 "secretRefs": {"password": {"name": "vault-sync", "key": "sf"}}}}
    text = describe_block(body, now=None)
    assert "  password   ********     Secret vault-sync key sf\n" in text
    assert "  parent     block base   spec.blockRefs\n" in text
    assert "Invalid" not in text
