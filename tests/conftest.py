"""Fixtures shared by the tests that drive a real browser (JupyterLab's and the rendered site's)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Skip locally without Chromium; under CI a missing browser is a failure, not a pass."""
    if CHROMIUM.exists():
        return
    message = (
        f"{CHROMIUM} not found: the real-browser tests need Debian's Chromium "
        "(apt-get install -y chromium; .ci/run installs it)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI is set, so this is a failure")
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (never `playwright install`: no browser downloads here).

    One per test module, not per session: Playwright's sync API keeps an event loop running while it lives, and
    the site test's build (nbclient, ``asyncio.run``) cannot start inside one.
    """
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
