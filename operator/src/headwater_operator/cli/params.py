"""Parameters given on the command line: ``-p name=value`` and ``--params-file``.

``-p`` values are parsed as JSON when they are JSON (``-p n=3`` is the number 3,
``-p tags='["a","b"]'`` a list, ``-p day=2026-03-01`` the string), exactly like
``headwater execute --param``, whose parser this reuses. A file holds one YAML or JSON
object. Precedence, lowest first: Flow defaults < Deployment parameters < params file <
``-p`` flags; the merged result is checked against ``Flow.spec.parametersSchema`` with
the operator's own admission check, before anything is created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from headwater.cli import parse_param

from headwater_operator.api import Deployment, Flow
from headwater_operator.cli.common import EXIT_USAGE, CliError
from headwater_operator.flowruns.settings import merge_parameters, parameter_errors


def parse_param_flags(flags: Sequence[str], *, option: str = "-p", key: str = "NAME",
                      example: str = "start_date=2026-03-01") -> dict[str, Any]:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}``; a later flag wins over an earlier one.
    ``option``, ``key`` and ``example`` name the flag in the error (``-p``, ``--field``)."""
    result: dict[str, Any] = {}
    for flag in flags:
        try:
            name, value = parse_param(flag)
        except ValueError:
            raise CliError(f"{option} {flag!r} must look like {key}=VALUE, e.g. {option} "
                           f"{example} (VALUE is parsed as JSON when it is JSON)",
                           EXIT_USAGE) from None
        result[name] = value
    return result


def load_params_file(path: str) -> dict[str, Any]:
    """The parameter object in a YAML or JSON file (JSON is YAML, so one parser reads both)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"--params-file {path}: cannot read it ({exc.strerror})",
                       EXIT_USAGE) from None
    try:
        data = yaml.safe_load(text) if not path.endswith(".json") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise CliError(f"--params-file {path}: not valid YAML/JSON ({exc})", EXIT_USAGE) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping) or not all(isinstance(key, str) for key in data):
        raise CliError(f"--params-file {path}: must hold one object of parameter names to "
                       f"values, e.g. 'start_date: 2026-03-01' (got {type(data).__name__})",
                       EXIT_USAGE)
    # YAML turns 2026-03-01 into a date; parameters travel as JSON, so use JSON's types.
    loaded: dict[str, Any] = json.loads(json.dumps(dict(data), default=str))
    return loaded


def cli_parameters(params_file: str | None, flags: Sequence[str]) -> dict[str, Any]:
    """The parameters the user gave: the file, overridden key by key by ``-p`` flags."""
    base = load_params_file(params_file) if params_file else {}
    return merge_parameters(base, parse_param_flags(flags))


def effective_parameters(flow: Flow, deployment: Deployment | None,
                         overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Flow defaults < Deployment parameters < ``overrides``: what the flow will receive."""
    return merge_parameters(flow.spec.parameters,
                            deployment.spec.parameters if deployment else {}, overrides)


def check_parameters(flow: Flow, parameters: Mapping[str, Any], what: str) -> None:
    """Raise :class:`CliError` (exit 2) listing every schema violation of ``parameters``."""
    errors = parameter_errors(parameters, flow.spec.parameters_schema)
    if errors:
        lines = "\n  ".join(errors)
        raise CliError(f"{what}: parameters rejected by Flow {flow.metadata.name} "
                       f"spec.parametersSchema; nothing was created:\n  {lines}\n"
                       "Fix them with -p NAME=VALUE or --params-file.", EXIT_USAGE)
