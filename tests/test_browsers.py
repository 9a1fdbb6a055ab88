"""How the browser tests find a Chromium (tests/browsers.py): the search order, hiding, skipping and CI's failure.

No browser is started: the binaries here are empty files, and Playwright's own Chromium is replaced by a stand-in.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import browsers
import pytest


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine with no browser at all: empty PATH, no Playwright Chromium, no /usr/bin/chromium, not CI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(browsers, "_playwright_chromium", lambda: None)
    monkeypatch.setattr(browsers, "DEBIAN", tmp_path / "usr-bin-chromium")
    browsers.find_chromium.cache_clear()
    yield bin_dir
    browsers.find_chromium.cache_clear()


def executable(path: Path) -> str:
    path.write_text("", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_no_browser_skips_with_how_to_get_one(machine):
    found = browsers.find_chromium()
    assert found == browsers.HOW_TO_GET_ONE and "python -m playwright install chromium" in found
    assert "\n" not in found  # one line
    with pytest.raises(pytest.skip.Exception, match="playwright install chromium"):
        browsers.require_chromium()


@pytest.mark.parametrize("value", ["true", "1", "True"])
def test_no_browser_fails_under_ci(machine, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        browsers.require_chromium()


def test_debian_path_is_the_last_resort(machine, tmp_path, monkeypatch):
    debian = executable(tmp_path / "usr-bin-chromium")
    assert browsers.find_chromium() == browsers.Found(debian, debian)


@pytest.mark.skipif(os.name == "nt", reason="PATH lookup of an extensionless file is POSIX")
def test_path_names_come_before_the_debian_path_in_order(machine, tmp_path):
    executable(tmp_path / "usr-bin-chromium")
    chrome = executable(machine / "google-chrome")
    assert browsers.find_chromium() == browsers.Found(chrome, "google-chrome on PATH")
    browsers.find_chromium.cache_clear()
    chromium_browser = executable(machine / "chromium-browser")
    assert browsers.find_chromium() == browsers.Found(chromium_browser, "chromium-browser on PATH")


@pytest.mark.skipif(os.name == "nt", reason="PATH lookup of an extensionless file is POSIX")
def test_playwrights_own_chromium_comes_before_the_system_one(machine, monkeypatch):
    executable(machine / "chromium")
    monkeypatch.setattr(browsers, "_playwright_chromium", lambda: "/cache/ms-playwright/chromium/chrome")
    found = browsers.find_chromium()
    assert found.executable is None and "Playwright" in found.source  # Playwright launches its own


def test_the_chromium_variable_comes_first(machine, tmp_path, monkeypatch):
    executable(machine / "chromium")
    monkeypatch.setattr(browsers, "_playwright_chromium", lambda: "/cache/ms-playwright/chromium/chrome")
    mine = executable(tmp_path / "my-chrome")
    monkeypatch.setenv("CHROMIUM", mine)
    assert browsers.find_chromium() == browsers.Found(mine, "CHROMIUM")


def test_chromium_none_hides_every_browser(machine, tmp_path, monkeypatch):
    executable(machine / "chromium")
    executable(tmp_path / "usr-bin-chromium")
    monkeypatch.setattr(browsers, "_playwright_chromium", lambda: "/cache/ms-playwright/chromium/chrome")
    monkeypatch.setenv("CHROMIUM", "none")
    found = browsers.find_chromium()
    assert isinstance(found, str) and found.startswith("CHROMIUM=none hides every browser")
    with pytest.raises(pytest.skip.Exception):
        browsers.require_chromium()


def test_a_named_browser_that_is_missing_is_not_replaced_by_another(machine, monkeypatch):
    executable(machine / "chromium")
    monkeypatch.setenv("CHROMIUM", "/nowhere/chrome")
    found = browsers.find_chromium()
    assert isinstance(found, str) and "/nowhere/chrome" in found
