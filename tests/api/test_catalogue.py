"""The catalogue of refusals: every entry of tests/catalogue is refused over HTTP as a
Kubernetes 1.32 API server refuses it.

Each YAML file under ``tests/catalogue/<area>/`` holds a bad CRD, custom resource or
built-in object, the objects to create first (``setup``), the request (``create`` or
``update``; an update is sent with the stored object's resourceVersion, as kubectl does)
and the server's expected answer: code, reason, message and each cause's field and
reason. The message is what the real API server says, derived from its source (each file
names where). The objects go to a fresh emulator through its HTTP API, the way
``kubectl`` sends them, so the whole path is exercised: decoding, field validation,
strategies, validation and the ``Status`` rendering.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater_dev.emulator import BackgroundEmulator

CATALOGUE = Path(__file__).resolve().parents[1] / "catalogue"
ENTRIES = sorted(CATALOGUE.glob("*/*.yaml"))


class Client:
    """Raw JSON requests to the emulator, addressed by an object's apiVersion and kind."""

    def __init__(self, api: BackgroundEmulator) -> None:
        self.api = api

    def path(self, obj: Mapping[str, Any], *, named: bool) -> str:
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        spec = next(s for s in self.api.emulator.store.resources
                    if (s.group, s.version, s.kind) == (group, version, obj["kind"]))
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        meta = obj.get("metadata") or {}
        if spec.namespaced:
            base += f"/namespaces/{meta.get('namespace') or 'default'}"
        base += f"/{spec.plural}"
        return f"{base}/{meta['name']}" if named else base

    def send(self, method: str, path: str, body: Any = None,
             query: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        url = self.api.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def create(self, obj: Mapping[str, Any], query: Mapping[str, str] | None = None
               ) -> tuple[int, dict[str, Any]]:
        return self.send("POST", self.path(obj, named=False), obj, query)

    def update(self, obj: Mapping[str, Any], query: Mapping[str, str] | None = None
               ) -> tuple[int, dict[str, Any]]:
        code, stored = self.send("GET", self.path(obj, named=True))
        assert code == 200, stored
        body = {**obj, "metadata": {**obj["metadata"],
                                    "resourceVersion": stored["metadata"]["resourceVersion"]}}
        return self.send("PUT", self.path(obj, named=True), body, query)


@pytest.fixture(scope="module")
def entries() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in ENTRIES]


@pytest.fixture
def client() -> Iterator[Client]:
    with BackgroundEmulator() as api:
        yield Client(api)


def test_the_catalogue_has_at_least_fifteen_refusals_of_crds_and_custom_resources() -> None:
    areas = {path.parent.name for path in ENTRIES}
    assert {"crds", "objects", "builtins"} <= areas
    assert len([p for p in ENTRIES if p.parent.name in ("crds", "objects")]) >= 15


@pytest.mark.parametrize("path", ENTRIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_server_refuses_it_as_kubernetes_does(path: Path, client: Client) -> None:
    entry: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    for obj in entry.get("setup") or ():
        code, answer = client.create(obj)
        assert code == 201, f"setup object refused: {answer.get('message')}"
    send = client.update if entry.get("request", "create") == "update" else client.create
    code, status = send(entry["object"], entry.get("query"))
    expect = entry["expect"]
    assert (code, status.get("reason")) == (expect["code"], expect["reason"]), status
    assert status["message"] == expect["message"]
    causes = (status.get("details") or {}).get("causes") or []
    assert [{"field": c.get("field"), "reason": c.get("reason")} for c in causes] == (
        expect.get("causes") or [])
