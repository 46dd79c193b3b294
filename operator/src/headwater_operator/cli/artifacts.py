"""``artifacts <run> [--attempt N]``: the artifacts in a run's record, readable.

Artifacts (``create_markdown_artifact``, ``create_table_artifact``,
``create_link_artifact``) are kept with their whole content in the attempt's run record
(docs/run-store.md). Each is printed under a header line naming its key, type, the task
run that made it and when, then its description and content: markdown as its text,
tables as aligned columns (rows of objects, an object of columns, or rows of lists),
links as ``text <url>``. ``-o json|yaml`` prints the record's ``artifacts`` list as is.

Default: the latest attempt's record (``--attempt N`` for another). A record that
cannot be read is the whole answer here, so it is an error (exit 1) naming the URL and
the fix.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from itertools import zip_longest
from typing import Any

from headwater_operator.cli.common import EXIT_OK, Io, connect
from headwater_operator.cli.follow import Watcher
from headwater_operator.cli.output import render_data, render_table
from headwater_operator.cli.store import flow_run_names, pick_record, read_record


def cell(value: Any) -> str:
    """A table cell: text as is, ``None`` empty, anything else as compact JSON, on one
    line (a newline would break the columns)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return " ".join(text.splitlines())


def table_text(data: Any) -> str:
    """A table artifact's ``data`` as aligned columns.

    Rows of objects: the columns are their keys, in order of first appearance; an object
    of columns: its keys, shorter columns padded with empty cells; rows of lists: no
    header. Anything else is printed as JSON.
    """
    if isinstance(data, Mapping):
        headers = [str(key) for key in data]
        columns = [value if isinstance(value, list) else [value] for value in data.values()]
        rows = [[cell(v) for v in row] for row in zip_longest(*columns, fillvalue=None)]
        return render_table(headers, rows) or render_table(headers, [[""] * len(headers)])
    if isinstance(data, list) and data and all(isinstance(row, Mapping) for row in data):
        keys: dict[str, None] = {}
        for row in data:
            keys.update(dict.fromkeys(str(key) for key in row))
        headers = list(keys)
        return render_table(headers, [[cell(row.get(key)) for key in headers]
                                      for row in data])
    if isinstance(data, list) and all(isinstance(row, list | tuple) for row in data):
        if not data:
            return "(empty table)\n"
        width = max(len(row) for row in data)
        rows = [[cell(v) for v in row] + [""] * (width - len(row)) for row in data]
        return render_table(rows[0], rows[1:])
    return json.dumps(data, indent=2, default=str) + "\n"


def content_text(artifact: Mapping[str, Any]) -> str:
    """The artifact's content as text, by type."""
    kind, data = artifact.get("type"), artifact.get("data")
    if kind == "markdown" and isinstance(data, str):
        return data if data.endswith("\n") else data + "\n"
    if kind == "table":
        return table_text(data)
    if kind == "link" and isinstance(data, Mapping):
        link, text = data.get("link"), data.get("link_text")
        return f"{text} <{link}>\n" if text else f"<{link}>\n"
    if kind == "image" and isinstance(data, str):
        return f"image <{data}>\n"
    if kind == "progress" and isinstance(data, int | float) and not isinstance(data, bool):
        return f"{data:g}%\n"
    return json.dumps(data, indent=2, default=str) + "\n"


def artifact_header(artifact: Mapping[str, Any], task_runs: Mapping[str, str],
                    flow_runs: Mapping[str, str]) -> str:
    """``== report (markdown) · task run load-0 · 2026-03-10T12:00:05.000Z``: what made
    it (a task run, else a flow run, by name when the record has it) and when."""
    parts = [f"{artifact.get('key') or '<no key>'} ({artifact.get('type', '?')})"]
    task_run, flow_run = artifact.get("taskRunId"), artifact.get("flowRunId")
    if task_run:
        parts.append(f"task run {task_runs.get(str(task_run), task_run)}")
    elif flow_run:
        parts.append(f"flow run {flow_runs.get(str(flow_run), flow_run)}")
    if artifact.get("created"):
        parts.append(str(artifact["created"]))
    return "== " + " · ".join(parts) + "\n"


def artifacts_text(artifacts: Sequence[Mapping[str, Any]], task_runs: Mapping[str, str],
                   flow_runs: Mapping[str, str]) -> str:
    """Every artifact: its header, description and content, a blank line between."""
    blocks = []
    for artifact in artifacts:
        text = artifact_header(artifact, task_runs, flow_runs)
        if artifact.get("description"):
            text += f"{artifact['description']}\n"
        blocks.append(text + "\n" + content_text(artifact))
    return "\n".join(blocks)


def cmd_artifacts(args: argparse.Namespace, io: Io) -> int:
    """Read the run's record and print its artifacts."""
    client, namespace = connect(args)
    run = Watcher(client, namespace, args.run, io).read()
    ref = pick_record(run, args.attempt)
    record = read_record(ref)
    artifacts = [a for a in record.get("artifacts") or [] if isinstance(a, Mapping)]
    if args.output != "table":
        io.out.write(render_data(artifacts, args.output))
        return EXIT_OK
    io.err.write(f"==> attempt {ref.attempt} ({ref.url}) <==\n")
    if not artifacts:
        io.err.write(f"No artifacts in the record of attempt {ref.attempt} of FlowRun "
                     f"{namespace}/{args.run}.\n")
        return EXIT_OK
    task_runs = {str(t.get("id")): str(t.get("name")) for t in record.get("taskRuns") or []}
    io.out.write(artifacts_text(artifacts, task_runs, flow_run_names(record)))
    return EXIT_OK
