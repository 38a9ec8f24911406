"""The gallery's pages: rendered on the server (Jinja2, autoescaped), with a little JavaScript
from /static/ (never inline) for pasting an image. Every form that writes carries the page's
CSRF token (`guard.form_token`)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from archive import readings
from memes.web.api import (MAX_K, MAX_PAGE, PER_PAGE, SearchFilters, add_upload, read_upload,
                           similar_upload_results)
from memes.web.gallery import Gallery
from memes.web.guard import form_token, from_this_machine

RESULTS_SHOWN = 24
MAX_RESULTS = 2000  # the most a search can page through (the engine's deepest candidate list)
RECENT_SHOWN = 12
NAME_SHOWN = 34  # characters of a file name on a card; longer ones lose their middle


def middle(name: str, room: int = NAME_SHOWN) -> str:
    """`name` shortened in the middle to `room` characters, keeping its start and its end (where
    the extension and a number usually are)."""
    if len(name) <= room:
        return name
    tail = (room - 1) // 2
    return f"{name[:room - 1 - tail]}…{name[-tail:]}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def marked(text: str, query: str) -> Markup:
    """`text`, escaped, with the query's words in `<mark>` (`archive.readings.marked`)."""
    return Markup(readings.marked(text, query, "<mark>", "</mark>", lambda piece: str(escape(piece))))


def page_routes(gallery: Gallery, templates: Jinja2Templates) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    templates.env.filters["marked"] = marked
    templates.env.filters["middle"] = middle
    templates.env.globals["plural"] = plural
    checked = [Depends(form_token)]

    def page(request: Request, name: str, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"csrf": request.app.state.csrf,
                                                          "local": from_this_machine(request), **context})

    def shown(a, *lists) -> set[str]:
        """Which memes of the result lists have an image (the others get a placeholder)."""
        return a.with_image([r.id for found in lists for r in found])

    @pages.get("/", response_class=HTMLResponse)
    def home(request: Request, q: str = Query("", max_length=500), k: int = Query(RESULTS_SHOWN, ge=1, le=MAX_K),
             page_number: int = Query(1, ge=1, le=MAX_RESULTS, alias="page"),
             filters: SearchFilters = Depends()):
        """The home page (the archive at a glance) or, with `q`, a page of `k` results."""
        if not q.strip():
            with gallery.reading() as a:
                _, recent = a.recent(1, RECENT_SHOWN)
                summary, examples = a.summary(), a.example_queries()
            return page(request, "search.html", q=q, results=[], blank=bool(q), filters=filters, recent=recent,
                        summary=summary, examples=examples, imaged=set())
        first = (page_number - 1) * k
        with gallery.reading() as a:
            answer = a.search(q.strip(), min(first + k, MAX_RESULTS), *filters.chosen())
            results = answer.results[first:]
            imaged = shown(a, results, answer.closest)
        more = None
        if first + len(results) < min(answer.total or 0, MAX_RESULTS):
            more = str(request.url.include_query_params(page=page_number + 1))
        return page(request, "search.html", q=q, results=results, notices=answer.notices, closest=answer.closest,
                    filters=filters, total=answer.total, first=first, more=more, imaged=imaged)

    @pages.post("/search/image", response_class=HTMLResponse, dependencies=checked)
    async def search_by_image(request: Request, image: UploadFile = File(...), add: bool = Form(False)):
        data = await read_upload(image)
        name = image.filename or "pasted image"
        added = (await run_in_threadpool(add_upload, gallery, data, name))[0] if add else None
        answer = await similar_upload_results(gallery, data, RESULTS_SHOWN)
        imaged = await run_in_threadpool(gallery.read(lambda a: shown(a, answer.results)))
        return page(request, "search.html", q="", results=answer.results, notices=answer.notices, by_image=name,
                    added=added, itself=None if added else answer.itself, imaged=imaged)

    @pages.get("/meme/{meme_id}", response_class=HTMLResponse)
    def meme_page(request: Request, meme_id: str):
        with gallery.reading() as a:
            meme = a.record(meme_id)
        earliest = min((s for s in meme.sightings if s.seen_at), key=lambda s: s.seen_at, default=None)
        return page(request, "meme.html", meme=meme, earliest=earliest)

    @pages.post("/meme/{meme_id}/split", dependencies=checked)
    def split_page(meme_id: str, path: str = Form(...)):
        with gallery.writing() as a:
            new = a.split(meme_id, path)
        return RedirectResponse(f"/meme/{new.id}", status_code=303)

    @pages.post("/meme/{meme_id}/join", dependencies=checked)
    def join_page(meme_id: str, other: str = Form(...)):
        with gallery.writing() as a:
            meme = a.join(meme_id, other)
        return RedirectResponse(f"/meme/{meme.id}", status_code=303)

    @pages.get("/similar/{meme_id}", response_class=HTMLResponse)
    def similar_page(request: Request, meme_id: str):
        with gallery.reading() as a:
            meme = a.record(meme_id)
            answer = a.similar_to_meme(meme.id, RESULTS_SHOWN)
            imaged = shown(a, answer.results)
        return page(request, "search.html", q="", results=answer.results, notices=answer.notices, like=meme,
                    imaged=imaged)

    @pages.get("/browse", response_class=HTMLResponse)
    def browse(request: Request, page_number: int = Query(1, ge=1, le=MAX_PAGE, alias="page")):
        with gallery.reading() as a:
            total, memes = a.recent(page_number, PER_PAGE)
        count = max(1, -(-total // PER_PAGE))
        return page(request, "browse.html", memes=memes, total=total, page=page_number, pages=count)

    @pages.get("/groups", response_class=HTMLResponse)
    def groups(request: Request):
        with gallery.reading() as a:
            found = a.groups()
        return page(request, "groups.html", groups=found)

    @pages.get("/api/docs", response_class=HTMLResponse)
    def api_docs(request: Request):
        """The API described from its OpenAPI schema, with nothing loaded from elsewhere."""
        return page(request, "api.html", schema=request.app.openapi())

    @pages.get("/favicon.ico")
    def favicon():
        return RedirectResponse("/static/favicon.svg")

    return pages
