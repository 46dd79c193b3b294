"""Accessibility audits of a page in the browser, with axe-core (tests/browser/vendor/).

:func:`audit` injects the vendored ``axe.min.js`` (pinned by its sha256: a changed file
fails rather than audits with unknown rules) into the page the driver shows and runs
``axe.run`` on the whole document with axe's default rules (WCAG 2.0, 2.1 and 2.2 A and
AA, and its best practices). :func:`blocking` keeps the violations whose impact is
``serious`` or ``critical``: those fail the UI's tests. :data:`EXCLUDED_RULES` names every
rule switched off, and why (docs/ui.md repeats it).

axe-core is a test tool only: the UI never serves it.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from selenium import webdriver
from ui_sandbox import REPO

AXE = REPO / "tests" / "browser" / "vendor" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
BLOCKING = ("serious", "critical")
"""The impacts that fail a test."""
EXCLUDED_RULES: dict[str, str] = {}
"""Rules switched off, by axe rule id, with the reason (none: every rule runs)."""

Violation = dict[str, Any]


@functools.cache
def axe_source() -> str:
    """The vendored axe-core, checked against its pinned sha256."""
    data = AXE.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest == AXE_SHA256, (
        f"{AXE} has sha256 {digest}, not axe-core {AXE_VERSION}'s {AXE_SHA256}: "
        "restore it, or update AXE_SHA256 and tests/browser/vendor/axe-core/README.md "
        "when upgrading on purpose")
    return data.decode("utf-8")


def audit(browser: webdriver.Chrome) -> list[Violation]:
    """Every violation axe finds in the page the browser shows now."""
    if browser.execute_script("return typeof window.axe") == "undefined":
        browser.execute_script(axe_source())
    version = browser.execute_script("return window.axe.version")
    assert version == AXE_VERSION, version
    options = {"resultTypes": ["violations"],
               "rules": {rule: {"enabled": False} for rule in EXCLUDED_RULES}}
    results: dict[str, Any] = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.axe.run(document, arguments[0])"
        "  .then(r => done({violations: r.violations}), e => done({error: String(e)}));",
        options)
    assert "error" not in results, f"axe failed: {results['error']}"
    found: list[Violation] = results["violations"]
    return found


def blocking(violations: list[Violation]) -> list[Violation]:
    """The violations of impact serious or critical."""
    return [v for v in violations if v.get("impact") in BLOCKING]


def describe(violations: list[Violation]) -> str:
    """Each violation: rule, impact, what it asks, and the elements with axe's summary."""
    lines = []
    for v in violations:
        lines.append(f"* {v['id']} ({v.get('impact')}): {v['help']} — {v['helpUrl']}")
        for node in v["nodes"][:10]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {node['target']}: {node['html'][:160]}\n      {summary}")
        if len(v["nodes"]) > 10:
            lines.append(f"    … and {len(v['nodes']) - 10} more")
    return "\n".join(lines)
