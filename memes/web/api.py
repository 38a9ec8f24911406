"""The JSON API under /api/: the shapes the CLI's `--json` gives, over the same use cases."""
from __future__ import annotations

import mimetypes

from pathlib import PurePath
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from memes.shapes import meme_json, results_json
from search.query import SORTS, Filters
from memes.web.gallery import Gallery
from memes import desktop
from memes.web.guard import MAX_UPLOAD_BYTES, TOO_BIG, from_this_machine

PER_PAGE = 48
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 500
MAX_K = 200


async def read_upload(upload: UploadFile) -> bytes:
    """The uploaded bytes (the guard has already stopped a body over the cap as it arrived)."""
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(413, TOO_BIG)
    if not data:
        raise HTTPException(422, "the upload is empty")
    return data


def add_upload(gallery: Gallery, data: bytes, name: str) -> tuple[str, bool]:
    """Keep and index an upload (run off the event loop: it can take seconds)."""
    with gallery.writing() as a:
        return a.add_image(data, name)


async def similar_upload_results(gallery: Gallery, data: bytes, k: int):
    """Search by an uploaded picture: the decoding and looking up (seconds for a large one) off
    the event loop and beside other reads; only the search itself takes the read lock."""
    query = await run_in_threadpool(gallery.unlocked(lambda a: a.query_picture(data)))
    return await run_in_threadpool(gallery.read(lambda a: a.similar_to_picture(query, k)))


