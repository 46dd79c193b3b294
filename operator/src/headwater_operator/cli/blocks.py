"""``headwater block create|get|describe|delete`` and ``headwater variable get|set|ls|unset``.

They work on the cluster (the kubeconfig's, ``-n``) through the ``kubernetes`` block store
(:mod:`headwater_operator.blockstore`), so a block created here is the one
``Block.load`` reads in a flow-run pod and ``block.save()`` writes from a laptop.

What they must respect: a secret value is never an argument (a process's arguments are
visible to every user of the machine, and land in shell history): ``--secret FIELD``
reads it from a prompt without echo (or one line of stdin when it is not a terminal),
``--secret-from-env FIELD=VAR`` from an environment variable. Nothing prints one:
``describe`` shows a secret field as ``********`` and the Secret key it comes from.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from headwater.blocks.stores import BlockDocument, validate_block_name
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    BlockStoreError,
    InvalidNameError,
    VariableAlreadyExistsError,
)

from headwater_operator import blockstore, kube
from headwater_operator.api import BLOCK_TYPE_RULE, parse_resource
from headwater_operator.cli.common import EXIT_OK, EXIT_USAGE, CliError, Io, connect
from headwater_operator.cli.output import age, or_none, render_data, render_table
from headwater_operator.cli.params import parse_param_flags

MASK = "********"


# --- input ---------------------------------------------------------------------------------
def _pairs(flags: Sequence[str], option: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for flag in flags:
        name, sep, value = flag.partition("=")
        if not sep or not name:
            raise CliError(f"{option} {flag!r} must look like {example}", EXIT_USAGE)
        pairs.append((name, value))
    return pairs


def field_values(flags: Sequence[str]) -> dict[str, Any]:
    """``--field k=v`` flags: values parsed as JSON when they are JSON (``port=5432`` is a
    number, ``schema=raw`` a string), as ``headwater run -p`` does."""
    return parse_param_flags(flags, option="--field", key="FIELD", example="account=xy12345")


def read_secret(field: str, stream: TextIO | None = None) -> str:
    """A secret field's value from a prompt without echo, or one line of ``stream``
    (default stdin) when it is not a terminal (``printf '%s\\n' "$PW" | headwater …``)."""
    stream = stream or sys.stdin
    if stream.isatty():
        return getpass.getpass(f"value of secret field {field!r}: ")
    line = stream.readline()
    if not line:
        raise CliError(f"--secret {field}: stdin ended before its value; give one line per "
                       "--secret, or use --secret-from-env FIELD=VAR", EXIT_USAGE)
    return line[:-1] if line.endswith("\n") else line


def secret_values(prompted: Sequence[str], from_env: Sequence[str],
                  environ: Mapping[str, str], stream: TextIO | None = None) -> dict[str, str]:
    """The secret fields' values: ``--secret FIELD`` (prompted, in order) and
    ``--secret-from-env FIELD=VAR``."""
    values: dict[str, str] = {}
    for field, variable in _pairs(from_env, "--secret-from-env", "FIELD=ENVVAR, e.g. "
                                  "password=WAREHOUSE_PASSWORD"):
        if variable not in environ:
            raise CliError(f"--secret-from-env {field}={variable}: the environment variable "
                           f"{variable} is not set", EXIT_USAGE)
        values[field] = environ[variable]
    for field in prompted:
        if field in values:
            raise CliError(f"secret field {field!r} is given twice (--secret and "
                           "--secret-from-env)", EXIT_USAGE)
        values[field] = read_secret(field, stream)
    return values


def block_document(args: argparse.Namespace, secrets: Mapping[str, str]) -> BlockDocument:
    """The document ``block create`` writes; every field in one place only."""
    data = field_values(args.field)
    nested = dict(_pairs(args.block, "--block", "FIELD=BLOCK, e.g. connector=sf-creds"))
    places: dict[str, str] = {}
    for option, fields in (("--field", data), ("--block", nested), ("a secret option",
                                                                   secrets)):
        for field in fields:
            if not field.isidentifier():
                raise CliError(f"{option} {field!r}: a field name is a Python identifier",
                               EXIT_USAGE)
            if field in places:
                raise CliError(f"field {field!r} is given with {places[field]} and with "
                               f"{option}; give it once", EXIT_USAGE)
            places[field] = option
    for name in nested.values():
        _check_name(name)
    return BlockDocument(name=args.name, type=args.type, data=data, blocks=nested,
                         secrets=tuple(sorted(secrets)))


def _check_name(name: str) -> None:
    try:
        validate_block_name(name)
    except InvalidNameError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _check_type(type_: str) -> None:
    module, sep, qualname = type_.partition(":")
    parts = [*module.split("."), *qualname.split(".")]
    if not sep or not all(part.isidentifier() for part in parts):
        raise CliError(f"--type {type_!r} is not a block type: {BLOCK_TYPE_RULE}",
                       EXIT_USAGE)


# --- block ---------------------------------------------------------------------------------
def _block_store(args: argparse.Namespace) -> tuple[blockstore.KubernetesBlockStore, str]:
    client, namespace = connect(args)
    return blockstore.KubernetesBlockStore(client, namespace), namespace


def cmd_block_create(args: argparse.Namespace, io: Io) -> int:
    """Create (or, with ``--overwrite``, replace) a Block and its Secret."""
    _check_name(args.name)
    _check_type(args.type)
    secrets = secret_values(args.secret, args.secret_from_env, os.environ)
    document = block_document(args, secrets)
    store, namespace = _block_store(args)
    try:
        store.write(document, secrets, overwrite=args.overwrite)
    except BlockAlreadyExistsError:
        raise CliError(f"block {namespace}/{args.name} already exists; replace it with "
                       "--overwrite, or delete it first") from None
    except BlockStoreError as exc:
        raise CliError(str(exc)) from None
    where = (f" and Secret {blockstore.secret_name(args.name)} ({len(secrets)} secret "
             "field(s))" if secrets else "")
    verb = "replaced" if args.overwrite else "created"
    io.out.write(f"block/{args.name} {verb} in namespace {namespace}{where}\n")
    return EXIT_OK


def _get_block(client: kube.BlockingKube, namespace: str, name: str) -> dict[str, Any]:
    try:
        body: dict[str, Any] = client.get(kube.BLOCKS, name, namespace=namespace)
    except kube.NotFound:
        raise CliError(f"block {namespace}/{name} not found; list them with: headwater "
                       f"block get -n {namespace}") from None
    return body


def block_row(obj: Mapping[str, Any], now: Any) -> Sequence[str]:
    """NAME TYPE FIELDS BLOCKS SECRETS AGE (field names only: never a value)."""
    spec = obj.get("spec") or {}
    return (str(obj["metadata"]["name"]), or_none(spec.get("type")),
            or_none(",".join(sorted(spec.get("data") or {}))),
            or_none(",".join(f"{field}={ref.get('name')}" for field, ref in
                             sorted((spec.get("blockRefs") or {}).items()))),
            or_none(",".join(sorted(spec.get("secretRefs") or {}))),
            age(obj["metadata"].get("creationTimestamp"), now))


def cmd_block_get(args: argparse.Namespace, io: Io) -> int:
    """List the Blocks (or show one)."""
    client, namespace = connect(args)
    if args.name:
        items = [_get_block(client, namespace, args.name)]
    else:
        items = sorted(client.list(kube.BLOCKS, namespace=namespace),
                       key=lambda obj: str(obj["metadata"]["name"]))
    if args.output != "table":
        io.out.write(render_data(items[0] if args.name else
                                 {"apiVersion": "v1", "kind": "List", "items": items},
                                 args.output))
        return EXIT_OK
    if not items:
        io.err.write(f"No blocks found in namespace {namespace}.\n")
        return EXIT_OK
    io.out.write(render_table(("NAME", "TYPE", "FIELDS", "BLOCKS", "SECRETS", "AGE"),
                              [block_row(item, io.now()) for item in items]))
    return EXIT_OK


def describe_block(body: Mapping[str, Any], now: Any) -> str:
    """A Block for people: every field, secret ones masked with the Secret key they
    come from (the value is never read)."""
    meta = body["metadata"]
    spec = body.get("spec") or {}
    lines = [f"Name:       {meta['name']}", f"Namespace:  {meta.get('namespace')}",
             f"Type:       {spec.get('type')}",
             f"Age:        {age(meta.get('creationTimestamp'), now)}"]
    try:
        parse_resource(body)
    except ValueError as exc:
        lines.append(f"Invalid:    {exc}")
    rows: list[tuple[str, str, str]] = []
    for field, value in sorted((spec.get("data") or {}).items()):
        rows.append((field, json.dumps(value), "spec.data"))
    for field, ref in sorted((spec.get("blockRefs") or {}).items()):
        rows.append((field, f"block {ref.get('name')}", "spec.blockRefs"))
    for field, ref in sorted((spec.get("secretRefs") or {}).items()):
        rows.append((field, MASK, f"Secret {ref.get('name')} key {ref.get('key')}"))
    lines.append("Fields:")
    table = render_table(("  FIELD", "VALUE", "FROM"), [(f"  {f}", v, w) for f, v, w in rows])
    return "\n".join(lines) + "\n" + (table or "  <none>\n")


def cmd_block_describe(args: argparse.Namespace, io: Io) -> int:
    """Show one Block, secret fields masked."""
    client, namespace = connect(args)
    io.out.write(describe_block(_get_block(client, namespace, args.name), io.now()))
    return EXIT_OK


def cmd_block_delete(args: argparse.Namespace, io: Io) -> int:
    """Delete a Block (its Secret <name>-block goes with it)."""
    _check_name(args.name)
    store, namespace = _block_store(args)
    try:
        store.delete(args.name)
    except BlockNotFoundError:
        raise CliError(f"block {namespace}/{args.name} not found") from None
    except BlockStoreError as exc:
        raise CliError(str(exc)) from None
    io.out.write(f"block/{args.name} deleted from namespace {namespace} (with its Secret "
                 f"{blockstore.secret_name(args.name)}, if it had one)\n")
    return EXIT_OK


# --- variable ----------------------------------------------------------------------------
def _variable_store(args: argparse.Namespace
                    ) -> tuple[blockstore.KubernetesVariableStore, str]:
    client, namespace = connect(args)
    return blockstore.KubernetesVariableStore(client, namespace), namespace


def _variable_name(name: str) -> str:
    from headwater.blocks.stores import validate_variable_name

    try:
        return validate_variable_name(name)
    except InvalidNameError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def cmd_variable_get(args: argparse.Namespace, io: Io) -> int:
    """Print a variable's value as JSON (exit 1 when it does not exist)."""
    from headwater.blocks.stores import MISSING

    store, namespace = _variable_store(args)
    try:
        value = store.get(_variable_name(args.name))
    except BlockStoreError as exc:
        raise CliError(str(exc)) from None
    if value is MISSING:
        raise CliError(f"variable {args.name!r} not found in namespace {namespace}; list "
                       f"them with: headwater variable ls -n {namespace}")
    io.out.write(render_data(value, args.output) if args.output == "yaml"
                 else json.dumps(value) + "\n")
    return EXIT_OK


