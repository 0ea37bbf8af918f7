"""Headless Chromium for the browser tests (test_site.py, test_lab_browser.py), via Playwright.

Nothing is downloaded: Playwright drives the Chromium already on the machine (Debian's
`chromium` package in CI; `.ci/run` installs it). Without one the tests FAIL and say how to get
it, never skip: CI must run them.
"""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # chromium() below fails with how to install Playwright
    PlaywrightTimeout = TimeoutError

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"

CANDIDATES = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
]

MISSING = """\
{what} needs a Chromium-based browser to run headless, and none was found.
Install one, then run the tests again:
  Debian/Ubuntu:  sudo apt-get install chromium     (CI does this in .ci/run)
  macOS:          brew install --cask chromium
  any other:      export TLCOURSE_CHROMIUM=/path/to/chromium-or-chrome
(Playwright drives it; do not run `playwright install`, which downloads its own browser.)"""


def find_chromium() -> str | None:
    """The browser to drive: $TLCOURSE_CHROMIUM, else the first candidate found."""
    chosen = os.environ.get("TLCOURSE_CHROMIUM")
    if chosen:
        return chosen if Path(chosen).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    return None


@contextmanager
def chromium(what: str):
    """A headless Playwright browser on the system's Chromium; fails with instructions."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"{what} needs Playwright: .venv/bin/pip install -e '.[dev]'", pytrace=False)
    executable = find_chromium()
    if executable is None:
        chosen = os.environ.get("TLCOURSE_CHROMIUM")
        note = f"\n(TLCOURSE_CHROMIUM={chosen} is not a file.)" if chosen else ""
        pytest.fail(MISSING.format(what=what) + note, pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save what the learner would see under _build/screenshots/ (not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
