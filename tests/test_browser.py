"""The gallery in a real browser: Debian's chromium, headless, driven by Playwright, against
`memes serve` started as a user starts it. Playwright never downloads a browser here."""
from __future__ import annotations

import json
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


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True,
                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])

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
        browser = _launch(p)
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
        return _get_json(server + "/api/stats")["memes"]

    before = memes()
    try:
        with sync_playwright() as p:
            browser = _launch(p)
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



def test_keys_paging_download_and_every_page_on_both_screens(server, indexed, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (scripts/setup.sh does)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)
    _, samples = indexed
    shots = Path(os.environ.get("MEMES_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = _launch(p)
        desktop = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = desktop.new_page()

        # "/" focuses the search box from anywhere on the page; Enter searches.
        page.goto(server + "/browse")
        page.keyboard.press("/")
        expect(page.locator("#q")).to_be_focused()
        page.keyboard.type("meme")
        page.keyboard.press("Enter")
        expect(page.locator("#count")).to_contain_text("for “meme”")

        # Paging one at a time: scrolling down loads the rest, every result exactly once.
        page.goto(server + "/?q=meme&k=1")
        total = int(re.match(r"(\d+) results?", page.locator("#count").inner_text()).group(1))
        assert total >= 3, "the sample archive should give three pages of results or more"
        first_page = urllib.request.urlopen(server + "/?q=meme&k=1", timeout=30).read().decode()
        assert first_page.count('<li class="card"') == 1  # the rest come as the page scrolls
        _scroll_to_the_end(page)
        ids = page.locator("#results .card").evaluate_all("cards => cards.map(c => c.dataset.id)")
        assert len(ids) == total and len(set(ids)) == total, (total, ids)
        wanted = {r["id"] for r in _get_json(server + f"/api/search?q=meme&k={total}")["results"]}
        assert set(ids) == wanted

        # The arrows move between cards, Enter opens the focused one; on its page ← → step and
        # Escape goes back to the results.
        page.goto(server + "/?q=meme&k=1")
        _scroll_to_the_end(page)
        page.locator("#q").focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#results .card > a").nth(1)).to_be_focused()
        page.keyboard.press("Enter")
        expect(page).to_have_url(server + "/meme/" + ids[1])
        expect(page.locator("#position")).to_have_text(re.compile(r"^2 of \d+$"))
        page.keyboard.press("ArrowLeft")
        expect(page).to_have_url(server + "/meme/" + ids[0])
        page.keyboard.press("ArrowRight")
        expect(page).to_have_url(server + "/meme/" + ids[1])
        page.keyboard.press("ArrowRight")
        expect(page).to_have_url(server + "/meme/" + ids[2])
        page.keyboard.press("Escape")
        expect(page).to_have_url(server + "/?q=meme&k=1")

        # A search by image says it is working, and cannot be sent twice, until the answer comes
        # (the test holds the form back after the gallery's own listener has run).
        page.goto(server + "/")
        page.locator("#image-file").set_input_files(str(samples / "one-does-not-simply.jpg"))
        page.evaluate("document.getElementById('by-image').addEventListener('submit', (e) => e.preventDefault())")
        expect(page.locator("#image-progress")).to_be_hidden()
        page.locator("#by-image button[type=submit]").click()
        expect(page.locator("#image-progress")).to_be_visible()
        expect(page.locator("#by-image button[type=submit]")).to_be_disabled()

        # Download gives the original bytes under the original name.
        one = _get_json(server + "/api/search?q=one+does+not+simply&k=1")["results"][0]
        page.goto(server + "/meme/" + one["id"])
        with page.expect_download() as downloading:
            page.locator("#download").click()
        download = downloading.value
        original = Path(one["path"])
        assert download.suggested_filename == original.name
        assert Path(download.path()).read_bytes() == original.read_bytes()

        # Every page, on the desktop and on a phone: a screenshot each, and no sideways scroll.
        pages = {"home": "/", "search": "/?q=meme", "meme": "/meme/" + one["id"], "browse": "/browse",
                 "reposts": "/groups", "similar": "/similar/" + one["id"]}
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        for screen, context in (("desktop", desktop), ("phone", phone)):
            tab = context.new_page()
            for name, path in pages.items():
                tab.goto(server + path)
                tab.wait_for_load_state("networkidle")
                assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (screen, path)
                tab.screenshot(path=str(shots / f"gallery-{name}-{screen}.png"), full_page=True)
        browser.close()
    for name in pages:
        for screen in ("desktop", "phone"):
            assert (shots / f"gallery-{name}-{screen}.png").stat().st_size > 5_000


def _scroll_to_the_end(page) -> None:
    deadline = time.time() + 60
    while page.locator("#more").count() and time.time() < deadline:
        page.mouse.wheel(0, 5000)
        page.wait_for_timeout(200)
    assert not page.locator("#more").count(), "scrolling down never loaded the last results"


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)
