"""The UI stays usable (issue #13, Accessibility and Speed), in a real browser over the
sandbox:

* every page passes an axe-core audit (tests/browser/a11y.py): no violation of impact
  serious or critical, in the states a user sees them (a task run's detail open, a form
  with a field error, a backfill preview);
* keyboard only: Tab to the task search, type, Down into the list, Enter opens the task
  run's detail; the list names its active row (``aria-activedescendant``) to assistive
  technology, as the row moves and as the virtual window is redrawn;
* a run whose record has 10,000 task runs (``many-10000``, a real run of
  tests/browser/flows/ui_flows.py ``many``): only a window of rows is in the DOM, the
  last task run is reached by scrolling and its detail opens, search finds one by name.

Every wait is on a condition, never a fixed sleep; nothing here is timed.
"""

from __future__ import annotations

from typing import Any

import pytest
from a11y import audit, blocking, describe
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select
from ui_sandbox import NAMESPACE, UiSandbox, by_testid, visible, wait, wait_until

MANY = "many-10000"
MANY_TASKS = 10_000


def assert_accessible(browser: webdriver.Chrome, where: str) -> None:
    """No serious or critical axe violation in the page as it is now."""
    found = blocking(audit(browser))
    assert not found, f"{where}: axe found\n{describe(found)}"


def rows_in_dom(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """The task rows the DOM holds now: label, position, id, selected."""
    found: list[dict[str, Any]] = browser.execute_script("""
        return Array.from(document.querySelectorAll('[data-testid="task-row"]'), r => ({
            label: r.firstElementChild.textContent.trim(), id: r.id,
            pos: Number(r.getAttribute('aria-posinset')),
            size: Number(r.getAttribute('aria-setsize')),
            selected: r.getAttribute('aria-selected') === 'true'}));""")
    return found


def active_row(browser: webdriver.Chrome) -> dict[str, Any] | None:
    """The row the list's ``aria-activedescendant`` names, if it is in the DOM."""
    found: dict[str, Any] | None = browser.execute_script("""
        const list = document.querySelector('[data-testid="task-list"]');
        const id = list.getAttribute('aria-activedescendant');
        const row = id && document.getElementById(id);
        if (!row) return id ? {missing: id} : null;
        return {id: id, role: row.getAttribute('role'), inList: list.contains(row),
                label: row.firstElementChild.textContent.trim(),
                pos: Number(row.getAttribute('aria-posinset')),
                selected: row.getAttribute('aria-selected') === 'true'};""")
    return found


def the_active_row(browser: webdriver.Chrome) -> dict[str, Any]:
    """The list's active row, which must be named and in the DOM."""
    found = active_row(browser)
    assert found is not None, "the list names no active row"
    assert "missing" not in found, f"aria-activedescendant names no element: {found}"
    return found


def focused_testid(browser: webdriver.Chrome) -> str | None:
    """The ``data-testid`` of the focused element."""
    found: str | None = browser.execute_script(
        "return document.activeElement && document.activeElement.dataset.testid || null")
    return found


def task_count(browser: webdriver.Chrome, text: str) -> bool:
    """The list says ``text`` (e.g. "1 of 5 task runs")."""
    return bool(browser.find_element(*by_testid("task-count")).text == text)


def detail_names(browser: webdriver.Chrome, name: str) -> bool:
    """The task run detail shows ``name``."""
    found = browser.find_elements(*by_testid("task-name", within='[data-testid="task-detail"]'))
    return bool(found and found[0].text == name)


# --- axe on every page ------------------------------------------------------------------
@pytest.mark.parametrize(("path", "ready"), [
    ("/runs", "run-row"),
    ("/deployments", "deployment-row"),
    (f"/deployments/{NAMESPACE}/report", "run-form"),
    ("/schedules", "schedule-row"),
    (f"/schedules/{NAMESPACE}/report-daily", "next-fire"),
    ("/flows", "flow-row"),
    (f"/flows/{NAMESPACE}/report", "parameter-row"),
    ("/assets", "asset-node"),
    ("/automations", "automation-row"),
    (f"/automations/{NAMESPACE}/report-failures", "automation-action"),
    (f"/runs/{NAMESPACE}/sleepy-long", "task-list"),
    ("/login", "login-token"),
], ids=lambda value: value.strip("/").replace("/", "_") if isinstance(value, str) else None)
def test_every_page_passes_an_axe_audit(ui_sandbox: UiSandbox, browser: webdriver.Chrome,
                                        path: str, ready: str) -> None:
    browser.get(ui_sandbox.url + path)
    visible(browser, ready)
    assert_accessible(browser, path)


def test_an_assets_detail_passes_an_axe_audit(ui_sandbox: UiSandbox,
                                              browser: webdriver.Chrome) -> None:
    browser.get(f"{ui_sandbox.url}/assets")
    key = visible(browser, "asset-node").get_attribute("data-key")
    browser.get(f"{ui_sandbox.url}/assets?key={key}")
    wait(browser).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, f'[data-testid="asset-node"][data-key="{key}"]')))
    assert_accessible(browser, f"/assets?key={key}")


