"""Fixtures for SDK unit tests: isolated result storage, a fake sleep, SIGTERM runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import isolated_home
import pytest
from headwater import async_engine, engine

headwater_home = isolated_home.headwater_home  # autouse: each test's own HEADWATER_HOME


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry delays (sync and async engines) instead of sleeping."""
    recorded: list[float] = []

    async def async_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(engine, "sleep", recorded.append)
    monkeypatch.setattr(async_engine, "sleep", async_sleep)
    return recorded


@dataclass(frozen=True)
class SigtermRun:
    """What ``headwater execute`` did after being sent SIGTERM mid-run."""

    returncode: int
    stderr: str
    summary_path: Path


@pytest.fixture
def execute_then_sigterm(tmp_path: Path, headwater_home: Path) -> Callable[[str], SigtermRun]:
    """Run ``headwater execute --entrypoint E`` in a real process and SIGTERM it mid-run.

    The flow at ``E`` must take a ``marker`` parameter and create that file once it is
    running: waiting for the file is synchronisation, not a timing assertion.
    """

    def run(entrypoint: str) -> SigtermRun:
        marker = tmp_path / "started"
        summary_path = tmp_path / "summary.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env["HEADWATER_HOME"] = str(headwater_home)
        proc = subprocess.Popen(
            [sys.executable, "-m", "headwater", "execute", "--entrypoint", entrypoint,
             "--param", f"marker={marker}", "--summary-path", str(summary_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not marker.exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "flow never started"
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            _, stderr = proc.communicate(timeout=30)  # also closes the pipes
        return SigtermRun(proc.returncode, stderr, summary_path)

    return run
