"""The ``headwater`` command line.

The SDK provides the commands that run *inside* a flow-run pod or on a laptop:

* ``headwater execute`` — the pod entrypoint. Reads the run from the environment
  variables in :mod:`headwater.contract` (``HEADWATER_ENTRYPOINT``,
  ``HEADWATER_PARAMETERS``, ``HEADWATER_FLOW_RUN_ID``, ...); ``--entrypoint``,
  ``--param k=v``, ``--params-json`` and ``--summary-path`` override them for local use.
  Writes the JSON run summary (≤ ``HEADWATER_SUMMARY_MAX_BYTES``, at most 4096 bytes) to
  ``HEADWATER_SUMMARY_PATH``, else to the termination log ``/dev/termination-log`` when
  it exists (Kubernetes mounts it), and
  exits with ``EXIT_COMPLETED``/``EXIT_FAILED``/``EXIT_CRASHED``/``EXIT_CANCELLED``.
  SIGTERM cancels the run: state Cancelled, summary written, exit ``EXIT_CANCELLED``.
* ``headwater fetch-source`` — the init container of a Flow with ``spec.source``: fetches
  the code into the pod's shared volume (:mod:`headwater.source`); ``headwater execute``
  then runs the entrypoint from there and records the commit in the run record.
* ``headwater schema <entrypoint>`` — prints the flow's parameter JSON schema (the
  value of ``Flow.spec.parametersSchema``).
* :func:`run_deploy` — what ``flow.deploy()`` calls: the plugin's ``deploy`` command,
  handed the SDK's :class:`~headwater.deployments.DeployRequest` as
  ``args.deploy_request``.

Plugin interface (how headwater-operator adds ``run``, ``backfill``, ``get``,
``describe``, ``logs``, ``cancel``, ``schedule``, and headwater-dev adds ``dev``): every
entry point in the group ``headwater.commands`` is loaded and called as
``register(subparsers)``, where ``subparsers`` is the ``argparse`` sub-parser action. A
plugin adds its sub-parsers and sets ``func`` on each with
``set_defaults(func=handler)``; ``handler(args)`` returns the exit code (``int``). When no
plugin provides one of :data:`PLUGIN_COMMANDS`, invoking it prints which distribution
provides it (``pip install headwater-operator`` or ``pip install headwater-dev``) and
exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from headwater import contract

if TYPE_CHECKING:
    from headwater.deployments import DeployRequest

ENTRY_POINT_GROUP = "headwater.commands"
PLUGIN_COMMANDS = {
    **dict.fromkeys(("run", "backfill", "get", "describe", "logs", "cancel", "schedule",
                     "deploy"), "headwater-operator"),
    "dev": "headwater-dev",
}
"""The commands plugins provide, and the distribution that provides each."""


def parse_param(text: str) -> tuple[str, Any]:
    """``k=v`` with ``v`` parsed as JSON when it is JSON, else kept as a string."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--param {text!r} must look like name=value")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def collect_parameters(env_json: str | None, params_json: str | None,
                       params: Sequence[str]) -> dict[str, Any]:
    """Merge parameters: environment JSON < ``--params-json`` < ``--param`` flags."""
    merged: dict[str, Any] = {}
    for source, text in (("HEADWATER_PARAMETERS", env_json), ("--params-json", params_json)):
        if not text:
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source} is not valid JSON: {exc.msg} at position {exc.pos}") \
                from None
        if not isinstance(value, dict):
            raise ValueError(f"{source} must be a JSON object of parameter names to values")
        merged.update(value)
    for item in params:
        name, value = parse_param(item)
        merged[name] = value
    return merged


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def default_summary_path() -> str | None:
    """``HEADWATER_SUMMARY_PATH``, else the termination log when Kubernetes mounted it."""
    explicit = os.environ.get(contract.ENV_SUMMARY_PATH)
    if explicit:
        return explicit
    return contract.TERMINATION_MESSAGE_PATH if os.path.exists(
        contract.TERMINATION_MESSAGE_PATH) else None


def write_summary(text: str, path: str | None) -> None:
    """Write the encoded summary to ``path`` (``-`` is stdout; ``None`` skips)."""
    if path is None:
        return
    if path == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _on_sigterm(signum: int, frame: Any) -> None:
    from headwater.exceptions import TerminationSignal

    # A second SIGTERM while we are stopping must not interrupt writing the summary.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise TerminationSignal("SIGTERM")


