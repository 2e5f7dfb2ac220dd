"""Debian's Chromium through Playwright, as the browser tests launch it (never a
downloaded browser: ``playwright install`` is not used)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.cli import REPO

CHROMIUM = "/usr/bin/chromium"

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

AUTOPLAY = "--autoplay-policy=no-user-gesture-required"
"""As a bench's kiosk browser is started (docs/station.md): the page may sound without
a tap first."""

OUTPUT = REPO / "tests" / "_output"
"""Where browser tests leave screenshots for people to look at (git-ignored)."""


@contextlib.contextmanager
def chromium(*, autoplay: bool = True) -> Iterator[Browser]:
    """A headless Chromium for one test; ``autoplay`` as a bench's kiosk is set up."""
    args = [*CHROMIUM_ARGS, *([AUTOPLAY] if autoplay else [])]
    args += ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """Save what ``page`` shows as ``folder/name.png`` and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path