def test_a_run_with_its_tasks_detail_logs_and_artifacts_passes_an_axe_audit(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome) -> None:
    browser.get(f"{ui_sandbox.url}/runs/{NAMESPACE}/report-first")
    wait(browser).until(lambda b: len(b.find_elements(*by_testid("task-row"))) == 5)
    wait(browser).until(lambda b: b.find_elements(*by_testid("log-line")))
    wait(browser).until(lambda b: len(b.find_elements(*by_testid("artifact"))) >= 3)
    browser.find_element(*by_testid("task-row")).click()
    wait(browser).until(lambda b: b.find_elements(
        *by_testid("task-state-row", within='[data-testid="task-detail"]')))
    assert_accessible(browser, "a run with a task run's detail open")


def test_a_subflow_runs_page_with_a_task_runs_detail_passes_an_axe_audit(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome) -> None:
    browser.get(f"{ui_sandbox.url}/runs/{NAMESPACE}/nested-first")
    visible(browser, "subflow-link").click()  # outer-2: task runs, logs, its own subflows
    wait(browser).until(lambda b: len(b.find_elements(*by_testid("task-row"))) == 5)
    wait(browser).until(lambda b: b.find_elements(*by_testid("log-line")))
    browser.find_element(*by_testid("task-row")).click()
    wait(browser).until(lambda b: b.find_elements(
        *by_testid("task-state-row", within='[data-testid="task-detail"]')))
    assert_accessible(browser, "a subflow run's page with a task run's detail open")


def test_the_run_and_backfill_forms_pass_an_axe_audit_with_errors_and_a_preview(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome) -> None:
    before = {r["metadata"]["name"] for r in ui_sandbox.objects("flowruns")}
    page = f"{ui_sandbox.url}/deployments/{NAMESPACE}/report"
    browser.get(page)
    # A field error (nothing is created: the limit is above the schema's maximum).
    limit = browser.find_element(By.CSS_SELECTOR, '[name="param.limit"]')
    limit.clear()
    limit.send_keys("5000")
    browser.find_element(*by_testid("submit-run")).click()
    visible(browser, "field-error")
    assert_accessible(browser, "the run form with a field error")
    # A backfill preview (a dry run: nothing is created).
    form = browser.find_element(*by_testid("backfill-form"))
    Select(form.find_element(By.NAME, "schedule")).select_by_value("report-daily")
    for name, value in (("backfill-start", "2026-10-01"), ("backfill-end", "2026-10-03")):
        browser.execute_script("arguments[0].value = arguments[1]",
                               form.find_element(*by_testid(name)), value)
    browser.find_element(*by_testid("backfill-preview")).click()
    wait(browser).until(lambda b: b.find_elements(*by_testid("preview-tick")))
    assert_accessible(browser, "the backfill preview")
    assert {r["metadata"]["name"] for r in ui_sandbox.objects("flowruns")} == before


# --- keyboard only ----------------------------------------------------------------------
def press(browser: webdriver.Chrome, *keys: str) -> None:
    """Keys typed into whatever has the focus (no element is clicked or targeted)."""
    ActionChains(browser).send_keys(*keys).perform()


