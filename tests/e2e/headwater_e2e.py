"""Helpers of the e2e tests: kubectl, example manifests, polling (see conftest.py)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


class Kubectl:
    """``kubectl`` in one namespace; failures raise with kubectl's own message."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def __call__(self, *args: str, stdin: str | None = None, namespaced: bool = True,
                 check: bool = True) -> str:
        argv = ["kubectl", *(["-n", self.namespace] if namespaced else []), *args]
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
        return result.stdout

    def json(self, *args: str, namespaced: bool = True) -> Any:
        """The parsed ``-o json`` output."""
        return json.loads(self(*args, "-o", "json", namespaced=namespaced))

    def runs(self) -> list[dict[str, Any]]:
        """Every FlowRun in the namespace."""
        items: list[dict[str, Any]] = self.json("get", "flowruns.headwater.dev")["items"]
        return items


def example_docs(folder: str, image: str) -> list[dict[str, Any]]:
    """The Headwater documents of ``examples/<folder>``, Flows pointed at ``image``."""
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "examples" / folder).glob("*.yaml")):
        if path.stem == "kustomization":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "Flow":
                doc["spec"].update(image=image, imagePullPolicy="IfNotPresent")
            if isinstance(doc, dict):
                docs.append(doc)
    return docs


EXAMPLE_FOLDERS = ("quickstart", "pipeline", "assets")
INTERVAL_SCHEDULE = "hello-every-10s"


def completion_docs(image: str) -> list[dict[str, Any]]:
    """What the run-to-completion test applies: the examples without their Schedules.

    A Schedule's runs would share the examples' Deployments, keep hello's one-at-a-time
    slot busy, and let history pruning (``successfulRunsLimit``) delete the very runs
    the test waits for.
    """
    return [doc for folder in EXAMPLE_FOLDERS for doc in example_docs(folder, image)
            if doc["kind"] != "Schedule"]


def interval_schedule_docs(image: str, suffix: str) -> list[dict[str, Any]]:
    """The quickstart's interval Schedule on a Deployment of its own (``-<suffix>``), so
    that its runs, and their pruning, touch no run another test waits for."""
    docs = example_docs("quickstart", image)
    flow = next(d for d in docs if d["kind"] == "Flow")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    schedule = next(d for d in docs if d["metadata"].get("name") == INTERVAL_SCHEDULE)
    deployment["metadata"]["name"] = f"{deployment['metadata']['name']}-{suffix}"
    schedule["metadata"]["name"] = f"{INTERVAL_SCHEDULE}-{suffix}"
    schedule["spec"]["deploymentRef"]["name"] = deployment["metadata"]["name"]
    return [flow, deployment, schedule]


def apply_docs(kubectl: Kubectl, docs: list[dict[str, Any]]) -> list[str]:
    """``apply`` named objects, ``create`` generateName ones; the FlowRun names created."""
    named = [d for d in docs if d["metadata"].get("name")]
    generated = [d for d in docs if not d["metadata"].get("name")]
    if named:
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(named))
    created: list[str] = []
    for doc in generated:
        out = kubectl("create", "-f", "-", "-o", "name", stdin=yaml.safe_dump(doc))
        created.append(out.strip().split("/")[-1])
    return created


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               interval: float = 2.0) -> Any:
    """Poll ``predicate`` until truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout:g}s; last: {last!r}")


def unique(prefix: str) -> str:
    """A name no earlier e2e run used."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
