"""Where the browser tests find a Chromium: one place for every test file that drives a browser.

The search order (the first that exists wins):

1. the ``CHROMIUM`` environment variable: a path to a Chromium/Chrome binary, or a command name on ``PATH``;
   ``CHROMIUM=none`` hides every browser (to check that the suite skips cleanly without one);
2. Playwright's own Chromium, if the reader ran ``python -m playwright install chromium``;
3. ``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable`` on ``PATH`` (Debian, Ubuntu);
4. ``/usr/bin/chromium``.

With none, every test marked ``browser`` is skipped with one line that says how to get one, except under
``CI=true``, where it fails: a CI run that silently skips its browser tests would prove nothing
(``tests/conftest.py`` applies this to every ``browser``-marked test before its fixtures run, so a missing browser
never costs a book build first).
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# Hides every browser: CHROMIUM=none python -m pytest ... runs the suite as on a machine without one.
HIDDEN = "none"
PATH_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DEBIAN = Path("/usr/bin/chromium")
HOW_TO_GET_ONE = ("no Chromium for the browser tests: run `python -m playwright install chromium`, install your OS's "
                  "chromium (Debian/Ubuntu: `apt-get install chromium`), or set CHROMIUM=/path/to/chrome")
# --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start; the rest keeps a headless
# browser from calling home (QUIC, first-run, component updates, sync)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@dataclass(frozen=True)
class Found:
    """A Chromium to launch: ``executable`` None means Playwright's own (Playwright picks its headless build)."""

    executable: str | None
    source: str


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _playwright_chromium() -> str | None:
    """The path of Playwright's own Chromium if it is installed; None if it is not (or Playwright is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as p:
        path = p.chromium.executable_path  # where `playwright install chromium` puts it, installed or not
    return path if path and Path(path).is_file() else None


@functools.cache
def find_chromium() -> Found | str:
    """The Chromium the browser tests use, or the reason there is none (one line)."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt); " + HOW_TO_GET_ONE
    given = os.environ.get("CHROMIUM", "").strip()
    if given.lower() == HIDDEN:
        return f"CHROMIUM={HIDDEN} hides every browser; " + HOW_TO_GET_ONE
    if given:
        path = shutil.which(given) or (given if Path(given).is_file() else None)
        if path is None:
            # a browser the user named but that is not there is an error, not a reason to pick another one
            return f"CHROMIUM={given!r} is neither a file nor a command on PATH"
        return Found(path, "CHROMIUM")
    own = _playwright_chromium()
    if own is not None:
        return Found(None, f"Playwright's Chromium ({own})")
    for name in PATH_NAMES:
        path = shutil.which(name)
        if path:
            return Found(path, f"{name} on PATH")
    if DEBIAN.is_file():
        return Found(str(DEBIAN), str(DEBIAN))
    return HOW_TO_GET_ONE


def require_chromium() -> Found:
    """The Chromium to use; skips the calling test when there is none, or fails it under CI=true."""
    import pytest

    found = find_chromium()
    if isinstance(found, Found):
        return found
    if in_ci():
        pytest.fail(f"CI=true and {found}", pytrace=False)
    pytest.skip(found)


def keep_local(target, outside: list[str]) -> None:
    """Let ``target`` (a Playwright Page or BrowserContext) load only from this machine (127.0.0.1, localhost) and
    from data:/blob: URLs: any other request is aborted and its URL appended to ``outside``. The built book must
    work offline; a test or benchmark asserts that ``outside`` stayed empty."""

    def route(r) -> None:
        url = r.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    target.route("**/*", route)


@contextmanager
def launched(headless: bool = True) -> Iterator:
    """A Playwright Browser on the Chromium :func:`require_chromium` finds; closed on exit."""
    from playwright.sync_api import sync_playwright

    found = require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=found.executable, headless=headless, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
