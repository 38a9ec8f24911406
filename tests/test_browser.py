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
        desktop = browser.new_context(viewport={"width": 1280, "height": 900},
                                      permissions=["clipboard-read", "clipboard-write"])
        page = desktop.new_page()
        page.goto(server + "/")
        page.screenshot(path=str(shots / "gallery-home.png"), full_page=True)
        page.get_by_role("searchbox", name="search").fill("one does not simply")
        page.keyboard.press("Enter")
        card = page.locator("#results .card", has=page.locator('a[title$="/one-does-not-simply.jpg"]'))
        expect(card).to_have_count(1)
        meme_id = card.get_attribute("data-id")
        expect(card.locator("img")).to_have_js_property("complete", True)
        assert card.locator("img").evaluate("img => img.naturalWidth") > 0  # the thumbnail really loads
        page.screenshot(path=str(shots / "gallery-search.png"), full_page=True)
        card.locator("a").first.click()
        expect(page.locator("#full")).to_be_visible()
        expect(page.locator(".sightings")).to_contain_text("one-does-not-simply.jpg")
        page.locator("#copy-image").click()  # the image, as a PNG, on the clipboard
        expect(page.locator("#toast")).to_contain_text("Image copied")
        assert "image/png" in page.evaluate("async () => (await navigator.clipboard.read())[0].types")
        expect(page.locator("#steps")).to_be_visible()  # back to the results, from the search before
        page.screenshot(path=str(shots / "gallery-meme.png"), full_page=True)
        page.keyboard.press("Escape")
        expect(page.locator("#results .card").first).to_be_visible()
        page.goto(server + "/meme/" + meme_id)
        page.get_by_role("link", name="More like this").click()
        repost = page.locator("#results .card").first
        expect(repost.locator("a").first).to_have_attribute("title", re.compile(r"/one-does-not-simply-small\.jpg$"))
        page.screenshot(path=str(shots / "gallery-more-like-this.png"), full_page=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        small = phone.new_page()
        for path in ("/", "/?q=one+does+not+simply", "/meme/" + meme_id, "/browse", "/groups"):
            small.goto(server + path)
            assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
            assert small.locator("header").evaluate("h => h.getBoundingClientRect().height") < 60, path
        expect(small.locator(".paste-hint")).to_be_hidden()
        small.goto(server + "/")
        small.screenshot(path=str(shots / "gallery-home-phone.png"), full_page=True)
        browser.close()
    assert (shots / "gallery-search.png").stat().st_size > 10_000
    print(f"screenshots: {shots / 'gallery-search.png'} {shots / 'gallery-more-like-this.png'}")


EVIL_PAGE = """<!doctype html><title>evil</title><p id=state>working</p>
<form id=f action="GALLERY/search/image" method=post enctype="multipart/form-data" target=sink>
<input type=file name=image id=file><input type=hidden name=add value=true></form>
<iframe name=sink id=sink></iframe>
<script>
(async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 48;
  const ctx = canvas.getContext("2d"); ctx.fillStyle = "#c01020"; ctx.fillRect(0, 0, 64, 48);
  const png = await new Promise((done) => canvas.toBlob(done, "image/png"));
  const said = [];
  for (const path of ["/api/memes", "/search/image"]) {
    const form = new FormData(); form.append("image", png, "evil.png"); form.append("add", "true");
    try { await fetch("GALLERY" + path, {method: "POST", body: form, mode: "no-cors", credentials: "include"});
          said.push(path + " sent"); } catch (e) { said.push(path + " " + e); }
  }
  const files = new DataTransfer(); files.items.add(new File([png], "evil.png", {type: "image/png"}));
  document.getElementById("file").files = files.files;
  document.getElementById("sink").addEventListener("load", () => {
    document.getElementById("state").textContent = "done: " + said.join(", ");
  });
  document.getElementById("f").submit();
})();
</script>"""


def test_a_page_on_another_origin_cannot_add_to_the_archive(server, tmp_path):
    """The attack that worked before: a page served from another port of this machine posts an
    image to the gallery (a no-cors fetch and a plain form). Nothing is added; the gallery's own
    page still adds one."""
    import http.server
    import json
    import threading

    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    site = tmp_path / "evil"
    site.mkdir()
    (site / "index.html").write_text(EVIL_PAGE.replace("GALLERY", server))
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(site), **kw)  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()

    def memes() -> int:
        return json.load(urllib.request.urlopen(server + "/api/stats", timeout=30))["memes"]

    before = memes()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/index.html")
            expect(page.locator("#state")).to_contain_text("done:")
            assert memes() == before  # neither the fetches nor the form got in

            own = browser.new_page()  # the gallery's own form, with its token, does
            own.goto(server + "/")
            own.locator("#image-file").set_input_files(
                files=[{"name": "red.png", "mimeType": "image/png", "buffer": _red_png()}])
            own.locator("input[name=add]").check()
            own.get_by_role("button", name="Find similar").click()
            expect(own.locator(".notice", has_text="Added to the archive")).to_be_visible()
            browser.close()
    finally:
        evil.shutdown()
    assert memes() == before + 1


def _red_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (192, 16, 32)).save(out, "PNG")
    return out.getvalue()
