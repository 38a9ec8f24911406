"""`memes serve`: a local web gallery and JSON API over the same core the command line uses.

`api` holds the JSON API (/api/), `pages` the gallery's pages, `gallery` the archive as both use
it (a reader beside a writer, errors as statuses), `guard` what defends it against the other
pages a browser opens (Host allow-list, cross-site writes, body cap, token, security headers).
Images are served by meme id only: the path comes from the catalog, never from the request.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from memes.app import Archive
from memes.web.api import api_routes
from memes.web.gallery import Gallery
from memes.web.guard import Guard, Site, new_csrf_token
from memes.web.pages import page_routes

HERE = Path(__file__).resolve().parent
DEFAULT_SITE = Site.serving("127.0.0.1", 8765)


def create_app(archive: Archive, token: str | None = None, site: Site = DEFAULT_SITE) -> FastAPI:
    """The gallery for `archive`, answering at `site` (see `guard`)."""
    gallery = Gallery(archive)
    app = FastAPI(title="memes", summary="A searchable meme archive", version="1",
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.state.gallery = gallery
    app.state.csrf = new_csrf_token()
    app.add_middleware(Guard, site=site, token=token)

    @app.exception_handler(StarletteHTTPException)
    async def errors(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/") and request.url.path != "/api/docs":
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return templates.TemplateResponse(request, "error.html", {"status": exc.status_code, "message": exc.detail},
                                          status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError):
        said = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors())
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": said, "detail": jsonable_encoder(exc.errors())}, status_code=422)
        return templates.TemplateResponse(request, "error.html", {"status": 422, "message": f"That address asks for "
                                          f"something the gallery cannot show ({said})."}, status_code=422)

    app.include_router(api_routes(gallery))
    app.include_router(page_routes(gallery, templates))
    return app

