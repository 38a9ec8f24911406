"""`memes serve`: a local web gallery and JSON API over the same core the command line uses.

Pages are rendered on the server (Jinja2, autoescaped) with a little JavaScript for pasting an
image; the API under /api/ gives the shapes the CLI's `--json` gives. Safety: images are served
by meme id only (the path comes from the catalog, never from the request); uploads are capped
and go through the archive's safe image loader; with a token set, every page and API call needs
it (header `Authorization: Bearer T`, or `?token=T` once, which sets a cookie).
"""
from __future__ import annotations

import hmac
import ipaddress
import mimetypes
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from archive.errors import ArchiveLocked, MemeNotFound, MemesError
from memes.app import Archive
from memes.shapes import meme_json, results_json

HERE = Path(__file__).resolve().parent
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
TOO_BIG = f"uploads are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
PER_PAGE = 48
TOKEN_COOKIE = "memes_token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Gallery:
    """The archive as the web app uses it: one request at a time touches the core (the catalog
    connection and the models are shared), and every error becomes a status and a message."""

    def __init__(self, archive: Archive, token: str | None):
        self.archive = archive
        self.token = token or None
        self._lock = threading.Lock()

    @contextmanager
    def using(self) -> Iterator[Archive]:
        with self._lock:
            try:
                yield self.archive
            except MemeNotFound as exc:
                raise HTTPException(404, str(exc)) from None
            except ArchiveLocked as exc:
                raise HTTPException(409, str(exc)) from None
            except MemesError as exc:
                raise HTTPException(422, str(exc)) from None

    def allowed(self, request: Request) -> bool:
        if self.token is None:
            return True
        offered = request.headers.get("authorization", "").removeprefix("Bearer ").strip() \
            or request.cookies.get(TOKEN_COOKIE) or request.query_params.get("token") or ""
        return hmac.compare_digest(offered.encode(), self.token.encode())


async def read_upload(request: Request, upload: UploadFile) -> bytes:
    """The uploaded bytes, refusing more than MAX_UPLOAD_BYTES (a request that says it is bigger
    is refused before its body is read, by the middleware)."""
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, TOO_BIG)
    if not data:
        raise HTTPException(422, "the upload is empty")
    return data


