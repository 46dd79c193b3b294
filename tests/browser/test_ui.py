"""The UI in a real browser (issue #13's must-show tests): headless Chromium over
``headwater dev`` with its UI, real runs made by the process kubelet.

* open ``/runs`` → a run → search a task → open its logs → see an artifact rendered;
* start a run from the form: an invalid value shows a field error and creates nothing,
  a valid one creates a FlowRun;
* preview a backfill, then create it; repeating it creates nothing;
* cancel a running run;
* a run with subflows three deep → a subflow's page → its task run → its own subflow →
  back up through the parent links and the calling task run;
* a hostile artifact renders inert: no script ran, no dialog opened, no ``javascript:``
  link, no active markup in the page;
* a screenshot of every page (:func:`test_screenshots_of_every_page`).

Selectors are the pages' ``data-testid`` attributes (docs/ui.md), never styling; every
wait is on a condition (Selenium's ``WebDriverWait``, or :func:`conftest.wait_until` for
the API's objects), never a fixed sleep.

Screenshots: every test run takes them (into a temporary directory); with
``HEADWATER_UI_SCREENSHOTS=1`` they are written to ``docs/ui/`` instead, which is how the
ones shown in docs/ui.md are made. They hold times and generated names, so they would
change on every run: regenerate them on purpose, not in CI.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from headwater.cli import build_parser
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from ui_sandbox import (
    NAMESPACE,
    REPO,
    TIMEOUT,
    UiSandbox,
    by_testid,
    visible,
    wait,
    wait_until,
)

SHOTS_DIR = REPO / "docs" / "ui"
PWNED = "__headwater_pwned"
"""The ``window`` property every hostile payload sets (tests/browser/flows/ui_flows.py)."""

Screenshot = Callable[..., Path]


def texts(browser: webdriver.Chrome, name: str) -> list[str]:
    """The visible text of every ``data-testid=name`` element, read in one go."""
    found: list[str] = browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText)",
        f'[data-testid="{name}"]')
    return found


def click(browser: webdriver.Chrome, locator: tuple[str, str]) -> None:
    """Click what ``locator`` finds, again if a live refresh replaced it meanwhile."""
    def clicked(b: webdriver.Chrome) -> bool:
        b.find_element(*locator).click()
        return True
    wait(browser).until(clicked)


def no_dialog(browser: webdriver.Chrome) -> bool:
    """True when no alert, confirm or prompt is open."""
    try:
        text = browser.switch_to.alert.text
    except NoAlertPresentException:
        return True
    raise AssertionError(f"a dialog is open: {text!r}")


def runs_of(ui: UiSandbox, deployment: str) -> dict[str, dict[str, Any]]:
    """The FlowRuns of ``deployment``, by name."""
    return {r["metadata"]["name"]: r for r in ui.objects("flowruns")
            if ((r.get("spec") or {}).get("deploymentRef") or {}).get("name") == deployment}


@pytest.fixture(scope="module")
def screenshot(browser: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory
               ) -> Screenshot:
    """``screenshot("runs")`` saves the viewport as ``runs.png`` (docs/ui/ when
    ``HEADWATER_UI_SCREENSHOTS=1``, else a temporary directory) and returns its path;
    ``screenshot("run-logs", at=element)`` scrolls ``element`` to the top first."""
    keep = os.environ.get("HEADWATER_UI_SCREENSHOTS") == "1"
    folder = SHOTS_DIR if keep else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str, at: WebElement | None = None) -> Path:
        # Settle first: fonts loaded, then scrolled to the top (or to ``at``).
        wait(browser).until(lambda b: b.execute_script(
            "return document.readyState === 'complete' && document.fonts.status === 'loaded'"))
        if at is None:
            browser.execute_script("window.scrollTo(0, 0)")
        else:
            browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", at)
        path = folder / f"{name}.png"
        assert browser.save_screenshot(str(path)), f"could not write {path}"
        assert path.stat().st_size > 5000, f"{path} is nearly empty"
        return path

    return take


# --- the manifests' copies of the parameter schemas ---------------------------------------
@pytest.mark.parametrize(("flow", "entrypoint"), [
    ("report", "tests/browser/flows/ui_flows.py:report"),
    ("hostile", "tests/browser/flows/ui_flows.py:hostile"),
    ("many", "tests/browser/flows/ui_flows.py:many"),
    ("nested", "tests/browser/flows/ui_flows.py:nested"),
    ("sleepy", "examples/flows/sleepy.py:sleepy"),
])
def test_the_manifests_schemas_are_the_flows(flow: str, entrypoint: str) -> None:
    docs = yaml.safe_load_all((REPO / "tests/browser/manifests/ui.yaml").read_text())
    [manifest] = [d for d in docs if d["kind"] == "Flow" and d["metadata"]["name"] == flow]
    assert manifest["spec"]["entrypoint"] == entrypoint
    args = build_parser().parse_args(["schema", entrypoint])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert args.func(args) in (0, None)
    assert manifest["spec"]["parametersSchema"] == json.loads(out.getvalue()), (
        f"regenerate: headwater schema {entrypoint}")


# --- runs → run → task → logs → artifact ---------------------------------------------------
def test_open_a_run_search_its_tasks_read_the_logs_and_see_its_artifacts(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome, screenshot: Screenshot) -> None:
    browser.get(f"{ui_sandbox.url}/runs")
    wait(browser).until(ec.presence_of_all_elements_located(by_testid("run-row")))
    screenshot("runs")
    click(browser, (By.CSS_SELECTOR, '[data-testid="run-link"][href$="/report-first"]'))
    wait(browser).until(ec.url_to_be(f"{ui_sandbox.url}/runs/{NAMESPACE}/report-first"))

    # Task runs: the flow made fetch-eu-<day> ×3, summarize-eu and publish-eu.
    rows = wait(browser).until(lambda b: len(b.find_elements(*by_testid("task-row"))) >= 5
                               and b.find_elements(*by_testid("task-row")))
    assert any("fetch-eu-2026-12-01" in row.text for row in rows), [r.text for r in rows]
    search = visible(browser, "task-search")
    search.send_keys("publish")
    wait(browser).until(lambda b: [r.text.split("\n")[0] for r in
                                   b.find_elements(*by_testid("task-row"))] == ["publish-eu"])
    assert "1 of 5" in browser.find_element(*by_testid("task-count")).text

    # The task run's detail: its state and attempts.
    browser.find_element(*by_testid("task-row")).click()
    detail = wait(browser).until(lambda b: "publish-eu" in b.find_element(
        *by_testid("task-detail")).text and b.find_element(*by_testid("task-detail")))
    assert "Completed" in detail.text, detail.text
    screenshot("run-tasks", at=browser.find_element(*by_testid("task-search")))

    # The logs: the run's lines, from the flow and its tasks.
    def log_lines(b: webdriver.Chrome) -> list[str]:
        return texts(b, "log-line")
    lines = wait(browser).until(lambda b: any("published the eu report" in t
                                              for t in log_lines(b)) and log_lines(b))
    assert any("fetched" in t and "orders for eu on 2026-12-01" in t for t in lines), lines
    def levels(b: webdriver.Chrome) -> list[str]:
        found: list[str] = b.execute_script(
            "return Array.from(document.querySelectorAll('[data-testid=\"log-line\"]'),"
            " e => e.dataset.level)")
        return found
    assert "INFO" in levels(browser)
    Select(browser.find_element(*by_testid("log-level"))).select_by_value("WARNING")
    warnings = wait(browser).until(lambda b: set(levels(b)) == {"WARNING"} and log_lines(b))
    assert any("2 day(s) above the limit of 25" in t for t in warnings), warnings

    # The artifacts, rendered: markdown (a heading, a table, a safe link), a table, a link.
    artifacts = wait(browser).until(lambda b: len(b.find_elements(*by_testid("artifact"))) >= 3
                                    and b.find_elements(*by_testid("artifact")))
    [report] = [a for a in artifacts if "Orders report: eu" in a.text]
    assert report.find_element(By.TAG_NAME, "h1").text == "Orders report: eu"
    cells = [td.text for td in report.find_elements(By.CSS_SELECTOR, "table td")]
    assert cells[:1] == ["3"], cells
    link = report.find_element(By.LINK_TEXT, "runbook")
    assert link.get_attribute("href") == "https://example.com/runbooks/orders"
    [totals] = [a for a in artifacts if "orders-totals" in a.text]
    assert [th.text for th in totals.find_elements(By.CSS_SELECTOR, "th")][:2] == [
        "metric", "value"]
    [dashboard] = [a for a in artifacts if "orders-dashboard" in a.text]
    assert dashboard.find_element(By.LINK_TEXT, "Orders dashboard").get_attribute(
        "href") == "https://example.com/dashboards/orders"
    screenshot("run")
    screenshot("run-artifacts", at=report)


# --- subflows: run → subflow → its task → back to the parent --------------------------------
def subflow_names(browser: webdriver.Chrome) -> list[str]:
    return texts(browser, "subflow-link")


def task_labels(browser: webdriver.Chrome) -> list[str]:
    return [label.split("\n")[0].strip() for label in texts(browser, "task-row")]


def test_a_subflows_page_its_task_runs_and_the_links_back_to_its_parents(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome, screenshot: Screenshot) -> None:
    # nested → outer-2 → middle-3 → inner-4, each with a task run step-<level>.
    assert ui_sandbox.phase("nested-first") == "Completed"
    run_page = f"{ui_sandbox.url}/runs/{NAMESPACE}/nested-first"
    browser.get(run_page)
    wait(browser).until(lambda b: subflow_names(b) == ["outer-2", "middle-3", "inner-4"])
    click(browser, (By.LINK_TEXT, "outer-2"))

    # outer-2's page: its state, its parent (the run), its task runs and its subflows'.
    wait(browser).until(ec.url_contains("/runs/default/nested-first/subflows/"))
    outer_url = browser.current_url
    assert "Completed" in visible(browser, "subflow-state").text
    assert texts(browser, "breadcrumb") == ["nested-first"]
    assert browser.find_element(*by_testid("subflow-parent")).text == "nested-first"
    wait(browser).until(lambda b: task_labels(b) == [
        "step-outer", "middle-0 → middle-3", "step-middle", "inner-0 → inner-4",
        "step-inner"])
    assert subflow_names(browser) == ["middle-3", "inner-4"]
    # Its logs are its own flow runs' lines, not the root's.
    lines = wait(browser).until(lambda b: texts(b, "log-line"))
    assert any("step at outer with 2" in line for line in lines), lines
    assert not any("nested starts at 1" in line for line in lines), lines
    # Its artifacts: step-outer's and those of the subflows under it.
    assert sorted(a.split(" ·")[0] for a in texts(browser, "artifact")) == [
        "step-inner", "step-middle", "step-outer"]

    # Its task run, found by name, and that task run's detail.
    visible(browser, "task-search").send_keys("step-outer")
    wait(browser).until(lambda b: task_labels(b) == ["step-outer"])
    click(browser, by_testid("task-row"))
    wait(browser).until(lambda b: "step-outer" in b.find_element(
        *by_testid("task-name")).text)
    assert browser.find_element(*by_testid("task-state")).text == "Completed"

    # Down to middle-3, its own subflow, then inner-4: breadcrumbs three deep.
    click(browser, (By.LINK_TEXT, "middle-3"))
    wait(browser).until(lambda b: texts(b, "breadcrumb") == ["nested-first", "outer-2"])
    wait(browser).until(lambda b: len(task_labels(b)) == 3)
    screenshot("subflow")
    click(browser, (By.LINK_TEXT, "inner-4"))
    wait(browser).until(lambda b: texts(b, "breadcrumb") == [
        "nested-first", "outer-2", "middle-3"])
    wait(browser).until(lambda b: task_labels(b) == ["step-inner"])

    # Back up: inner-4's parent is middle-3; middle-3's calling task run is on outer-2's
    # page, its detail open and linking back down; outer-2's parent is the run.
    click(browser, by_testid("subflow-parent"))
    wait(browser).until(lambda b: b.find_element(By.TAG_NAME, "h1").text.startswith(
        "middle-3"))
    click(browser, by_testid("subflow-caller"))
    wait(browser).until(lambda b: b.current_url.startswith(outer_url + "&task="))
    wait(browser).until(lambda b: b.find_element(*by_testid("task-name")).text == "middle-0")
    opened = browser.find_element(By.CSS_SELECTOR, '[data-testid="task-row"][aria-current="true"]')
    assert opened.text.startswith("middle-0 → middle-3"), opened.text
    link = browser.find_element(*by_testid("task-subflow-link"))
    assert link.text == "middle-3"
    click(browser, by_testid("subflow-parent"))
    wait(browser).until(ec.url_to_be(f"{run_page}?attempt=1"))
    assert "Completed" in visible(browser, "run-phase").text
    assert no_dialog(browser)


# --- the run form ---------------------------------------------------------------------------
def fill(browser: webdriver.Chrome, field: str, value: str) -> None:
    """Type ``value`` into the run form's ``field`` (or pick the option labelled so)."""
    element = browser.find_element(By.CSS_SELECTOR, f'form[data-testid="run-form"] '
                                                    f'[name="param.{field}"]')
    if element.tag_name == "select":
        Select(element).select_by_visible_text(value)
    elif element.get_attribute("type") == "date":  # typing into a date picker is locale-bound
        browser.execute_script("arguments[0].value = arguments[1]", element, value)
    else:
        element.clear()
        element.send_keys(value)


