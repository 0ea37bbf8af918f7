"""Without Chromium the browser tests FAIL and say how to get one (they never skip silently)."""

import pytest
from browser_support import chromium, find_chromium


def test_missing_chromium_fails_and_says_how_to_install(monkeypatch):
    monkeypatch.setenv("TLCOURSE_CHROMIUM", "/nowhere/chromium")
    assert find_chromium() is None
    with pytest.raises(pytest.fail.Exception) as failure:
        with chromium("The website test (tests/test_site.py)"):
            pass  # pragma: no cover (never reached)
    message = str(failure.value)
    assert message.startswith("The website test (tests/test_site.py) needs a Chromium")
    assert "apt-get install chromium" in message and "brew install --cask chromium" in message
    assert "TLCOURSE_CHROMIUM=/nowhere/chromium is not a file" in message
    assert "do not run `playwright install`" in message


def test_a_browser_is_found_here():
    """CI installs one (.ci/run); on a laptop without it this fails with the hint above."""
    found = find_chromium()
    assert found, "no Chromium: sudo apt-get install chromium, or set TLCOURSE_CHROMIUM"
