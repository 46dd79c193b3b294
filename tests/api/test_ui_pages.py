"""The UI's deployments, schedules, flows and assets pages and their write actions,
served by ``create_app`` over the emulator (watch-backed state, the local identity).

What they must show: each page renders from the watched objects; every write needs the
CSRF token and this server's origin; a valid run form creates exactly one FlowRun (the
one ``headwater run`` would, trigger ``manual``) and an invalid one creates none and says
why on the field; a backfill preview creates nothing and creating it twice creates the
runs once; Pause/Resume and Suspend/Resume change the field they name; a read-only UI
offers and serves no write.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from headwater.assets import asset_slug
from headwater_dev.emulator import BackgroundEmulator
from headwater_operator import kube as kube_module
from headwater_operator.ui import auth
from headwater_operator.ui.app import UiOptions, create_app
from headwater_operator.ui.state import UiState

API = "headwater.dev/v1alpha1"
SCHEMA: dict[str, Any] = {
    "title": "Parameters", "type": "object",
    "properties": {
        "start_date": {"format": "date", "title": "start_date", "type": "string",
                       "position": 0},
        "end_date": {"format": "date", "title": "end_date", "type": "string", "position": 1},
        "batch": {"default": 10, "title": "batch", "type": "integer", "position": 2},
        "mode": {"default": "full", "enum": ["full", "delta"], "title": "mode",
                 "type": "string", "position": 3},
    },
    "required": ["start_date", "end_date"], "definitions": {},
}

MakeUi = Callable[..., Awaitable[TestClient[Any, Any]]]


async def _objects(kube: kube_module.Kube, namespace: str, store: str | None = None) -> None:
    await kube.create(kube_module.FLOWS, {
        "apiVersion": API, "kind": "Flow", "metadata": {"name": "ingest"},
        "spec": {"image": "example/ingest:1", "entrypoint": "flows/ingest.py:ingest",
                 "parametersSchema": SCHEMA}}, namespace=namespace)
    spec: dict[str, Any] = {"flowRef": {"name": "ingest"}}
    if store:
        spec["resultStorage"] = {"url": store}
    await kube.create(kube_module.DEPLOYMENTS, {
        "apiVersion": API, "kind": "Deployment", "metadata": {"name": "daily"},
        "spec": spec}, namespace=namespace)
    await kube.create(kube_module.SCHEDULES, {
        "apiVersion": API, "kind": "Schedule", "metadata": {"name": "daily-6"},
        "spec": {"deploymentRef": {"name": "daily"}, "cron": "0 6 * * *",
                 "timezone": "Europe/Berlin",
                 "windowParameters": {"start": "start_date", "end": "end_date",
                                      "format": "Date"}}}, namespace=namespace)


@pytest.fixture
async def make_ui(emulator: BackgroundEmulator, kube: kube_module.Kube, namespace: str,
                  wait_for: Any) -> AsyncIterator[MakeUi]:
    """``await make_ui(mode="local", store=None)``: the objects, and a client of a UI
    whose watches have seen them."""
    clients: list[TestClient[Any, Any]] = []

    async def make(mode: auth.Mode = "local", store: str | None = None) -> TestClient[Any, Any]:
        await _objects(kube, namespace, store)
        state = UiState.watching(kube, [namespace])
        app = create_app(UiOptions(namespaces=[namespace]), state=state,
                         access=auth.Access(mode, kube))
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        await wait_for(lambda: state.deployments.get(namespace, "daily") is not None
                       and state.schedules.get(namespace, "daily-6") is not None
                       and state.flows.get(namespace, "ingest") is not None)
        return client

    yield make
    for client in clients:
        await client.close()


async def _get(client: TestClient[Any, Any], path: str, status: int = 200) -> str:
    response = await client.get(path)
    text = await response.text()
    assert response.status == status, text
    return text


def _origin(client: TestClient[Any, Any]) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


async def _token(client: TestClient[Any, Any], path: str) -> str:
    page = await _get(client, path)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def _post(client: TestClient[Any, Any], path: str, data: dict[str, str], *,
                token: str | None, origin: bool = True) -> tuple[int, str, str]:
    form = dict(data)
    if token is not None:
        form["csrf_token"] = token
    response = await client.post(path, data=form, allow_redirects=False,
                                 headers=_origin(client) if origin else {})
    return response.status, response.headers.get("Location", ""), await response.text()


async def _runs(kube: kube_module.Kube, namespace: str) -> list[dict[str, Any]]:
    return await kube.list(kube_module.FLOWRUNS, namespace=namespace)


def _testids(page: str, testid: str) -> int:
    return page.count(f'data-testid="{testid}"')


async def test_pages_render_from_the_watched_objects(make_ui: MakeUi) -> None:
    client = await make_ui()
    listing = await _get(client, "/deployments")
    assert _testids(listing, "deployment-row") == 1
    assert 'href="/deployments/default/daily"' in listing
    page = await _get(client, "/deployments/default/daily")
    assert _testids(page, "run-form") == 1
    assert _testids(page, "next-fire") == 5
    assert _testids(page, "pause") == 1
    for testid in ("backfill-start", "backfill-end", "backfill-preview", "submit-run"):
        assert _testids(page, testid) == 1, testid
    for name in ("start_date", "end_date", "batch", "mode"):
        assert f'<label for="param-{name}">' in page
    assert 'type="date"' in page
    assert '<option value="&#34;delta&#34;">delta</option>' in page

    schedules = await _get(client, "/schedules")
    assert "at 06:00, every day" in schedules
    schedule = await _get(client, "/schedules/default/daily-6")
    assert _testids(schedule, "next-fire") == 10
    assert "Europe/Berlin" in schedule
    assert _testids(schedule, "suspend") == 1
    assert _testids(schedule, "calendar-month") >= 1
    assert _testids(schedule, "calendar-fires") >= 10 or _testids(
        schedule, "calendar-month") > 1

    flows = await _get(client, "/flows")
    assert _testids(flows, "flow-row") == 1
    flow = await _get(client, "/flows/default/ingest")
    assert _testids(flow, "parameter-row") == 4
    assert "example/ingest:1" in flow
    assert "flows/ingest.py:ingest" in flow

    await _get(client, "/deployments/default/nope", 404)
    await _get(client, "/schedules/default/nope", 404)
    await _get(client, "/flows/default/nope", 404)


async def test_a_write_without_the_csrf_token_or_from_another_origin_is_refused(
        make_ui: MakeUi, kube: kube_module.Kube, namespace: str) -> None:
    client = await make_ui()
    good = {"param.start_date": "2026-03-01", "param.end_date": "2026-03-02"}
    status, _, _ = await _post(client, "/deployments/default/daily/run", good, token=None)
    assert status == 403
    status, _, _ = await _post(client, "/deployments/default/daily/run", good,
                               token="not-the-token")
    assert status == 403
    token = await _token(client, "/deployments/default/daily")
    status, _, _ = await _post(client, "/deployments/default/daily/run", good, token=token,
                               origin=False)
    assert status == 403
    for action in ("pause", "resume"):
        status, _, _ = await _post(client, f"/deployments/default/daily/{action}", {},
                                   token=None)
        assert status == 403
    status, _, _ = await _post(client, "/schedules/default/daily-6/suspend", {}, token=None)
    assert status == 403
    status, _, _ = await _post(client, "/deployments/default/daily/backfill",
                               {"schedule": "daily-6", "start": "2026-03-01",
                                "end": "2026-03-03", "action": "create"}, token=None)
    assert status == 403
    assert await _runs(kube, namespace) == []
    deployment = await kube.get(kube_module.DEPLOYMENTS, "daily", namespace=namespace)
    assert not deployment["spec"].get("paused")


async def test_a_valid_run_form_creates_exactly_one_flowrun(
        make_ui: MakeUi, kube: kube_module.Kube, namespace: str) -> None:
    client = await make_ui()
    token = await _token(client, "/deployments/default/daily")
    status, location, body = await _post(client, "/deployments/default/daily/run", {
        "param.start_date": "2026-03-01", "param.end_date": "2026-03-02",
        "param.batch": "10", "param.mode": json.dumps("delta")}, token=token)
    assert status == 303, body
    runs = await _runs(kube, namespace)
    assert len(runs) == 1
    run = runs[0]
    assert location == f"/runs/default/{run['metadata']['name']}"
    assert run["metadata"]["name"].startswith("daily-")
    assert run["spec"]["trigger"] == "manual"
    assert run["metadata"]["annotations"]["headwater.dev/trigger"] == "manual"
    assert run["spec"]["deploymentRef"] == {"name": "daily"}
    # Only what differs from the defaults is stored, as `headwater run -p` does.
    assert run["spec"]["parameters"] == {"start_date": "2026-03-01",
                                         "end_date": "2026-03-02", "mode": "delta"}


async def test_an_invalid_run_form_creates_nothing_and_shows_the_field_errors(
        make_ui: MakeUi, kube: kube_module.Kube, namespace: str) -> None:
    client = await make_ui()
    token = await _token(client, "/deployments/default/daily")
    status, _, page = await _post(client, "/deployments/default/daily/run", {
        "param.start_date": "2026-03-01", "param.end_date": "",
        "param.batch": "ten", "param.mode": json.dumps("full")}, token=token)
    assert status == 422
    errors = re.findall(r'data-testid="field-error" data-field="([^"]*)">([^<]*)<', page)
    assert {field for field, _ in errors} == {"end_date", "batch"}
    assert any("'ten' is not a number" in html.unescape(text)
               for field, text in errors if field == "batch")
    assert 'value="ten"' in page  # shown again as typed
    assert 'aria-invalid="true"' in page
    assert await _runs(kube, namespace) == []


async def test_backfill_preview_creates_nothing_and_create_twice_creates_once(
        make_ui: MakeUi, kube: kube_module.Kube, namespace: str, wait_for: Any) -> None:
    client = await make_ui()
    token = await _token(client, "/deployments/default/daily")
    window = {"schedule": "daily-6", "start": "2026-03-01", "end": "2026-03-04",
              "max_runs": "100"}
    status, _, page = await _post(client, "/deployments/default/daily/backfill",
                                  {**window, "action": "preview"}, token=token)
    assert status == 200, page
    assert _testids(page, "preview-tick") == 3
    assert _testids(page, "backfill-create") == 1
    assert "2026-03-01T06:00:00+01:00" in page
    assert await _runs(kube, namespace) == []

    status, location, _ = await _post(client, "/deployments/default/daily/backfill",
                                      {**window, "action": "create"}, token=token)
    assert status == 303
    assert location == "/deployments/default/daily?created=3&existed=0"
    runs = await _runs(kube, namespace)
    assert sorted(r["metadata"]["name"] for r in runs) == [
        "daily-6-1772341200", "daily-6-1772427600", "daily-6-1772514000"]
    assert {r["spec"]["trigger"] for r in runs} == {"backfill"}
    assert {r["spec"]["parameters"]["end_date"] for r in runs} == {
        "2026-03-01", "2026-03-02", "2026-03-03"}

    status, location, _ = await _post(client, "/deployments/default/daily/backfill",
                                      {**window, "action": "create"}, token=token)
    assert status == 303
    assert location == "/deployments/default/daily?created=0&existed=3"
    assert len(await _runs(kube, namespace)) == 3
    page = await _get(client, location)
    assert "created 0, already existed 3" in page

    await wait_for(lambda: True)
    status, _, page = await _post(client, "/deployments/default/daily/backfill",
                                  {**window, "action": "preview"}, token=token)
    assert page.count('data-exists="true"') + page.count('data-exists="false"') == 3


async def test_a_bad_backfill_window_is_an_error_on_its_field(
        make_ui: MakeUi, kube: kube_module.Kube, namespace: str) -> None:
    client = await make_ui()
    token = await _token(client, "/deployments/default/daily")
    status, _, page = await _post(client, "/deployments/default/daily/backfill", {
        "schedule": "daily-6", "start": "2026-03-04", "end": "2026-03-01",
        "action": "create"}, token=token)
    assert status == 422
    assert re.search(r'data-field="end">must be after the start', page)
    status, _, page = await _post(client, "/deployments/default/daily/backfill", {
        "schedule": "daily-6", "start": "2026-03-01", "end": "2026-06-01",
        "max_runs": "10", "action": "create"}, token=token)
    assert status == 422
    assert 'data-field="max_runs"' in page
    assert await _runs(kube, namespace) == []


async def test_pause_resume_and_suspend_resume(make_ui: MakeUi, kube: kube_module.Kube,
                                               namespace: str, wait_for: Any) -> None:
    client = await make_ui()
    token = await _token(client, "/deployments/default/daily")
    status, location, _ = await _post(client, "/deployments/default/daily/pause", {},
                                      token=token)
    assert (status, location) == (303, "/deployments/default/daily")
    deployment = await kube.get(kube_module.DEPLOYMENTS, "daily", namespace=namespace)
    assert deployment["spec"]["paused"] is True

    async def shows(path: str, testid: str) -> bool:
        return _testids(await _get(client, path), testid) == 1

    await wait_for(lambda: shows("/deployments/default/daily", "resume"))
    await _post(client, "/deployments/default/daily/resume", {}, token=token)
    deployment = await kube.get(kube_module.DEPLOYMENTS, "daily", namespace=namespace)
    assert deployment["spec"]["paused"] is False

    status, location, _ = await _post(client, "/schedules/default/daily-6/suspend", {},
                                      token=token)
    assert (status, location) == (303, "/schedules/default/daily-6")
    schedule = await kube.get(kube_module.SCHEDULES, "daily-6", namespace=namespace)
    assert schedule["spec"]["suspend"] is True
    await wait_for(lambda: shows("/schedules/default/daily-6", "resume"))
    await _post(client, "/schedules/default/daily-6/resume", {}, token=token)
    schedule = await kube.get(kube_module.SCHEDULES, "daily-6", namespace=namespace)
    assert schedule["spec"]["suspend"] is False


async def test_a_read_only_ui_offers_and_serves_no_write(
        make_ui: MakeUi, kube: kube_module.Kube, namespace: str) -> None:
    client = await make_ui(mode="server")
    page = await _get(client, "/deployments/default/daily")
    for testid in ("run-form", "pause", "backfill-preview"):
        assert _testids(page, testid) == 0, testid
    assert _testids(await _get(client, "/schedules/default/daily-6"), "suspend") == 0
    token = await _token(client, "/deployments/default/daily")
    status, _, _ = await _post(client, "/deployments/default/daily/run", {
        "param.start_date": "2026-03-01", "param.end_date": "2026-03-02"}, token=token)
    assert status == 403
    status, _, _ = await _post(client, "/deployments/default/daily/pause", {}, token=token)
    assert status == 403
    assert await _runs(kube, namespace) == []


def _record(key: str, version: str, when: float, upstream: list[str],
            run: str) -> dict[str, Any]:
    return {"key": key, "version": version, "materializedAt": when, "upstream": upstream,
            "upstreamVersions": {}, "flowRunName": run, "taskRunName": f"{run}-task",
            "metadata": {"rows": 42}}


async def test_the_assets_page_draws_lineage_from_the_store(make_ui: MakeUi,
                                                            tmp_path: Path) -> None:
    store = tmp_path / "results"
    records = [_record("s3://lake/raw", "v1", 100.0, [], "r1"),
               _record("s3://lake/clean", "v2", 200.0, ["s3://lake/raw"], "r1"),
               _record("s3://lake/report", "v3", 300.0, ["s3://lake/clean", "s3://ext/fx"],
                       "r2")]
    for record in records:
        folder = store / "assets" / asset_slug(record["key"])
        (folder / "history").mkdir(parents=True)
        (folder / "latest.json").write_text(json.dumps(record))
        (folder / "history" / f"{record['materializedAt']:.6f}-{record['version']}.json"
         ).write_text(json.dumps(record))
    client = await make_ui(store=str(store))
    page = await _get(client, "/assets")
    assert _testids(page, "asset-node") == 4  # three materialized, one external upstream
    assert _testids(page, "asset-row") == 3
    page = await _get(client, "/assets?key=s3://lake/clean")
    assert set(re.findall(r'data-testid="asset-node" data-key="([^"]+)"', page)) == {
        "s3://lake/raw", "s3://lake/clean", "s3://lake/report"}
    assert _testids(page, "asset-upstream") == 1
    assert _testids(page, "asset-downstream") == 1
    assert _testids(page, "materialization") == 1
    assert "&#34;rows&#34;: 42" in page or "&#34;rows&#34;:42" in page
    page = await _get(client, "/assets?key=s3://nowhere/x", 404)
    assert "has no record" in page
