"""Debian's Chromium, driven headless by Playwright, for the tests that need a real browser.

`playwright install` downloads a browser and cannot work here: the `chromium` package is
installed when missing (tests/servers.py `require_binary`), and Playwright launches it by path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.servers import require_binary

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@asynccontextmanager
async def chromium() -> AsyncIterator:
    """A launched browser (playwright.async_api.Browser), closed afterwards."""
    from playwright.async_api import async_playwright

    executable = require_binary("chromium", "chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def artifact(*parts: str) -> Path:
    """A path under test-artifacts/ (ignored by git), its folder created."""
    path = ARTIFACTS.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
