"""Headless Chromium from the OS packages, driven by Selenium, for the report's browser tests.

Chromium is installed by `make setup` (apt-get, when root or with sudo). Without it a test is
skipped with the reason, except under CI (``CI`` set), where it fails. ``HEADLESS_FLAGS`` are shared
with ``benchmarks/report_explorer.py`` (its screenshots).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

#: Chromium flags of a headless, offline, quiet browser (window size and profile folder are added per use)
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)


def need_browser() -> None:
    """Skip (fail under CI) when selenium or chromium is missing."""
    import pytest

    why = None
    try:
        import selenium  # noqa: F401
    except ImportError:
        why = "selenium is not installed (it is in the dev extra: pip install -e '.[dev]')"
    if why is None and (CHROMIUM is None or DRIVER is None):
        why = (
            "chromium and chromedriver are not installed (Debian packages chromium, chromium-driver; `make setup` "
            "installs them with apt-get when it runs as root or with sudo)"
        )
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run under CI: {why}")
        pytest.skip(why)


@contextlib.contextmanager
def chromium(page: Path, profile: Path) -> Iterator[Any]:
    """A headless Chromium (browser console logged) that has opened the file ``page``."""
    need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (*HEADLESS_FLAGS, "--window-size=1300,900", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get(page.as_uri())
        yield driver
    finally:
        driver.quit()


def table_rows(driver: Any) -> list[list[str]]:
    """The explorer table's shown rows as cell texts (one script call, not one WebDriver round trip per cell)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#mmx-table tbody tr'))"
        ".map(function (tr) { return Array.from(tr.cells).map(function (td) { return td.textContent; }); });"
    )
