"""``headwater ui``: serve the web UI (:mod:`headwater_operator.ui`) until Ctrl-C.

The options map onto :class:`~headwater_operator.ui.app.UiOptions` (docs/ui.md,
"Command"). The namespaces default as every command's ``-n`` does (the kubeconfig
context's, else ``default``); ``--all-namespaces`` serves all. The URL it prints is the
one to open; with ``--url`` (or ``HEADWATER_UI_URL``) that public address is printed and
used for links.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from urllib.parse import urlsplit

from headwater_operator.cli.common import EXIT_OK, EXIT_USAGE, CliError, Io, resolve_namespace
from headwater_operator.ui.app import UiOptions, serve
from headwater_operator.ui.markdown import url_origin


def options_from(args: argparse.Namespace) -> UiOptions:
    """The :class:`~headwater_operator.ui.app.UiOptions` of the command line."""
    if args.in_cluster and (args.kubeconfig or args.context):
        raise CliError("--in-cluster uses the pod's service account: drop --kubeconfig and "
                       "--context", EXIT_USAGE)
    if not args.in_cluster and args.auth == "client":
        raise CliError("--auth client is for --in-cluster; locally the UI acts with your "
                       "kubeconfig's identity", EXIT_USAGE)
    if not 0 < args.port < 65536:
        raise CliError(f"--port {args.port} is not a TCP port (1-65535)", EXIT_USAGE)
    if args.all_namespaces and args.namespace:
        raise CliError("give -n NAMESPACE or --all-namespaces, not both", EXIT_USAGE)
    if args.all_namespaces:
        namespaces: list[str] | None = None
    elif args.namespace:
        namespaces = list(dict.fromkeys(args.namespace))
    else:
        namespaces = [resolve_namespace(argparse.Namespace(
            namespace=None, kubeconfig=args.kubeconfig, context=args.context))]
    address = args.address or ("0.0.0.0" if args.in_cluster else "127.0.0.1")
    url = args.url or os.environ.get("HEADWATER_UI_URL") or None
    return UiOptions(address=address, port=args.port, namespaces=namespaces,
                     kubeconfig=args.kubeconfig, context=args.context,
                     in_cluster=args.in_cluster, auth=args.auth,
                     url=url.rstrip("/") if url else None,
                     image_origins=tuple(dict.fromkeys(
                         image_origin(o) for o in args.image_origin)))


def image_origin(value: str) -> str:
    """``--image-origin``'s value as CSP compares origins: ``scheme://host[:port]``,
    lower-cased; anything else (a path, another scheme, a wildcard) is refused."""
    parts = urlsplit(value.strip())
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or "*" in parts.netloc or "@" in parts.netloc or not port_ok
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise CliError(f"--image-origin {value!r} is not an origin: give scheme, host and "
                       "optional port only, e.g. --image-origin https://grafana.example.com",
                       EXIT_USAGE)
    return url_origin(value)


def cmd_ui(args: argparse.Namespace, io: Io) -> int:
    """Serve until interrupted."""
    options = options_from(args)

    def ready(listening: str) -> None:
        where = ("all namespaces" if options.namespaces is None
                 else "namespace(s) " + ", ".join(options.namespaces))
        io.out.write(f"Headwater UI: {options.url or listening} ({where}; Ctrl-C to stop)\n")
        io.out.flush()

    try:
        asyncio.run(serve(options, ready=ready))
    except KeyboardInterrupt:
        io.err.write("headwater ui: stopped\n")
    return EXIT_OK
