"""Debian's chromium driven by Playwright (never a downloaded browser), for end-to-end tests.

Screenshots: with `IIOT_UI_ARTIFACTS` set to a directory, `shot()` saves a full-page PNG of
every page the end-to-end test visits there (for people to look at; no test reads them).
Without it no screenshot is taken: rendering and encoding them cost the suite CPU time.
"""

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
    # Chromium keeps only the last --disable-features switch and Playwright passes its own list
    # before ours, so this one repeats Playwright's (1.65) and adds the omnibox popups: since
    # Chromium 151 every window preloads the address bar's popup as a WebUI page in a renderer
    # of its own (about a second of CPU per page the tests open; a headless window never shows
    # it).
    "--disable-features="
    + ",".join(
        [
            "AvoidUnnecessaryBeforeUnloadCheckSync",
            "DestroyProfileOnBrowserClose",
            "HttpsUpgrades",
            "HttpsFirstBalancedModeAutoEnable",
            "LensOverlay",
            "MediaRouter",
            "PaintHolding",
            "ThirdPartyStoragePartitioning",
            "AvoidCorsURLLoaderRestartOnRedirect",
            "OptimizationHints",
            "NetworkTimeServiceQuerying",
            "AimEnabled",
            "PreconnectToSearch",
            "WebUIOmniboxPopup",
            "WebUIOmniboxAimPopup",
            "WebUIOmniboxFullPopup",
        ]
    ),
]
_ARTIFACTS = os.environ.get("IIOT_UI_ARTIFACTS")
ARTIFACTS = Path(_ARTIFACTS) if _ARTIFACTS else None


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


# Per module: only the end-to-end test uses a browser; one kept for the whole session would stay
# alive, and spend CPU, until the last test of the suite is done.
@pytest.fixture(scope="module")
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
    """A full-page screenshot `name`.png in IIOT_UI_ARTIFACTS, when that is set."""
    if ARTIFACTS is None:
        return
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # A page behind another one of the browser is not painted until it is shown: capturing
    # it costs a second or more, in front it costs a tenth.
    await page.bring_to_front()
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