def summary_text(summary: contract.RunSummary) -> str:
    """``summary`` encoded within this pod's budget (``HEADWATER_SUMMARY_MAX_BYTES``: the
    operator sizes it to the pod's containers, which share 12 KiB of termination
    messages; 4096 without it)."""
    from headwater.summary import fit_summary

    return fit_summary(summary, contract.summary_budget(
        os.environ.get(contract.ENV_SUMMARY_MAX_BYTES)))


def _crash(reason: str, message: str, summary_path: str | None) -> int:
    from headwater.summary import crash_summary

    sys.stderr.write(f"headwater execute: {message}\n")
    write_summary(summary_text(crash_summary(reason, message)), summary_path)
    return contract.EXIT_CRASHED


def cmd_execute(args: argparse.Namespace) -> int:
    """Run a flow as the pod entrypoint and report it through the run summary."""
    env = os.environ
    summary_path = args.summary_path or default_summary_path()
    entrypoint = args.entrypoint or env.get(contract.ENV_ENTRYPOINT)
    if not entrypoint:
        return _crash("MissingEntrypoint", f"no entrypoint: set {contract.ENV_ENTRYPOINT} or "
                      "pass --entrypoint 'module:flow'", summary_path)
    try:
        parameters = collect_parameters(env.get(contract.ENV_PARAMETERS), args.params_json,
                                        args.param or [])
        config_kwargs: dict[str, Any] = {
            "flow_run_id": env.get(contract.ENV_FLOW_RUN_ID) or None,
            "flow_run_name": env.get(contract.ENV_FLOW_RUN_NAME) or None,
            "scheduled_start_time": _parse_time(env.get(contract.ENV_SCHEDULED_TIME)),
            "attempt": int(env.get(contract.ENV_ATTEMPT) or 1),
            "deployment_name": env.get(contract.ENV_DEPLOYMENT_NAME) or None,
        }
    except ValueError as exc:
        return _crash("InvalidRunContract", str(exc), summary_path)
    if env.get(contract.ENV_SOURCE_DIR):  # Flow.spec.source: run the fetched code
        from headwater.source import SourceError, enter, fetched_source

        try:
            fetched = fetched_source()
        except SourceError as exc:
            return _crash("SourceMissing", str(exc), summary_path)
        if fetched is not None:
            enter(fetched[0])
            config_kwargs["source"] = fetched[1]
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _execute(entrypoint, parameters, config_kwargs, summary_path)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _execute(entrypoint: str, parameters: dict[str, Any], config_kwargs: dict[str, Any],
             summary_path: str | None) -> int:
    import traceback

    from headwater import engine, states
    from headwater.exceptions import TerminationSignal
    from headwater.loader import load_flow
    from headwater.summary import build_summary, crash_summary, exit_code

    try:
        flow = load_flow(entrypoint)
    except TerminationSignal:
        return _crash("TerminationSignal", "SIGTERM arrived before the flow started",
                      summary_path)
    except BaseException as exc:  # any import error means the engine cannot run the flow
        traceback.print_exc()
        return _crash("EntrypointNotLoadable",
                      f"cannot load entrypoint {entrypoint!r}: {states.exception_message(exc)}",
                      summary_path)
    engine.ROOT_RUN_CONFIG.set(engine.RootRunConfig(**config_kwargs))
    engine.LAST_RUN_TREE.clear()
    try:
        if flow.isasync:
            from headwater.async_engine import run_flow_in_loop

            state = run_flow_in_loop(flow, parameters)
        else:
            state = engine.run_flow(flow, (), parameters, return_state=True)
    except TerminationSignal:
        state = states.Cancelled("The flow run received a termination signal (SIGTERM).")
    except BaseException as exc:  # never exit without a summary
        traceback.print_exc()
        state = states.Crashed(f"Engine error: {states.exception_message(exc)}", data=exc)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if engine.LAST_RUN_TREE:
        tree = engine.LAST_RUN_TREE[0]
        if tree.root.state.type not in states.TERMINAL_STATE_TYPES:
            tree.root.set_state(state)  # the engine did not get to record how it ended
        engine.close_record(tree)  # a no-op when the engine already wrote the final record
        summary = build_summary(tree, state)
    else:
        summary = crash_summary("FlowRunCrashed", state.message or state.name)
    write_summary(summary_text(summary), summary_path)
    code = exit_code(state)
    if state.type is states.StateType.CANCELLED:
        # Worker threads may still be inside cancelled tasks; do not wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def cmd_fetch_source(args: argparse.Namespace) -> int:
    """Fetch a Flow's ``spec.source`` into the pod's shared volume (init container)."""
    from headwater.source import main as fetch_main

    return fetch_main()


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the flow's parameter JSON schema."""
    from headwater.exceptions import EntrypointError
    from headwater.loader import load_flow

    try:
        flow = load_flow(args.entrypoint)
    except EntrypointError as exc:
        sys.stderr.write(f"headwater schema: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(flow.parameters, indent=2, sort_keys=False, default=str) + "\n")
    return 0


@dataclass(frozen=True)
class _MissingPlugin:
    """The handler of a plugin command whose distribution is not installed.

    Whatever follows the command (``headwater dev --until-complete``) belongs to a parser
    that is not installed, so :func:`main` lets any arguments through to this message.
    """

    name: str
    distribution: str

    def __call__(self, args: argparse.Namespace) -> int:
        sys.stderr.write(
            f"headwater {self.name}: this command is provided by the {self.distribution} "
            f"package; install it with: pip install {self.distribution}\n"
        )
        return 2


def _load_plugins(subparsers: Any) -> None:
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register = entry_point.load()
            register(subparsers)
        except Exception as exc:  # a broken plugin must not break `execute`
            sys.stderr.write(f"headwater: ignoring command plugin {entry_point.name!r}: "
                             f"{exc}\n")


def build_parser(load_plugins: bool = True) -> argparse.ArgumentParser:
    """The argument parser, with plugin commands registered."""
    parser = argparse.ArgumentParser(prog="headwater",
                                     description="Headwater: Kubernetes-native workflows.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    execute = subparsers.add_parser("execute", help="run a flow (flow-run pod entrypoint)")
    execute.add_argument("--entrypoint", help=f"'module:flow' or 'file.py:flow' "
                         f"(default: ${contract.ENV_ENTRYPOINT})")
    execute.add_argument("--param", action="append", metavar="NAME=VALUE",
                         help="a parameter (VALUE parsed as JSON if possible); repeatable")
    execute.add_argument("--params-json", help="parameters as a JSON object")
    execute.add_argument("--summary-path", help="where to write the run summary ('-': "
                         f"stdout; default ${contract.ENV_SUMMARY_PATH} or the termination log)")
    execute.set_defaults(func=cmd_execute)
    fetch = subparsers.add_parser(
        "fetch-source", help="fetch a Flow's source into the pod (init container command)")
    fetch.set_defaults(func=cmd_fetch_source)
    schema = subparsers.add_parser("schema", help="print a flow's parameter JSON schema")
    schema.add_argument("entrypoint", help="'module:flow' or 'file.py:flow'")
    schema.set_defaults(func=cmd_schema)
    if load_plugins:
        _load_plugins(subparsers)
    for name, distribution in PLUGIN_COMMANDS.items():
        if name not in subparsers.choices:
            stub = subparsers.add_parser(name, help=f"(needs {distribution})",
                                         add_help=False)
            stub.set_defaults(func=_MissingPlugin(name, distribution))
    return parser


def run_deploy(request: DeployRequest, output_dir: str | None) -> None:
    """Run ``headwater deploy`` for ``request`` (what ``flow.deploy()`` does): write the
    manifests to ``output_dir``, or apply them when it is ``None``.

    The command comes from the headwater-operator plugin, found like every plugin
    command; it is given ``request`` as ``args.deploy_request`` (Prefect's arguments
    say more than the command line can: several schedules, each with parameters).
    """
    parser = build_parser()
    argv = ["deploy", request.entrypoint, "--name", request.name, "--image", request.image,
            *(["--output-dir", output_dir] if output_dir is not None else ["--apply"]),
            *(["--namespace", request.namespace] if request.namespace else [])]
    args = parser.parse_args(argv)
    if isinstance(args.func, _MissingPlugin):
        raise RuntimeError(f"flow {request.flow.name!r}: deploy() validates and writes the "
                           "manifests with the headwater-operator package, which is not "
                           "installed; install it with: pip install headwater-operator")
    args.deploy_request = request
    code: int = args.func(args)
    if code != 0:
        raise RuntimeError(f"flow {request.flow.name!r}: deploy() failed (headwater deploy "
                           f"exit code {code}); the reason is printed above")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``headwater`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The pod entrypoint must start fast: plugins (the operator CLI) can import heavy
    # libraries, and `execute`/`schema` never need them.
    own_command = bool(arguments) and arguments[0] in ("execute", "schema", "fetch-source")
    parser = build_parser(load_plugins=not own_command)
    args, unrecognized = parser.parse_known_args(arguments)
    func = getattr(args, "func", None)
    if unrecognized and not isinstance(func, _MissingPlugin):
        parser.error(f"unrecognized arguments: {' '.join(unrecognized)}")
    if func is None:
        parser.print_help()
        return 2
    result: int = func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