def cmd_variable_set(args: argparse.Namespace, io: Io) -> int:
    """Set a variable to a JSON value (a value that is not JSON is a string)."""
    from headwater.blocks.stores import check_variable_value

    name = _variable_name(args.name)
    try:
        value = json.loads(args.value)
    except ValueError:
        value = args.value
    try:
        check_variable_value(name, value)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    store, namespace = _variable_store(args)
    try:
        store.set(name, value, overwrite=args.overwrite)
    except VariableAlreadyExistsError:
        raise CliError(f"variable {name!r} already exists in namespace {namespace}; "
                       "replace it with --overwrite") from None
    except BlockStoreError as exc:
        raise CliError(str(exc)) from None
    io.out.write(f"variable/{name} set in namespace {namespace}\n")
    return EXIT_OK


def cmd_variable_ls(args: argparse.Namespace, io: Io) -> int:
    """List the variables and their values."""
    store, namespace = _variable_store(args)
    try:
        values = store.list()
    except BlockStoreError as exc:
        raise CliError(str(exc)) from None
    if args.output != "table":
        io.out.write(render_data(values, args.output))
        return EXIT_OK
    if not values:
        io.err.write(f"No variables found in namespace {namespace}.\n")
        return EXIT_OK
    io.out.write(render_table(("NAME", "VALUE"), [(name, json.dumps(value))
                                                  for name, value in values.items()]))
    return EXIT_OK


def cmd_variable_unset(args: argparse.Namespace, io: Io) -> int:
    """Delete a variable (exit 1 when it does not exist)."""
    store, namespace = _variable_store(args)
    try:
        existed = store.delete(_variable_name(args.name))
    except BlockStoreError as exc:
        raise CliError(str(exc)) from None
    if not existed:
        raise CliError(f"variable {args.name!r} not found in namespace {namespace}")
    io.out.write(f"variable/{args.name} unset in namespace {namespace}\n")
    return EXIT_OK


__all__ = ["cmd_block_create", "cmd_block_delete", "cmd_block_describe",
           "cmd_block_get", "cmd_variable_get", "cmd_variable_ls", "cmd_variable_set",
           "cmd_variable_unset", "describe_block", "field_values", "read_secret",
           "secret_values"]