def create_app(archive: Archive, token: str | None = None) -> FastAPI:
    gallery = Gallery(archive, token)
    app = FastAPI(title="memes", summary="A searchable meme archive", version="1",
                  docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.gallery = gallery

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:  # before parsing a byte
            return JSONResponse({"error": TOO_BIG}, status_code=413) if request.url.path.startswith("/api/") \
                else HTMLResponse(f"<!doctype html><title>memes</title><p>{TOO_BIG}</p>", status_code=413)
        if request.url.path.startswith("/static/") or gallery.allowed(request):
            response = await call_next(request)
            if gallery.token and request.query_params.get("token") and gallery.allowed(request):
                response.set_cookie(TOKEN_COOKIE, gallery.token, httponly=True, samesite="strict")
            return response
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "a valid token is needed"}, status_code=401)
        return HTMLResponse("<!doctype html><title>memes</title><p>A valid token is needed: open this "
                            "page with <code>?token=...</code>.</p>", status_code=401)

    @app.exception_handler(StarletteHTTPException)
    async def errors(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "message": exc.detail},
                                          status_code=exc.status_code)

    def page(request: Request, name: str, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context)

    # --- the JSON API ---------------------------------------------------------------------

    @app.get("/api/search", tags=["search"], summary="Memes matching a text query, best first")
    def api_search(q: str = Query(..., min_length=1, max_length=500), k: int = Query(20, ge=1, le=200)):
        with gallery.using() as a:
            results, notices = a.search(q, k)
        return results_json(q, results, notices)

    @app.get("/api/similar/{meme_id}", tags=["search"], summary="Memes that look like one in the archive")
    def api_similar(meme_id: str, k: int = Query(20, ge=1, le=200)):
        with gallery.using() as a:
            results, notices = a.similar_to_meme(meme_id, k)
        return results_json(meme_id, results, notices)

    @app.post("/api/similar", tags=["search"], summary="Memes that look like an uploaded image (not stored)")
    async def api_similar_upload(request: Request, image: UploadFile = File(...), k: int = Form(20)):
        data = await read_upload(request, image)
        with gallery.using() as a:
            results, notices = a.similar_to_bytes(data, max(1, min(k, 200)))
        return results_json(image.filename or "upload", results, notices)

    @app.get("/api/memes", tags=["memes"], summary="Memes, most recently first seen first")
    def api_memes(page: int = Query(1, ge=1), per_page: int = Query(PER_PAGE, ge=1, le=500)):
        with gallery.using() as a:
            total, memes = a.recent(page, per_page)
        return {"total": total, "page": page, "per_page": per_page, "memes": [meme_json(m) for m in memes]}

    @app.post("/api/memes", tags=["memes"], summary="Add an uploaded image to the archive and index it")
    async def api_add(request: Request, image: UploadFile = File(...)):
        data = await read_upload(request, image)
        with gallery.using() as a:
            with a.lock():
                meme_id, new = a.add_image(data, image.filename or "upload")
            return {"id": meme_id, "new": new, "meme": meme_json(a.catalog.require(meme_id))}

    @app.get("/api/memes/{meme_id}", tags=["memes"], summary="One meme: annotations, OCR text, sightings")
    def api_meme(meme_id: str):
        with gallery.using() as a:
            return meme_json(a.catalog.require(meme_id))

    @app.post("/api/memes/{meme_id}/split", tags=["memes"],
              summary="Make one of a meme's files (an altered copy joined to it) a meme of its own")
    def api_split(meme_id: str, path: str = Form(...)):
        with gallery.using() as a:
            with a.lock():
                return meme_json(a.split(meme_id, path))

    @app.post("/api/memes/{meme_id}/join", tags=["memes"],
              summary="Make another meme (its files) sightings of this one")
    def api_join(meme_id: str, other: str = Form(...)):
        with gallery.using() as a:
            with a.lock():
                return meme_json(a.join(meme_id, other))

    @app.get("/api/memes/{meme_id}/image", tags=["memes"], summary="The meme's image file")
    def api_image(meme_id: str):
        with gallery.using() as a:
            found = a.image_file(meme_id)
        if found is None:
            raise HTTPException(404, f"none of the files of meme {meme_id} still holds its image")
        path, data = found
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(data, media_type=media if media.startswith("image/") else "application/octet-stream",
                        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})

    @app.get("/api/memes/{meme_id}/thumbnail", tags=["memes"], summary="A small WebP of the meme (cached)")
    def api_thumbnail(meme_id: str):
        with gallery.using() as a:
            path = a.thumbnail(meme_id)
        if path is None:
            raise HTTPException(404, f"meme {meme_id} has no image to show")
        return FileResponse(path, media_type="image/webp", headers={"Cache-Control": "private, max-age=86400"})

    @app.get("/api/groups", tags=["memes"], summary="Memes seen more than once: copies and look-alike reposts")
    def api_groups():
        with gallery.using() as a:
            groups = a.groups()
        return {"groups": [{"memes": [m.id for m in g.memes],
                            "earliest": {"meme": g.earliest[0].id, "path": g.earliest[1].path,
                                         "seen_at": g.earliest[1].seen_at.isoformat()} if g.earliest else None}
                           for g in groups]}

    @app.get("/api/stats", tags=["archive"], summary="What the archive holds (as `memes stats --json`)")
    def api_stats():
        with gallery.using() as a:
            return a.stats()

    # --- pages ----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, q: str = "", k: int = Query(24, ge=1, le=200)):
        results, notices = [], []
        if q.strip():
            with gallery.using() as a:
                results, notices = a.search(q, k)
        return page(request, "search.html", q=q, results=results, notices=notices)

    @app.post("/search/image", response_class=HTMLResponse, include_in_schema=False)
    async def search_by_image(request: Request, image: UploadFile = File(...), add: bool = Form(False)):
        data = await read_upload(request, image)
        added = None
        with gallery.using() as a:
            if add:
                with a.lock():
                    added, _ = a.add_image(data, image.filename or "upload")
            results, notices = a.similar_to_bytes(data, 24)
        return page(request, "search.html", q="", results=results, notices=notices,
                    by_image=image.filename or "pasted image", added=added)

    @app.get("/meme/{meme_id}", response_class=HTMLResponse, include_in_schema=False)
    def meme_page(request: Request, meme_id: str):
        with gallery.using() as a:
            meme = a.catalog.require(meme_id)
        earliest = min((s for s in meme.sightings if s.seen_at), key=lambda s: s.seen_at, default=None)
        return page(request, "meme.html", meme=meme, earliest=earliest)

    @app.post("/meme/{meme_id}/split", include_in_schema=False)
    def split_page(meme_id: str, path: str = Form(...)):
        with gallery.using() as a:
            with a.lock():
                new = a.split(meme_id, path)
        return RedirectResponse(f"/meme/{new.id}", status_code=303)

    @app.post("/meme/{meme_id}/join", include_in_schema=False)
    def join_page(meme_id: str, other: str = Form(...)):
        with gallery.using() as a:
            with a.lock():
                meme = a.join(meme_id, other)
        return RedirectResponse(f"/meme/{meme.id}", status_code=303)

    @app.get("/similar/{meme_id}", response_class=HTMLResponse, include_in_schema=False)
    def similar_page(request: Request, meme_id: str):
        with gallery.using() as a:
            meme = a.catalog.require(meme_id)
            results, notices = a.similar_to_meme(meme.id, 24)
        return page(request, "search.html", q="", results=results, notices=notices, like=meme)

    @app.get("/browse", response_class=HTMLResponse, include_in_schema=False)
    def browse(request: Request, page_number: int = Query(1, ge=1, alias="page")):
        with gallery.using() as a:
            total, memes = a.recent(page_number, PER_PAGE)
        pages = max(1, -(-total // PER_PAGE))
        return page(request, "browse.html", memes=memes, total=total, page=page_number, pages=pages)

    @app.get("/groups", response_class=HTMLResponse, include_in_schema=False)
    def groups(request: Request):
        with gallery.using() as a:
            found = a.groups()
        return page(request, "groups.html", groups=found)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return RedirectResponse("/static/favicon.svg")

    return app
