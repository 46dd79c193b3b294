"""``lineage ASSET_KEY``: an asset's upstream and downstream assets and its last
materializations, read from the asset records in the stores.

Every real materialization writes ``assets/<slug>/latest.json`` and
``assets/<slug>/history/<time>-<version>.json`` in the result storage of the run
(:mod:`headwater.assets`; the slug is :func:`headwater.assets.asset_slug`). So:

* **upstream**: the latest record's ``upstream`` keys, with the version this one was
  computed from and each upstream's current version (they differ: this asset is stale);
* **downstream**: every asset whose latest record lists ``ASSET_KEY`` upstream (each
  store's ``assets/*/latest.json`` is scanned);
* **materializations**: the history records, newest first (``--limit``).

Which stores: ``--store URL`` (repeatable) when given. Otherwise the namespace's
Deployments (``spec.resultStorage.url``, ``spec.runStore.url``) and the roots of its
FlowRuns' ``status.runRecords`` (:func:`headwater.runstore.split_url`), in that order,
without duplicates; when no cluster can be reached (no kubeconfig, connection refused),
the local default result storage (``HEADWATER_RESULT_STORAGE``, ``HEADWATER_HOME``,
``~/.headwater``, where ``python flow.py`` writes), with a note on stderr saying so.
A store that cannot be read is named on stderr and skipped; an asset found in none is an
error naming every store looked in. Records are read through
:func:`headwater.results.resolve_storage` only, with the user's credentials.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from headwater import runstore
from headwater.assets import asset_history, asset_slug, read_latest
from headwater.results import ResultStorage, resolve_storage

from headwater_operator import kube
from headwater_operator.cli.common import (
    EXIT_OK,
    CliError,
    Io,
    connect,
    describe_unreachable,
)
from headwater_operator.cli.output import or_none, render_data, render_table
from headwater_operator.cli.store import StoreUnreadable, guard_store

ASSETS_DIR = "assets"


def cluster_roots(deployments: Sequence[Mapping[str, Any]],
                  runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The distinct store roots named by Deployments and by FlowRuns' ``runRecords``."""
    roots: dict[str, None] = {}
    for deployment in deployments:
        spec = deployment.get("spec") or {}
        for field in ("resultStorage", "runStore"):
            url = (spec.get(field) or {}).get("url")
            if isinstance(url, str) and url:
                roots[url.rstrip("/") or "/"] = None
    for run in runs:
        for entry in (run.get("status") or {}).get("runRecords") or ():
            url = entry.get("url") if isinstance(entry, Mapping) else None
            if isinstance(url, str):
                try:
                    roots[runstore.split_url(url)[0]] = None
                except ValueError:
                    continue  # not a run-store location: nothing to learn from it
    return list(roots)


def discover_roots(args: argparse.Namespace, io: Io) -> list[str]:
    """``--store`` URLs, else the cluster's roots, else (no cluster) the local default."""
    if args.store:
        return list(dict.fromkeys(args.store))
    import aiohttp
    from headwater.results import default_storage_location

    try:
        client, namespace = connect(args)
        deployments = client.list(kube.DEPLOYMENTS, namespace=namespace)
        runs = client.list(kube.FLOWRUNS, namespace=namespace)
    except (OSError, aiohttp.ClientError, kube.KubeError) as exc:
        if isinstance(exc, kube.KubeError) and exc.reason != "NoConfiguration":
            raise  # refused (403, …): the user should see it, not a silent local read
        local = default_storage_location()
        why = exc.message if isinstance(exc, kube.KubeError) else describe_unreachable(exc)
        io.err.write(f"headwater lineage: no cluster reachable ({why}); reading the local "
                     f"result storage {local} (pass --store URL to choose)\n")
        return [local]
    roots = cluster_roots(deployments, runs)
    if not roots:
        raise CliError(f"no store to read in namespace {namespace}: no Deployment sets "
                       "spec.resultStorage.url or spec.runStore.url and no FlowRun has "
                       "status.runRecords; pass --store URL")
    return roots


def _asset_dirs(storage: ResultStorage) -> list[str]:
    """The slugs under ``assets/`` (one directory per asset)."""
    return storage.subdirs(ASSETS_DIR)


def all_latest(storage: ResultStorage) -> list[dict[str, Any]]:
    """Every asset's latest record in ``storage``."""
    records = []
    for slug in _asset_dirs(storage):
        data = storage.read(f"{ASSETS_DIR}/{slug}/latest.json")
        if data:
            try:
                record = json.loads(data)
            except ValueError:
                continue  # a torn or foreign file: not an asset record
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                records.append(record)
    return records


def _read_root(root: str, key: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]],
                                              list[dict[str, Any]]]:
    """``key``'s latest record, its history and every asset's latest record in ``root``."""
    storage = resolve_storage(root)
    found = read_latest(storage, key)
    return found, asset_history(storage, key) if found else [], all_latest(storage)


def _when(record: Mapping[str, Any]) -> float:
    value = record.get("materializedAt")
    return float(value) if isinstance(value, int | float) else 0.0