def test_the_run_form_refuses_a_bad_value_on_its_field_then_creates_a_run(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome, screenshot: Screenshot) -> None:
    before = set(runs_of(ui_sandbox, "report"))
    browser.get(f"{ui_sandbox.url}/deployments/{NAMESPACE}/report")
    visible(browser, "run-form")
    screenshot("deployment")
    fill(browser, "start_date", "2026-11-20")
    fill(browser, "end_date", "2026-11-22")
    fill(browser, "region", "apac")
    fill(browser, "limit", "5000")  # the schema's maximum is 1000
    browser.find_element(*by_testid("submit-run")).click()
    error = visible(browser, "field-error")
    errors = browser.find_elements(*by_testid("field-error"))
    assert [e.get_attribute("data-field") for e in errors] == ["limit"], [
        (e.get_attribute("data-field"), e.text) for e in errors]
    assert "1000" in error.text, error.text
    # The error is tied to the limit field, and the form kept what was typed.
    limit = browser.find_element(By.CSS_SELECTOR, '[name="param.limit"]')
    assert limit.get_attribute("value") == "5000"
    assert limit.get_attribute("aria-invalid") == "true"
    assert error.get_attribute("id") in (limit.get_attribute("aria-describedby") or "")
    assert set(runs_of(ui_sandbox, "report")) == before, "an invalid form created a run"

    fill(browser, "limit", "7")
    browser.find_element(*by_testid("submit-run")).click()
    created = wait_until(lambda: set(runs_of(ui_sandbox, "report")) - before, TIMEOUT,
                         message="the form created a FlowRun")
    [name] = created
    run = runs_of(ui_sandbox, "report")[name]
    assert run["spec"]["parameters"] == {"start_date": "2026-11-20",
                                         "end_date": "2026-11-22", "region": "apac",
                                         "limit": 7}
    assert run["spec"].get("trigger") == "manual"
    # The browser lands on the new run's page, and the run really runs.
    wait(browser).until(ec.url_contains(f"/runs/{NAMESPACE}/{name}"))
    wait_until(lambda: ui_sandbox.phase(name) == "Completed", 60,
               message=f"{name} completed")


