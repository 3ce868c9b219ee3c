"""The web page: `/` and `/jobs/{job_id}` (a job's own address: the page opens that job) answer
static/index.html; its script and style sheet are served from /static, which create_app mounts.
/docs is Swagger UI from files this gateway serves itself (vendor/, installed by `make
web-setup`; no CDN, so it works offline). All of them go out with a Content-Security-Policy
(guards.py) that allows only scripts from this origin, none inline: the pages have none.
/favicon.ico, so browsers do not log a 404. /healthz, for probes."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
SWAGGER_UI = Path(__file__).parent / "vendor" / "node_modules" / "swagger-ui-dist"
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js")
NO_SWAGGER_UI = """<!doctype html><html lang="en"><meta charset="utf-8"><title>videoedit API</title>
<p>Swagger UI is not installed on this server: run <code>make web-setup</code> (npm). The API's
description is at <a href="/openapi.json">/openapi.json</a>; README.md lists the routes.</p></html>"""

router = APIRouter()


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/jobs/{job_id}", include_in_schema=False)
async def job_page(job_id: str) -> FileResponse:
    """The same page; its script reads the job id from the address (any id: an unknown one shows
    the API's "no job" there)."""
    return FileResponse(STATIC / "index.html")


@router.get("/docs", include_in_schema=False)
async def docs() -> Response:
    if not all((SWAGGER_UI / name).is_file() for name in SWAGGER_FILES):
        return HTMLResponse(NO_SWAGGER_UI)
    return FileResponse(STATIC / "docs.html")


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """The gateway answers (no orchestrator call); exempt from the Host check (guards.py), as a
    probe comes to the pod's address."""
    return {"status": "ok"}


def swagger_files() -> StaticFiles:
    """Swagger UI's files, for create_app to mount at /vendor/swagger-ui (an empty folder's worth
    when they are not installed: /docs then says so)."""
    return StaticFiles(directory=SWAGGER_UI, check_dir=False)