def attachment(name: str) -> str:
    """A Content-Disposition that saves the file under `name` (RFC 6266: an ASCII fallback and
    the UTF-8 name)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "meme"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


class SearchFilters:
    """The search filters as query parameters (the CLI's --after, --before, --in, --has,
    --annotated, --sort)."""

    def __init__(self, after: str = Query("", max_length=40, description="first seen on or after (YYYY-MM-DD)"),
                 before: str = Query("", max_length=40, description="first seen before (YYYY-MM-DD)"),
                 folder: str = Query("", alias="in", max_length=4096, description="with a file under this folder"),
                 has: str = Query("", pattern="^(|text|no-text)$", description="text or no-text (read by OCR)"),
                 annotated: bool = Query(False, description="only memes a vision model described"),
                 sort: str = Query("relevance", pattern=f"^({'|'.join(SORTS)})$")):
        self.after, self.before, self.folder, self.has, self.annotated, self.sort = \
            after, before, folder, has, annotated, sort

    def chosen(self) -> tuple[Filters, str]:
        """(filters, sort); raises MemesError for a date that is none."""
        return Filters.given(self.after, self.before, self.folder, self.has, self.annotated), self.sort

    def __bool__(self) -> bool:
        return bool(self.after or self.before or self.folder or self.has or self.annotated or self.sort != "relevance")


def api_routes(gallery: Gallery) -> APIRouter:
    api = APIRouter(prefix="/api")

    @api.get("/search", tags=["search"], summary="Memes matching a query (words, \"phrases\", -excluded), best first")
    def search(q: str = Query(..., min_length=1, max_length=500), k: int = Query(20, ge=1, le=MAX_K),
               filters: SearchFilters = Depends()):
        with gallery.reading() as a:  # an empty query is a MemesError of the query language: 422
            answer = a.search(q.strip(), k, *filters.chosen())
        return results_json(q.strip(), answer.results, answer.notices, answer.closest)

    @api.get("/similar/{meme_id}", tags=["search"], summary="Memes that look like one in the archive")
    def similar(meme_id: str, k: int = Query(20, ge=1, le=MAX_K)):
        with gallery.reading() as a:
            answer = a.similar_to_meme(meme_id, k)
        return results_json(meme_id, answer.results, answer.notices, itself=answer.itself)

    @api.post("/similar", tags=["search"], summary="Memes that look like an uploaded image (not stored)")
    async def similar_upload(image: UploadFile = File(...), k: int = Form(20, ge=1, le=MAX_K)):
        answer = await similar_upload_results(gallery, await read_upload(image), k)
        return results_json(image.filename or "upload", answer.results, answer.notices, itself=answer.itself)

    @api.get("/memes", tags=["memes"], summary="Memes, most recently first seen first")
    def memes(page: int = Query(1, ge=1, le=MAX_PAGE), per_page: int = Query(PER_PAGE, ge=1, le=MAX_PER_PAGE)):
        with gallery.reading() as a:
            total, found = a.recent(page, per_page)
        return {"total": total, "page": page, "per_page": per_page, "memes": [meme_json(m) for m in found]}

    @api.post("/memes", tags=["memes"], summary="Add an uploaded image to the archive and index it")
    async def add(image: UploadFile = File(...)):
        data = await read_upload(image)
        meme_id, new = await run_in_threadpool(add_upload, gallery, data, image.filename or "upload")
        with gallery.reading() as a:
            return {"id": meme_id, "new": new, "meme": meme_json(a.record(meme_id))}

    @api.get("/memes/{meme_id}", tags=["memes"], summary="One meme: annotations, OCR text, sightings")
    def meme(meme_id: str):
        with gallery.reading() as a:
            return meme_json(a.record(meme_id))

    @api.post("/memes/{meme_id}/split", tags=["memes"],
              summary="Make one of a meme's files (an altered copy joined to it) a meme of its own")
    def split(meme_id: str, path: str = Form(...)):
        with gallery.writing() as a:
            return meme_json(a.split(meme_id, path))

    @api.post("/memes/{meme_id}/join", tags=["memes"], summary="Make another meme (its files) sightings of this one")
    def join(meme_id: str, other: str = Form(...)):
        with gallery.writing() as a:
            return meme_json(a.join(meme_id, other))

    @api.get("/memes/{meme_id}/image", tags=["memes"], summary="The meme's image file, as it is on disk")
    def image(meme_id: str, download: bool = Query(False, description="as a download, under the file's own name")):
        with gallery.reading() as a:
            found = a.image_file(meme_id)
        if found is None:
            raise HTTPException(404, f"none of the files of meme {meme_id} still holds its image")
        path, data = found
        media = mimetypes.guess_type(path)[0] or "application/octet-stream"
        headers = {"Cache-Control": "private, max-age=3600"}
        if download:
            headers["Content-Disposition"] = attachment(PurePath(path).name)
        return Response(data, media_type=media if media.startswith("image/") else "application/octet-stream",
                        headers=headers)

    @api.post("/memes/{meme_id}/reveal", tags=["memes"],
              summary="Show the meme's file in its folder, on the desktop of the machine the gallery runs on")
    def reveal(request: Request, meme_id: str):
        if not from_this_machine(request):
            raise HTTPException(403, "only a browser on the machine the gallery runs on can open its folders")
        with gallery.reading() as a:
            path, _ = a.image_of_meme(meme_id)
            desktop.show_in_folder(path)
        return {"shown": path}

    @api.get("/memes/{meme_id}/thumbnail", tags=["memes"], summary="A small WebP of the meme (cached)")
    def thumbnail(meme_id: str):
        with gallery.reading() as a:
            path = a.thumbnail(meme_id)
        if path is None:
            raise HTTPException(404, f"meme {meme_id} has no image to show")
        return FileResponse(path, media_type="image/webp", headers={"Cache-Control": "private, max-age=86400"})

    @api.get("/groups", tags=["memes"], summary="Memes seen more than once: copies and look-alike reposts")
    def groups():
        with gallery.reading() as a:
            found = a.groups()
        return {"groups": [{"memes": [m.id for m in g.memes],
                            "earliest": {"meme": g.earliest[0].id, "path": g.earliest[1].path,
                                         "seen_at": g.earliest[1].seen_at.isoformat()} if g.earliest else None}
                           for g in found]}

    @api.get("/stats", tags=["archive"], summary="What the archive holds (as `memes stats --json`)")
    def stats():
        with gallery.reading() as a:
            return a.stats()

    return api