# --- backfill --------------------------------------------------------------------------------
def backfill_form(browser: webdriver.Chrome, start: str, end: str) -> None:
    form = browser.find_element(*by_testid("backfill-form"))
    Select(form.find_element(By.NAME, "schedule")).select_by_value("report-daily")
    for name, value in (("backfill-start", start), ("backfill-end", end)):
        element = form.find_element(*by_testid(name))  # date pickers: set, not typed
        browser.execute_script("arguments[0].value = arguments[1]", element, value)


def test_a_backfill_is_previewed_then_created_and_repeating_it_creates_nothing(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome, screenshot: Screenshot) -> None:
    def backfills() -> set[str]:
        return {n for n, r in runs_of(ui_sandbox, "report").items()
                if r["spec"].get("trigger") == "backfill"}
    assert backfills() == set()
    page = f"{ui_sandbox.url}/deployments/{NAMESPACE}/report"
    browser.get(page)
    backfill_form(browser, "2026-11-01", "2026-11-04")
    browser.find_element(*by_testid("backfill-preview")).click()
    ticks = wait(browser).until(lambda b: b.find_elements(*by_testid("preview-tick")))
    assert len(ticks) == 3, [t.text for t in ticks]
    assert [t.get_attribute("data-exists") for t in ticks] == ["false"] * 3
    assert backfills() == set(), "a preview created runs"
    screenshot("backfill-preview", at=browser.find_element(*by_testid("backfill-form")))

    browser.find_element(*by_testid("backfill-create")).click()
    created = wait_until(lambda: len(backfills()) == 3 and backfills(), TIMEOUT,
                         message="the backfill created 3 FlowRuns")
    days = sorted(runs_of(ui_sandbox, "report")[n]["spec"]["parameters"]["start_date"]
                  for n in created)
    assert days == ["2026-10-31", "2026-11-01", "2026-11-02"], days
    result = visible(browser, "backfill-result")
    assert "created 3, already existed 0" in result.text, result.text

    # The same window again: the preview shows every tick as existing; Create adds none.
    browser.get(page)
    backfill_form(browser, "2026-11-01", "2026-11-04")
    browser.find_element(*by_testid("backfill-preview")).click()
    ticks = wait(browser).until(
        lambda b: len(b.find_elements(*by_testid("preview-tick"))) == 3
        and b.find_elements(*by_testid("preview-tick")))
    assert [t.get_attribute("data-exists") for t in ticks] == ["true"] * 3
    browser.find_element(*by_testid("backfill-create")).click()
    result = visible(browser, "backfill-result")
    assert "created 0, already existed 3" in result.text, result.text
    assert backfills() == created


