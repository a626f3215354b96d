"""Headless Chromium for the console's end-to-end tests: Debian's `chromium` package driven by
the `playwright` Python package with `executable_path` (playwright never downloads a browser
here). A missing Chromium is installed with apt-get when the tests run as root on Debian
(ZONEHUB_BROWSER_INSTALL=0 turns that off); otherwise these tests skip and say why."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("ZONEHUB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _install_chromium() -> str | None:
    """None when Chromium is there (installed now if need be), else why it is not."""
    if Path(CHROMIUM).exists():
        return None
    if os.environ.get("ZONEHUB_BROWSER_INSTALL", "1") == "0":
        return f"{CHROMIUM} is missing and ZONEHUB_BROWSER_INSTALL=0"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0 or not Path(CHROMIUM).exists():
        return f"apt-get install chromium failed: {done.stderr.strip()[-300:]}"
    return None


def _cjk_fonts() -> None:
    """Chinese glyphs for the screenshots (the pages work without; the pictures would not)."""
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False) \
        if shutil.which("fc-list") else None
    if listed is not None and listed.stdout.strip():
        return
    if os.environ.get("ZONEHUB_BROWSER_INSTALL", "1") != "0" and shutil.which("apt-get") \
            and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "fonts-wqy-microhei"],
                       capture_output=True, timeout=600, check=False)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import playwright  # noqa: F401
        import zxingcpp  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"browser tests need the test extras (playwright, zxing-cpp): {exc}")
    why = _install_chromium()
    if why:
        pytest.skip(why)
    _cjk_fonts()
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=chromium_path, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the pictures go: docs/screenshots/ with ZONEHUB_SCREENSHOTS=1 (to refresh the
    README's), else a scratch folder, so a test run leaves the checkout as it found it."""
    if os.environ.get("ZONEHUB_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path
