"""/docs and /redoc work with no network: Swagger UI, ReDoc and the favicon come from the server itself
(the fastapi-offline package), and a browser that can resolve no host name renders both."""

from __future__ import annotations

import re
import time

import pytest
from api_helpers import ApiServer
from browser_helpers import needs_chromium, offline_chromium, requested_urls, save_screenshot

REDOC_FOOTER_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("docs"), {"RFSWEEP_MAX_RUNNING_SWEEPS": "0"}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_asset_from_the_server(server, page):
    with server.client(token=None) as client:
        html = client.get(page)
        assert html.status_code == 200 and "rfsweep API" in html.text
        assets = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']|url:\s*["']([^"']+)["']""", html.text)
        urls = [a or b for a, b in assets]
        assert urls, html.text
        assert not [u for u in urls if "//" in u], f"an asset from elsewhere: {urls}"
        for url in urls:
            answer = client.get(url)
            assert answer.status_code == 200 and len(answer.content) > 100, url
        assert {u.rsplit("/", 1)[-1] for u in urls} >= {"favicon.png", "openapi.json"}


@needs_chromium
@pytest.mark.slow
def test_docs_render_in_a_browser_with_no_network(server, tmp_path):
    """Swagger UI draws every endpoint (pause and resume among them) and ReDoc its menu, every request going
    to the server: the picture in docs/screenshots/api_docs_offline.png."""
    from selenium.webdriver.common.by import By

    with offline_chromium(tmp_path, size="1400,1500") as browser:
        browser.get(f"{server.url}/docs")
        deadline = time.monotonic() + 60
        while len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) < 8 and time.monotonic() < deadline:
            time.sleep(0.25)
        paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
        assert {"/sweeps/{sweep_id}/pause", "/sweeps/{sweep_id}/resume", "/sweeps/{sweep_id}/best"} <= paths, paths
        time.sleep(0.5)
        save_screenshot(browser, tmp_path, "api_docs_offline.png")
        browser.get(f"{server.url}/redoc")
        deadline = time.monotonic() + 60
        while "Pause" not in browser.find_element(By.TAG_NAME, "body").text and time.monotonic() < deadline:
            time.sleep(0.25)
        assert "Resume a paused sweep" in browser.find_element(By.TAG_NAME, "body").text
        urls = [u for u in requested_urls(browser) if u.startswith(("http:", "https:", "ws:", "wss:"))]
        # ReDoc's bundle always asks for its vendor's logo in the menu's footer ("API docs by Redocly") and
        # hides the image when that fails, as it does here; everything the pages need came from the server.
        elsewhere = [u for u in urls if not u.startswith(server.url) and u != REDOC_FOOTER_LOGO]
        assert urls and not elsewhere, elsewhere  # (chrome:// is the browser's own)
