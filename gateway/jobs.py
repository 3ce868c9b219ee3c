"""The job routes: start a job (the original worker's REST example), its status, its status changes as
Server-Sent Events, cancel it, and the list of jobs. Each is one VideoEditService call. The POSTs
take only application/json (body.py), cancel too (its body, if any, is ignored)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
from fastapi.responses import Response, StreamingResponse

from videoedit.v1 import video_edit_pb2 as pb

from .body import JsonBody
from .convert import job_status_from_word, request_from_json, status_to_dict
from .deps import OrchestratorDep, PageSize, Text, api_router
from .errors import error_response

router = api_router()


@router.post("/edit", summary="Start an edit job (the original worker's REST example)")
async def start_edit(body: JsonBody, orchestrator: OrchestratorDep) -> dict[str, Any]:
    return status_to_dict(await orchestrator.call("StartEdit", request_from_json(body)))


@router.get("/status/{job_id}", summary="A job's status (the original worker's status.to_dict())")
async def get_status(job_id: Text, orchestrator: OrchestratorDep) -> dict[str, Any]:
    return status_to_dict(await orchestrator.call("GetStatus", pb.GetStatusRequest(job_id=job_id)))


@router.get("/events/{job_id}", summary="Server-Sent Events: each status change until the job ends")
async def events(job_id: Text, orchestrator: OrchestratorDep) -> Response:
    watch = orchestrator.stream("WatchStatus", pb.WatchStatusRequest(job_id=job_id))
    first = await watch.read()  # an unknown job fails here, as a plain HTTP error
    if first is grpc.aio.EOF:
        return error_response(404, "NOT_FOUND", f"no job {job_id!r}")
    return StreamingResponse(
        _event_stream(watch, first), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@router.post("/cancel/{job_id}", summary="Cancel a job")
async def cancel(job_id: Text, _body: JsonBody, orchestrator: OrchestratorDep) -> dict[str, Any]:
    return status_to_dict(await orchestrator.call("CancelEdit", pb.CancelEditRequest(job_id=job_id)))


@router.get("/jobs", summary="Jobs, newest first")
async def jobs(
    orchestrator: OrchestratorDep, status: Text = "", page_size: PageSize = 0, page_token: Text = ""
) -> dict[str, Any]:
    wanted = job_status_from_word(status) if status else pb.JOB_STATUS_UNSPECIFIED
    reply = await orchestrator.call(
        "ListJobs", pb.ListJobsRequest(status=wanted, page_size=page_size, page_token=page_token)
    )
    return {"jobs": [status_to_dict(s) for s in reply.jobs], "next_page_token": reply.next_page_token}


async def _event_stream(watch: Any, first: pb.VideoEditStatus) -> AsyncIterator[str]:
    """`first`, then each status WatchStatus sends, as `data:` events; a failed watch ends with an
    `error` event (the HTTP status went out with the first one)."""
    status = first
    try:
        while status is not grpc.aio.EOF:  # read(), not `async for`: grpc.aio does not mix the two
            yield _event(status)
            status = await watch.read()
    except grpc.RpcError as err:
        yield f"event: error\ndata: {json.dumps({'code': err.code().name, 'message': err.details()})}\n\n"
    finally:
        watch.cancel()


def _event(status: pb.VideoEditStatus) -> str:
    return f"data: {json.dumps(status_to_dict(status))}\n\n"
