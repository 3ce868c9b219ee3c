"""The links route: a URL for one job's events, one of its files or one object's preview that
works without the Authorization header for VIDEOEDIT_HTTP_LINK_TTL_S seconds (signing.py), for
EventSource, <video> and <img>, which cannot send headers. A link acts for the caller's key (the
orchestrator checks that key at every use). Without auth, the plain URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from videoedit.v1.gateway import ADMIN_TOKEN_ID

from .artifacts import ARTIFACTS
from .body import JsonBody
from .convert import BadRequest
from .deps import CredentialDep, SettingsDep, Text, api_router
from .errors import ApiError
from .signing import signed_query

router = api_router()

TARGETS = ("events", *ARTIFACTS, "object")
INT32_MAX = 2**31 - 1


@router.post(
    "/links/{job_id}",
    summary='A signed, short-lived URL: {"for": "events" | "output" | "mask" | "log" | "input" | "objects"}, '
    'or {"for": "object", "object_id": N} (one object\'s preview)',
)
async def link(job_id: Text, body: JsonBody, settings: SettingsDep, credential: CredentialDep) -> dict[str, Any]:
    target = body.get("for") if isinstance(body, dict) else None
    if target not in TARGETS:
        raise BadRequest(f"for: {target!r} is not one of {', '.join(TARGETS)}")
    path = f"/api/video/{_route(job_id, target, body)}"
    url = "/api/video/" + quote(path.removeprefix("/api/video/"))
    if credential.key_id is None:
        return {"url": url, "expires_at": None}
    if not settings.gateway_token and credential.key_id != ADMIN_TOKEN_ID:
        # Only a gateway the orchestrator trusts may act for a key that is not sent along.
        raise ApiError(
            503, "links for API keys need VIDEOEDIT_GATEWAY_TOKEN, the same secret on the gateway and the orchestrator"
        )
    query, expires = signed_query(settings.link_secret, path, credential.key_id, settings.link_ttl_s)
    return {"url": f"{url}?{query}", "expires_at": expires}


def _route(job_id: str, target: str, body: dict[str, Any]) -> str:
    """The path under /api/video that `target` names (an object's preview: the body's object_id)."""
    if target == "events":
        return f"events/{job_id}"
    if target != "object":
        return f"artifact/{job_id}/{target}"
    object_id = body.get("object_id")
    # bool is an int in Python, and true is no object's id
    if isinstance(object_id, bool) or not isinstance(object_id, int) or not 1 <= object_id <= INT32_MAX:
        raise BadRequest(f"object_id: {object_id!r} is not an object's id (a whole number from 1)")
    return f"artifact/{job_id}/object/{object_id}"
