"""The UI in a real browser (issue #13's must-show tests): headless Chromium over
``headwater dev`` with its UI, real runs made by the process kubelet.

Selectors are the pages' ``data-testid`` attributes (docs/ui.md), never styling; every
wait is on a condition (Selenium's ``WebDriverWait``, or :func:`conftest.wait_until` for
the API's objects), never a fixed sleep.
"""

from __future__ import annotations

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from conftest import UiSandbox

TIMEOUT = 30.0


def by_testid(name: str) -> tuple[str, str]:
    """The locator of ``data-testid="<name>"``."""
    return By.CSS_SELECTOR, f'[data-testid="{name}"]'


def test_runs_page_lists_the_sandboxs_runs(ui_sandbox: UiSandbox,
                                           browser: webdriver.Chrome) -> None:
    browser.get(f"{ui_sandbox.url}/runs")
    rows = WebDriverWait(browser, TIMEOUT).until(
        ec.presence_of_all_elements_located(by_testid("run-row")))
    names = {row.find_element(*by_testid("run-link")).text for row in rows}
    assert {"report-first", "hostile-1", "sleepy-long"} <= names, names
