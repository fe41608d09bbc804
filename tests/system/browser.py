"""Playwright for Python driving Debian's Chromium (``apt-get install chromium``): nothing here downloads a
browser. Where Chromium is missing the browser tests are skipped, except under CI (``CI`` set, as
``.ci/run`` does, after installing it), where that is a failure."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("REGISTRY_TEST_CHROMIUM", "/usr/bin/chromium")
# Failure screenshots go here (CI keeps the directory); README screenshots are written only when asked.
FAILURES = Path(os.environ.get("REGISTRY_TEST_SCREENSHOTS", "/tmp/registry-test-screenshots"))
README_SHOTS = Path(__file__).resolve().parent / "screenshots"
UPDATE_README_SHOTS = os.environ.get("REGISTRY_UPDATE_SCREENSHOTS") == "1"


def chromium_or_skip() -> str:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium package)")
    pytest.skip(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium")


def failure_screenshot(page, test_name: str) -> Path:
    FAILURES.mkdir(parents=True, exist_ok=True)
    path = FAILURES / (re.sub(r"[^\w.-]+", "_", test_name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path


# --- Accessibility basics, checked in the browser on the rendered page -----------------------------------

_UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden')
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map(el => el.outerHTML)"""

_HEADINGS = """() => [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => Number(h.tagName[1]))"""

_FOCUSABLE = """() => [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')]
  .filter(el => el.offsetParent !== null && !el.disabled)
  .map(el => el.outerHTML.slice(0, 120))"""


def accessibility_problems(page) -> list[str]:
    """Form fields without labels, headings out of order, and controls the keyboard cannot reach."""
    problems = [f"no label: {html}" for html in page.evaluate(_UNLABELLED)]
    levels = page.evaluate(_HEADINGS)
    if levels[:1] != [1] or levels.count(1) != 1:
        problems.append(f"one h1 must come first: {levels}")
    for before, after in zip(levels, levels[1:]):
        if after > before + 1:
            problems.append(f"heading level jumps from h{before} to h{after}: {levels}")
    focusable = page.evaluate(_FOCUSABLE)
    reached = set()
    page.locator("body").focus()
    for _ in range(12 * len(focusable) + 5):  # a date-time field takes several Tab stops
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => document.activeElement ? document.activeElement.outerHTML.slice(0, 120) : ''"))
        if reached.issuperset(focusable):
            break
    problems += [f"not reachable by Tab: {html}" for html in focusable if html not in reached]
    return problems
