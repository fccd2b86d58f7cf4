"""Headless Chromium for the browser tests (imported by name: pytest puts tests/ on sys.path).

Debian's chromium and chromedriver, driven by Selenium, with no network: every host name fails to resolve
(loopback addresses still work), so a page that needs a CDN shows it. Where the browser (or selenium) is
missing, the browser tests skip saying why — except under CI=true, where they fail saying why: CI never goes
green on browser tests that did not run (`.ci/run` installs chromium and chromium-driver where it can).
$RFSWEEP_TEST_CHROMIUM and $RFSWEEP_TEST_CHROMEDRIVER name other binaries (a path that does not exist hides
the browser). Screenshots go to the test's tmp folder, and to $RFSWEEP_SCREENSHOT_DIR when set (how
docs/screenshots/ is made).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("RFSWEEP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RFSWEEP_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


def in_ci() -> bool:
    """CI=true (what CI services and `.ci/run`'s caller set): a browser test that cannot run fails."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return (
            f"needs Debian's chromium and chromium-driver (not found: {', '.join(missing)}; "
            "apt-get install chromium chromium-driver)"
        )
    if importlib.util.find_spec("selenium") is None:
        return "needs selenium (the test extra: pip install -e '.[test]')"
    return None


def require_browser() -> None:
    """Skip the calling test saying why the browser is missing; under CI=true fail it instead."""
    reason = browser_missing()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason} — under CI=true a missing browser fails the browser tests", pytrace=False)
    pytest.skip(reason)


# The mark the browser tests carry: outside CI a missing browser skips them at once (with the reason); under
# CI=true it does not skip, and `offline_chromium` fails them with the reason.
needs_chromium = pytest.mark.skipif(
    browser_missing() is not None and not in_ci(), reason=browser_missing() or "the browser is there"
)


@contextmanager
def offline_chromium(tmp_path: Path, size: str = "1600,1300") -> Iterator[Any]:
    """A headless Chromium that can reach loopback addresses only."""
    require_browser()
    from selenium import webdriver
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
