"""The links route: a URL for one job's events or one of its files that works without the
Authorization header for VIDEOEDIT_HTTP_LINK_TTL_S seconds (signing.py), for EventSource and
<video>, which cannot send headers. Without a token set, the plain URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .artifacts import ARTIFACTS
from .body import JsonBody
from .convert import BadRequest
from .deps import SettingsDep, Text, api_router
from .signing import signed_query

router = api_router()

TARGETS = ("events", *ARTIFACTS)


@router.post(
    "/links/{job_id}", summary='A signed, short-lived URL: {"for": "events" | "output" | "mask" | "log" | "input"}'
)
async def link(job_id: Text, body: JsonBody, settings: SettingsDep) -> dict[str, Any]:
    target = body.get("for") if isinstance(body, dict) else None
    if target not in TARGETS:
        raise BadRequest(f"for: {target!r} is not one of {', '.join(TARGETS)}")
    path = f"/api/video/events/{job_id}" if target == "events" else f"/api/video/artifact/{job_id}/{target}"
    url = "/api/video/" + quote(path.removeprefix("/api/video/"))
    if not settings.token:
        return {"url": url, "expires_at": None}
    query, expires = signed_query(settings.token, path, settings.link_ttl_s)
    return {"url": f"{url}?{query}", "expires_at": expires}
