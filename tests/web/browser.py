"""Debian's chromium driven by Playwright (never a downloaded browser), for end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from iiot.web import spa

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
ARTIFACTS = Path(
    os.environ.get("IIOT_UI_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts" / "ui")
)


def _missing() -> str | None:
    if not (spa.DIST / "index.html").is_file():
        return "the web UI is not built (make ui)"
    if not CHROMIUM.is_file():
        return "Debian's chromium is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    missing = _missing()
    if missing:
        # `make test` and CI build the UI and install chromium; they set IIOT_REQUIRE_UI_TESTS so
        # that a missing piece fails instead of skipping.
        if os.environ.get("IIOT_REQUIRE_UI_TESTS"):
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A page behind another one of the browser is not painted until it is shown: capturing
    # it costs a second or more, in front it costs a tenth.
    await page.bring_to_front()
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
