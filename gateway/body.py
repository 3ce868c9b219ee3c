"""Request bodies against forged requests and oversize ones.

A page on another site can make a browser send, without asking the user and without a CORS
preflight, a POST whose body is `text/plain`, `application/x-www-form-urlencoded` or
`multipart/form-data` (or has no type). So state-changing routes take only `application/json`
(`json_body`), and the upload only a body of some other, explicit type (`check_upload_type`):
anything a no-cors page can send is 415. JSON bodies are read up to the gateway's own limit
(VIDEOEDIT_HTTP_MAX_BODY_KB) and no further: 413.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Request

from .convert import BadRequest
from .deps import SettingsDep
from .errors import ApiError

# What a <form> or a no-cors fetch can send cross-site without a preflight.
SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lowercase ("" when absent)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def check_upload_type(request: Request) -> None:
    given = media_type(request)
    if not given or given in SIMPLE_TYPES:
        raise ApiError(
            415,
            f"Content-Type: {given or '(none)'} is not accepted for an upload; "
            "send the video with its own type (video/mp4, application/octet-stream, ...)",
        )


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON (None when empty): 415 unless it is application/json, 413 past `limit`
    bytes (read in chunks and stopped there, never buffered whole), 400 when it does not parse."""
    if media_type(request) != "application/json":
        raise ApiError(415, f"Content-Type: {media_type(request) or '(none)'} is not accepted; send application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, _too_large(limit))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, _too_large(limit))
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as err:  # bad JSON, bad UTF-8, nested too deep
        raise BadRequest(f"the body is not JSON: {err}") from None


def _too_large(limit: int) -> str:
    return f"the body is over the limit of {limit} bytes (VIDEOEDIT_HTTP_MAX_BODY_KB)"


async def json_body(request: Request, settings: SettingsDep) -> Any:
    return await read_json(request, settings.max_body_bytes)


JsonBody = Annotated[Any, Depends(json_body)]
