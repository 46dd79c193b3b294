"""Fixtures for the UI's real-browser tests: the sandbox with its UI, and headless Chromium.

``ui_sandbox`` (module scope)
    ``headwater dev`` as the README's first command runs it, with the UI on
    (:class:`headwater_dev.sandbox.Sandbox`, ``ui=True``): the emulator, the real
    operator, the process kubelet (real flow code runs) and the UI server
    (``create_app`` in local mode, on a free port, with the sandbox's kubeconfig). It
    applies ``tests/browser/manifests`` and ``examples/assets``. The sandbox runs in a
    thread with its own event loop, because the tests drive the browser synchronously:
    a test that blocks on the browser must not block the operator. The fixture returns
    once the UI answers and the manifests' first runs have finished (``sleepy-long``
    still runs, for the cancel test). :class:`UiSandbox` gives ``url``, direct reads
    from the emulator (``objects``, ``object``) and ``wait_until``.
``browser`` (module scope)
    Selenium's Chrome driver on Debian's ``chromium`` and ``chromedriver``
    (``scripts/install-chromium.sh`` installs them; ``HEADWATER_CHROMIUM`` and
    ``HEADWATER_CHROMEDRIVER`` name others), headless, 1280×800. No browser download:
    the driver path is given, so Selenium Manager never runs (``SE_OFFLINE`` says so too).
    When they are missing the tests fail, saying how to install them: CI must run them.

Nothing here sleeps for a fixed time: every wait is on a condition, with a deadline.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import pytest
from headwater_dev import sandbox as sb
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from ui_sandbox import (
    FIRST_RUNS,
    MANIFESTS,
    REPO,
    STARTUP_TIMEOUT,
    TERMINAL,
    WINDOW,
    UiSandbox,
    wait_until,
)


@pytest.fixture(scope="module")
def ui_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiSandbox]:
    state_dir = tmp_path_factory.mktemp("ui-sandbox")
    log = state_dir / "sandbox.log"
    out = log.open("w", encoding="utf-8")
    options = sb.SandboxOptions(manifests=MANIFESTS, workdir=REPO, state_dir=state_dir,
                                out=out, refresh_seconds=0.2, metrics_port=None, ui=True)
    sandbox = sb.Sandbox(options)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    outcome: list[BaseException | sb.SandboxResult] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            outcome.append(loop.run_until_complete(sandbox.run(stop)))
        except BaseException as exc:
            outcome.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="ui-sandbox", daemon=True)
    thread.start()
    handle = UiSandbox(sandbox, log)
    try:
        def started() -> bool:
            if outcome:  # the sandbox ended before it served: say why
                raise AssertionError(f"the sandbox stopped: {outcome[0]!r}\n"
                                     + log.read_text(encoding="utf-8"))
            return sandbox.ui_url is not None
        wait_until(started, STARTUP_TIMEOUT, message="the sandbox's UI serves")
        wait_until(lambda: all(handle.phase(run) in TERMINAL for run in FIRST_RUNS)
                   and handle.phase("sleepy-long") == "Running", STARTUP_TIMEOUT,
                   message=f"{', '.join(FIRST_RUNS)} finished and sleepy-long runs")
        yield handle
    finally:
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        out.close()
        assert not thread.is_alive(), "the sandbox did not stop within 60s"


def browser_paths() -> tuple[str, str]:
    """Chromium and ChromeDriver, or a failure saying how to install them."""
    chromium = os.environ.get("HEADWATER_CHROMIUM", "/usr/bin/chromium")
    chromedriver = os.environ.get("HEADWATER_CHROMEDRIVER", "/usr/bin/chromedriver")
    missing = [p for p in (chromium, chromedriver) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: the UI's browser tests need "
                    "Chromium and its ChromeDriver; run 'bash scripts/install-chromium.sh' "
                    "(as root on Debian: apt-get install chromium chromium-driver) or set "
                    "HEADWATER_CHROMIUM and HEADWATER_CHROMEDRIVER", pytrace=False)
    return chromium, chromedriver


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, chromedriver = browser_paths()
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                     "--hide-scrollbars", "--force-device-scale-factor=1",
                     "--lang=en-US", "--disable-extensions", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.set_page_load_timeout(30)
        # The viewport itself 1280×800 (the window size would include the browser's frame).
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()
