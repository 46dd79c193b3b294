"""What every operator-side command shares: options, connection, errors and exit codes.

Exit codes are the same for every command, so scripts can branch on them:

* ``0`` — done (for ``run --wait``: the run ended ``Completed``);
* ``1`` — the run did not complete (Failed, Crashed, Cancelled, timed out while waiting),
  an object was not found, or the API server refused or could not be reached;
* ``2`` — the command line or an input (parameters, manifest, time) is invalid; nothing
  was created.

Handlers raise :class:`CliError` with the message a user sees (naming the object and
the fix) and the exit code; :func:`guarded` turns it, and the Kubernetes client's typed
errors, into a line on stderr and the code.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

if TYPE_CHECKING:
    from headwater_operator import kube

EXIT_OK = 0
EXIT_FAILED = 1
"""The run did not complete, an object is missing, or the API server said no."""
EXIT_USAGE = 2
"""Invalid command line or input; nothing was created."""

DEFAULT_NAMESPACE = "default"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
OUTPUT_FORMATS = ("table", "json", "yaml")

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A failure to report to the user: ``message`` names the object and the fix."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class Io:
    """Where a command writes and what time it is (tests inject both)."""

    out: TextIO
    err: TextIO
    now: Callable[[], datetime]


def default_io() -> Io:
    """The process's stdout/stderr and the system clock."""
    return Io(out=sys.stdout, err=sys.stderr, now=lambda: datetime.now(UTC))


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """``-o/--output table|json|yaml`` (default: a human table)."""
    parser.add_argument("-o", "--output", choices=OUTPUT_FORMATS, default="table",
                        help="output format (default: a human-readable table)")


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``-n/--namespace``, ``--kubeconfig`` and ``--context`` plus ``-o``."""
    parser.add_argument("-n", "--namespace",
                        help="namespace (default: the kubeconfig context's, else 'default')")
    parser.add_argument("--kubeconfig", help="path of the kubeconfig file "
                        "(default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
    parser.add_argument("--context", help="kubeconfig context to use (default: current)")
    add_output_option(parser)


def kubeconfig_namespace(kubeconfig: Mapping[str, Any] | None, context: str | None) -> str | None:
    """The namespace set on ``context`` (or the current context) of a kubeconfig document."""
    if not isinstance(kubeconfig, Mapping):
        return None
    wanted = context or kubeconfig.get("current-context")
    for entry in kubeconfig.get("contexts") or ():
        if isinstance(entry, Mapping) and entry.get("name") == wanted:
            namespace = (entry.get("context") or {}).get("namespace")
            return str(namespace) if namespace else None
    return None


def _kubeconfig_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


def resolve_namespace(args: argparse.Namespace) -> str:
    """``-n``, else the kubeconfig context's namespace, else the pod's, else ``default``."""
    if getattr(args, "namespace", None):
        return str(args.namespace)
    path = _kubeconfig_path(getattr(args, "kubeconfig", None))
    if path.is_file():
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            document = None  # the client reports an unusable kubeconfig when connecting
        namespace = kubeconfig_namespace(document, getattr(args, "context", None))
        if namespace:
            return namespace
    elif SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or DEFAULT_NAMESPACE
    return DEFAULT_NAMESPACE


@functools.cache
def cli_client() -> kube.BlockingKube:
    """The commands' client: the module-wide connection settings (so ``--kubeconfig``
    repoints it), :data:`~headwater_operator.kube.INTERACTIVE_RETRY_POLICY`. Not the
    process's shared blocking client, which flow-run pods use for Blocks and concurrency
    Leases with the long policy."""
    from headwater_operator import kube

    return kube.BlockingKube(retry=kube.INTERACTIVE_RETRY_POLICY)


def patient_client() -> kube.BlockingKube:
    """The client for waiting (``run --wait/--follow``, ``logs -f``), once the command's
    first request has shown the server is there: the operator's long retry policy, so a
    poll that meets an API server's restart waits it out instead of ending the wait."""
    from headwater_operator import kube

    return kube.get_blocking_client()


def connect(args: argparse.Namespace) -> tuple[kube.BlockingKube, str]:
    """The client (reconfigured when ``--kubeconfig``/``--context`` is given) and namespace."""
    from headwater_operator import kube

    if getattr(args, "kubeconfig", None) or getattr(args, "context", None):
        kube.configure(args.kubeconfig, args.context)
    return cli_client(), resolve_namespace(args)


def _describe_kube_error(exc: kube.KubeError) -> tuple[str, int]:
    from headwater_operator import kube

    if exc.reason == "NoConfiguration":
        return exc.message, EXIT_FAILED
    if isinstance(exc, kube.NotFound):
        return f"not found: {exc.message}", EXIT_FAILED
    return (f"the API server refused the request ({exc.status} {exc.reason}): {exc.message}",
            EXIT_FAILED)


def describe_unreachable(exc: BaseException) -> str:
    """What went wrong talking to the API server, for "cannot reach … (<this>)": the
    transport's own words, or, for a timeout (which has none), how long it waited."""
    from headwater_operator import kube

    if isinstance(exc, TimeoutError) and not str(exc):
        return f"no answer within {kube.DEFAULT_TIMEOUT_SECONDS:g} s"
    return str(exc) or type(exc).__name__


def guarded(name: str, handler: Callable[[argparse.Namespace, Io], int],
            io_factory: Callable[[], Io] = default_io) -> Handler:
    """Wrap ``handler(args, io)`` so every failure becomes a message and an exit code."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        # Imported here, not at module level: the parsers must load fast (see .parsers).
        import aiohttp

        from headwater_operator import kube

        io = getattr(args, "io", None) or io_factory()
        try:
            return handler(args, io)
        except CliError as exc:
            io.err.write(f"headwater {name}: {exc.message}\n")
            return exc.code
        except kube.KubeError as exc:
            message, code = _describe_kube_error(exc)
            io.err.write(f"headwater {name}: {message}\n")
            return code
        except (OSError, aiohttp.ClientError) as exc:  # refused, reset, timed out, TLS
            io.err.write(f"headwater {name}: cannot reach the Kubernetes API server "
                         f"({describe_unreachable(exc)}); check --kubeconfig/--context or "
                         "$KUBECONFIG\n")
            return EXIT_FAILED
        except KeyboardInterrupt:
            io.err.write(f"headwater {name}: interrupted\n")
            return 130

    return run


def parse_instant(text: str, zone: Any = UTC, option: str = "time") -> datetime:
    """An ISO 8601 date or date-time; without an offset it is read in ``zone``.

    ``2026-03-01`` is midnight at the start of that day in ``zone``; ``…Z`` and
    ``…+02:00`` are absolute. Raises :class:`CliError` (exit 2) naming ``option``.
    """
    try:
        parsed = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{option} {text!r} is not an ISO 8601 date or time; use e.g. "
                       "2026-03-01, 2026-03-01T06:00 (read in the schedule's timezone) or "
                       "2026-03-01T06:00:00Z", EXIT_USAGE) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)
