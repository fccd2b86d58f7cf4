"""Headless Chromium for the browser tests (imported by name: pytest puts tests/ on sys.path).

Debian's chromium and chromedriver, driven by Selenium, with no network: every host name fails to resolve
(loopback addresses still work), so a page that needs a CDN shows it. Tests skip, saying why, where they
are missing (`.ci/run` installs them). Screenshots go to the test's tmp folder, and to
$RFSWEEP_SCREENSHOT_DIR when set (how docs/screenshots/ is made).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
needs_chromium = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason=f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})",
)


@contextmanager
def offline_chromium(tmp_path: Path, size: str = "1600,1300") -> Iterator[Any]:
    """A headless Chromium that can reach loopback addresses only."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
        f"--window-size={size}",
        # Nothing may come from a network: every host name fails to resolve (loopback IPs still work).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the page asked for since the last call (Chromium's performance log)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def save_screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if os.environ.get("RFSWEEP_SCREENSHOT_DIR"):
        Path(os.environ["RFSWEEP_SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["RFSWEEP_SCREENSHOT_DIR"]) / name)
    return path


def ink(png: Path, box: tuple[int, int, int, int] | None = None) -> float:
    """The fraction of pixels that are not near-white (a blank or unrendered page is ~0)."""
    import numpy as np
    from PIL import Image

    image = Image.open(png).convert("L")
    if box is not None:
        image = image.crop(box)
    return float((np.asarray(image) < 235).mean())