def test_keyboard_only_tab_to_the_search_type_arrow_down_and_enter_opens_the_detail(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome) -> None:
    browser.get(f"{ui_sandbox.url}/runs/{NAMESPACE}/report-first")
    wait(browser).until(lambda b: task_count(b, "5 of 5 task runs"))
    for _ in range(200):  # Tab from the top of the page, as far as the search box
        press(browser, Keys.TAB)
        if focused_testid(browser) == "task-search":
            break
    assert focused_testid(browser) == "task-search", "Tab never reached the task search"

    press(browser, "summ")
    wait(browser).until(lambda b: task_count(b, "1 of 5 task runs"))
    assert active_row(browser) is None  # nothing active before the user moves
    press(browser, Keys.ARROW_DOWN)     # from the search box into the list
    assert focused_testid(browser) == "task-list"
    active = the_active_row(browser)
    assert (active["role"], active["inList"], active["label"], active["pos"],
            active["selected"]) == ("option", True, "summarize-eu", 1, True), active
    press(browser, Keys.ENTER)
    wait(browser).until(lambda b: detail_names(b, "summarize-eu"))

    # Back to every task run: the arrows move the active row, and the list says which.
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert focused_testid(browser) == "task-search"
    press(browser, Keys.BACKSPACE * 4)
    wait(browser).until(lambda b: task_count(b, "5 of 5 task runs"))
    press(browser, Keys.TAB)
    assert focused_testid(browser) == "task-list"
    press(browser, Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_DOWN)
    assert the_active_row(browser)["pos"] == 3
    assert [r["pos"] for r in rows_in_dom(browser) if r["selected"]] == [3]
    press(browser, Keys.END)
    last = the_active_row(browser)
    assert (last["pos"], last["label"]) == (5, "publish-eu"), last
    press(browser, Keys.HOME, Keys.ARROW_DOWN, Keys.ENTER)
    second = the_active_row(browser)
    assert second["pos"] == 2, second
    wait(browser).until(lambda b: detail_names(b, second["label"]))
    assert focused_testid(browser) == "task-list"  # the focus stays in the list


# --- a run of 10,000 task runs ----------------------------------------------------------
def test_a_run_of_10000_task_runs_keeps_a_window_of_rows_reaches_the_last_and_searches(
        ui_sandbox: UiSandbox, browser: webdriver.Chrome) -> None:
    wait_until(lambda: ui_sandbox.phase(MANY) == "Completed", 180,
               message=f"{MANY} completed")
    browser.get(f"{ui_sandbox.url}/runs/{NAMESPACE}/{MANY}")
    everything = f"{MANY_TASKS} of {MANY_TASKS} task runs"
    wait(browser, 60).until(lambda b: task_count(b, everything))
    rows = rows_in_dom(browser)
    assert 0 < len(rows) < 100, len(rows)
    assert {r["size"] for r in rows} == {MANY_TASKS}
    assert rows[0]["label"] == "item-0"
    # The page is small too: rows come from JSON, a window at a time.
    assert len(browser.page_source) < 500_000

    # Scrolled to the end: the last task run is drawn, and only a window around it.
    browser.execute_script("const l = arguments[0]; l.scrollTop = l.scrollHeight;",
                           browser.find_element(*by_testid("task-list")))
    wait(browser).until(lambda b: any(r["pos"] == MANY_TASKS for r in rows_in_dom(b)))
    rows = rows_in_dom(browser)
    assert len(rows) < 100, len(rows)
    assert min(r["pos"] for r in rows) > MANY_TASKS - 100
    browser.find_element(By.CSS_SELECTOR,
                         f'[data-testid="task-row"][aria-posinset="{MANY_TASKS}"]').click()
    wait(browser).until(lambda b: detail_names(b, f"item-{MANY_TASKS - 1}"))
    assert the_active_row(browser)["pos"] == MANY_TASKS

    # Scrolled back to the top, the window is redrawn and the active row stays named.
    browser.execute_script("arguments[0].scrollTop = 0",
                           browser.find_element(*by_testid("task-list")))
    wait(browser).until(lambda b: any(r["pos"] == 1 for r in rows_in_dom(b)))
    assert len(rows_in_dom(browser)) < 100
    active = the_active_row(browser)
    assert (active["pos"], active["inList"]) == (MANY_TASKS, True), active

    # Search by name finds the one task run.
    search = visible(browser, "task-search")
    search.send_keys("item-4321")
    wait(browser).until(lambda b: task_count(b, f"1 of {MANY_TASKS} task runs"))
    assert [r["label"] for r in rows_in_dom(browser)] == ["item-4321"]
    browser.find_element(*by_testid("task-row")).click()
    wait(browser).until(lambda b: detail_names(b, "item-4321"))
    assert_accessible(browser, f"{MANY} searched")
