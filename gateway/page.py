"""The web page: `/` answers static/index.html; its script and style sheet are served from
/static, which create_app mounts. Both go out with a Content-Security-Policy (guards.py) that
allows only scripts from this origin, none inline: the page has none. /healthz, for probes."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """The gateway answers (no orchestrator call); exempt from the Host check (guards.py), as a
    probe comes to the pod's address."""
    return {"status": "ok"}