def format_epoch(value: Any) -> str:
    """``materializedAt`` (seconds since the epoch) as RFC 3339 UTC with milliseconds."""
    if isinstance(value, str):
        return value
    if not isinstance(value, int | float):
        return "<unknown>"
    moment = datetime.fromtimestamp(value, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def lineage(key: str, roots: Sequence[str], io: Io, limit: int) -> dict[str, Any]:
    """What the stores know about asset ``key`` (see the module docstring)."""
    latest: dict[str, Any] | None = None
    history: dict[tuple[Any, ...], dict[str, Any]] = {}
    everything: list[dict[str, Any]] = []
    readable = []
    for root in roots:
        try:
            found, past, others = guard_store(root, functools.partial(_read_root, root, key))
        except StoreUnreadable as exc:
            io.err.write(f"headwater lineage: skipped a store: {exc.message}\n")
            continue
        readable.append(root)
        if found and (latest is None or _when(found) > _when(latest)):
            latest = found
        for record in past:
            history[(record.get("version"), record.get("materializedAt"),
                     record.get("taskRunId"))] = record
        everything.extend(others)
    current: dict[str, dict[str, Any]] = {}
    for record in everything:
        known = current.get(record["key"])
        if known is None or _when(record) > _when(known):
            current[record["key"]] = record
    downstream = sorted((r for r in current.values() if key in (r.get("upstream") or [])),
                        key=lambda r: str(r["key"]))
    if latest is None and not downstream:
        where = ", ".join(roots)
        reasons = "" if readable else " (none of them could be read)"
        raise CliError(f"asset {key!r} has no record in {where}{reasons}: looked for "
                       f"{ASSETS_DIR}/{asset_slug(key)}/latest.json and for assets that "
                       "name it upstream; check the key (headwater describe run NAME lists "
                       "a run's assets) or pass --store URL")
    versions = (latest or {}).get("upstreamVersions") or {}
    upstream = [{"key": up, "version": versions.get(up),
                 "current": (current.get(up) or {}).get("version") or "external"}
                for up in (latest or {}).get("upstream") or []]
    materializations = sorted(history.values(), key=_when, reverse=True)[:limit]
    return {"key": key, "stores": list(roots), "latest": latest, "upstream": upstream,
            "downstream": [{"key": r["key"], "version": r.get("version"),
                            "time": r.get("time"), "materializedAt": r.get("materializedAt")}
                           for r in downstream],
            "materializations": materializations}


def _field(label: str, value: Any) -> str:
    return f"{label + ':':<16}{or_none(value)}\n"


def _section(title: str, headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    if not rows:
        return f"{title}:{' ' * (15 - len(title))}<none>\n"
    return f"{title}:\n" + "".join(f"  {line}\n"
                                   for line in render_table(headers, rows).splitlines())


def _metadata(record: Mapping[str, Any]) -> str:
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        return or_none(metadata)
    return " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
                    for k, v in metadata.items()) or "<none>"


def _by(record: Mapping[str, Any], name: str, ident: str) -> str:
    return str(record.get(name) or record.get(ident) or "<none>")


def lineage_text(info: Mapping[str, Any]) -> str:
    """The human report of :func:`lineage`."""
    latest: Mapping[str, Any] | None = info["latest"]
    properties = (latest or {}).get("properties") or {}
    text = _field("Asset", info["key"])
    for label, name in (("Name", "name"), ("Description", "description"), ("URL", "url")):
        if properties.get(name):
            text += _field(label, properties[name])
    if properties.get("owners"):
        text += _field("Owners", ", ".join(map(str, properties["owners"])))
    if latest is None:
        text += _field("Version", "<none: never materialized by Headwater (external)>")
    else:
        text += _field("Version", latest.get("version"))
        when = format_epoch(latest.get("time") or latest.get("materializedAt"))
        text += _field("Materialized", f"{when} (flow "
                       f"run {_by(latest, 'flowRunName', 'flowRunId')}, task run "
                       f"{_by(latest, 'taskRunName', 'taskRunId')})")
    text += _field("Stores", ", ".join(info["stores"]))
    text += _section("Upstream", ("KEY", "USED VERSION", "CURRENT VERSION"), [
        (u["key"], or_none(u["version"]), u["current"]) for u in info["upstream"]])
    text += _section("Downstream", ("KEY", "VERSION", "MATERIALIZED"), [
        (d["key"], or_none(d["version"]), format_epoch(d["time"] or d["materializedAt"]))
        for d in info["downstream"]])
    text += _section("Materializations", ("TIME", "VERSION", "FLOW RUN", "TASK RUN",
                                          "METADATA"), [
        (format_epoch(m.get("time") or m.get("materializedAt")), or_none(m.get("version")),
         _by(m, "flowRunName", "flowRunId"), _by(m, "taskRunName", "taskRunId"),
         _metadata(m)) for m in info["materializations"]])
    return text


def cmd_lineage(args: argparse.Namespace, io: Io) -> int:
    """Find the stores, read the asset's records and print its lineage."""
    if args.limit < 1:
        raise CliError("--limit must be at least 1", 2)
    info = lineage(args.asset, discover_roots(args, io), io, args.limit)
    io.out.write(lineage_text(info) if args.output == "table" else
                 render_data(info, args.output))
    return EXIT_OK