# --- cancel ----------------------------------------------------------------------------------
def test_cancel_a_running_run(ui_sandbox: UiSandbox, browser: webdriver.Chrome) -> None:
    assert ui_sandbox.phase("sleepy-long") == "Running"
    browser.get(f"{ui_sandbox.url}/runs/{NAMESPACE}/sleepy-long")
    visible(browser, "cancel")
    click(browser, by_testid("cancel"))  # the run's status region refreshes live
    with contextlib.suppress(TimeoutException):  # the button may ask first
        wait(browser, 5).until(ec.alert_is_present()).accept()
    wait_until(lambda: ui_sandbox.phase("sleepy-long") == "Cancelled", 60,
               message="sleepy-long Cancelled")
    wait(browser).until(lambda b: "Cancelled" in b.find_element(*by_testid("run-phase")).text)


# --- a hostile artifact --------------------------------------------------------------------
def test_a_hostile_artifact_and_log_line_render_inert(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome) -> None:
    assert ui_sandbox.phase("hostile-1") == "Completed"
    browser.get(f"{ui_sandbox.url}/runs/{NAMESPACE}/hostile-1")
    artifacts = wait(browser).until(lambda b: len(b.find_elements(*by_testid("artifact"))) >= 3
                                    and b.find_elements(*by_testid("artifact")))
    wait(browser).until(lambda b: b.find_elements(*by_testid("log-line")))
    text = " ".join(a.text for a in artifacts)
    assert "Totally normal report" in text  # the markdown did render

    # Nothing ran: no flag set, no dialog open, nothing logged by a payload.
    assert no_dialog(browser)
    assert browser.execute_script(f"return typeof window.{PWNED}") == "undefined"
    # And nothing active is left in the page for a later click or a laxer browser.
    active = browser.execute_script("""
        const found = [];
        const shown = '[data-testid="artifact"] *, [data-testid="log-line"] *';
        for (const el of document.querySelectorAll(shown)) {
            if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'SVG'].includes(el.tagName.toUpperCase()))
                found.push(el.outerHTML);
            for (const attr of el.attributes) {
                if (/^on/i.test(attr.name)) found.push(el.outerHTML);
                if (/^\\s*javascript:/i.test(attr.value)) found.push(el.outerHTML);
            }
        }
        for (const a of document.querySelectorAll('a[href]')) {
            if (a.protocol === 'javascript:') found.push(a.outerHTML);
        }
        return found;""")
    assert active == [], active
    # Clicking the would-be links runs nothing either.
    for link in browser.find_elements(By.CSS_SELECTOR, '[data-testid="artifact"] a'):
        if link.is_displayed() and not (link.get_attribute("href") or "").startswith("http"):
            link.click()
    assert no_dialog(browser)
    assert browser.execute_script(f"return typeof window.{PWNED}") == "undefined"
    lines = [e.text for e in browser.find_elements(*by_testid("log-line"))]
    assert any("<img src=x onerror=" in line for line in lines), lines


# --- screenshots ---------------------------------------------------------------------------
@pytest.mark.parametrize("page", [
    ("deployments", "/deployments", "deployment-row"),
    ("schedule", f"/schedules/{NAMESPACE}/report-daily", "next-fire"),
    ("flows", "/flows", "flow-row"),
    ("flow", f"/flows/{NAMESPACE}/report", "parameter-row"),
    ("assets", "/assets", "asset-node"),
    ("automation", f"/automations/{NAMESPACE}/report-failures", "automation-action"),
])
def test_screenshots_of_every_page(ui_sandbox: UiSandbox, browser: webdriver.Chrome,
                                   screenshot: Screenshot, page: tuple[str, str, str]
                                   ) -> None:
    name, path, ready = page
    browser.get(ui_sandbox.url + path)
    visible(browser, ready)
    screenshot(name)
