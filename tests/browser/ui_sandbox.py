"""What the UI's browser tests share besides their fixtures: the repository's paths, the
sandbox handle (:class:`UiSandbox`), :func:`wait_until`, and the page helpers that find
elements by ``data-testid`` (:func:`by_testid`, :func:`wait`, :func:`visible`).

A module of its own (not ``conftest``): ``from conftest import ...`` finds whichever
``conftest`` pytest imported first under that name, another folder's when the whole
suite runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from headwater_dev import sandbox as sb
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = [REPO / "tests" / "browser" / "manifests", REPO / "examples" / "assets"]
TERMINAL = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
FIRST_RUNS = ("report-first", "hostile-1", "nested-first")
"""The manifests' runs that must have finished before the tests start."""
WINDOW = (1280, 800)
STARTUP_TIMEOUT = 120.0
TIMEOUT = 30.0
NAMESPACE = "default"

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, *,
               message: str = "condition", interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except (LookupError, AttributeError, TypeError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} did not hold within {timeout:g}s; last: {last!r}")
        time.sleep(interval)


def by_testid(name: str, *, within: str = "") -> tuple[str, str]:
    """The locator of ``data-testid="<name>"`` (inside the CSS selector ``within``)."""
    return By.CSS_SELECTOR, f'{within} [data-testid="{name}"]'.strip()


def wait(browser: webdriver.Chrome, timeout: float = TIMEOUT) -> WebDriverWait[Any]:
    """A wait that retries while the page replaces what it was reading (live refresh)."""
    return WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,))


def visible(browser: webdriver.Chrome, name: str) -> WebElement:
    """The first visible element with ``data-testid=name``, waited for."""
    element: WebElement = wait(browser).until(ec.visibility_of_element_located(by_testid(name)))
    return element


@dataclass
class UiSandbox:
    """The running sandbox: its UI's address and sync reads of its API's objects."""

    sandbox: sb.Sandbox
    log: Path
    namespace: str = "default"

    @property
    def url(self) -> str:
        """The UI's base address, ``http://127.0.0.1:<port>``."""
        assert self.sandbox.ui_url is not None
        return self.sandbox.ui_url

    def objects(self, plural: str) -> list[dict[str, Any]]:
        """Every object of ``plural`` in the namespace."""
        found: list[dict[str, Any]] = self.sandbox.emulator.objects(plural, self.namespace)
        return found

    def object(self, plural: str, name: str) -> dict[str, Any] | None:
        """One object, or None."""
        found: dict[str, Any] | None = self.sandbox.emulator.object(plural, name,
                                                                     self.namespace)
        return found

    def phase(self, run: str) -> str | None:
        """A FlowRun's phase (None: no such run, or no status yet)."""
        return ((self.object("flowruns", run) or {}).get("status") or {}).get("phase")

    def run_names(self) -> set[str]:
        """The names of every FlowRun."""
        return {r["metadata"]["name"] for r in self.objects("flowruns")}
