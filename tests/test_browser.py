"""The gallery in a real browser: Debian's chromium, headless, driven by Playwright, against
`memes serve` started as a user starts it. Playwright never downloads a browser here."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("MEMES_TEST_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(indexed):
    archive_dir, _ = indexed
    port = _free_port()
    exe = Path(sys.executable).with_name("memes")
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"memes serve exited: {proc.communicate()[1]}")
        try:
            urllib.request.urlopen(url + "/api/stats", timeout=5)
            break
        except OSError:
            time.sleep(0.3)
    yield url
    proc.terminate()
    _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr


def test_search_open_and_find_the_repost_in_a_browser(server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/setup.sh does)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a shared 2-core machine can be slow

    shots = Path(os.environ.get("MEMES_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server + "/")
        page.get_by_role("searchbox", name="search").fill("one does not simply")
        page.keyboard.press("Enter")
        card = page.locator("#results .card", has=page.locator('a[title$="/one-does-not-simply.jpg"]'))
        expect(card).to_have_count(1)
        expect(card.locator("img")).to_have_js_property("complete", True)
        assert card.locator("img").evaluate("img => img.naturalWidth") > 0  # the thumbnail really loads
        page.screenshot(path=str(shots / "gallery-search.png"), full_page=True)
        card.locator("a").first.click()
        expect(page.locator("#full")).to_be_visible()
        expect(page.locator(".sightings")).to_contain_text("one-does-not-simply.jpg")
        page.get_by_role("link", name="More like this").click()
        repost = page.locator("#results .card").first
        expect(repost.locator("a")).to_have_attribute("title", re.compile(r"/one-does-not-simply-small\.jpg$"))
        page.screenshot(path=str(shots / "gallery-more-like-this.png"), full_page=True)
        browser.close()
    assert (shots / "gallery-search.png").stat().st_size > 10_000
    print(f"screenshots: {shots / 'gallery-search.png'} {shots / 'gallery-more-like-this.png'}")
