"""The HTTP gateway (videoedit-web) over the live orchestrator: every route, the original
worker's REST example verbatim, Server-Sent Events to the end, Range requests, files served by
kind, signed links, and gRPC codes as HTTP statuses. (Hostile requests: test_http_hostile.py.)"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from clients.sample_clip import make_sample_clip
from tests.helpers import EVENT_TIMEOUT_S, FAST_JOB, decode

VIDEO = {"Content-Type": "application/octet-stream"}  # an upload's body: any type a form cannot send


@pytest.fixture
def http(web):
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as client:
        yield client


def events(http: httpx.Client, job_id: str) -> list[dict]:
    """Every status the SSE stream sends, until it ends."""
    seen = []
    with http.stream("GET", f"/api/video/events/{job_id}") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[len("data: ") :]))
    return seen


def test_the_legacy_rest_example_verbatim(http, clip, stack):
    """Example 3's JSON: job_id, input_video_path, output_dir, mask_prompt, edit_prompt, params."""
    data = {
        "job_id": "rest_001",
        "input_video_path": str(clip),
        "output_dir": str(stack.output_root / "rest_001"),
        "mask_prompt": "hair",
        "edit_prompt": "make the hair red",
        "params": {"num_inference_steps": 2, "edit_size": 64, "chunk_size": 6, "apply_smoothing": True},
    }
    started = http.post("/api/video/edit", json=data)
    assert started.status_code == 200, started.text
    assert started.json()["job_id"] == "rest_001" and started.json()["status"] == "queued"
    seen = events(http, "rest_001")
    assert seen[-1]["status"] == "finished"
    assert {"editing", "saving"} <= {s["status"] for s in seen}  # watchers see each stage, however short
    status = http.get("/api/video/status/rest_001", params={"output_dir": data["output_dir"]}).json()
    # The original worker's status.to_dict(): the same keys, paths as strings; and what the
    # service adds: the request's prompts and mode, the run's time and its estimate of what is left.
    assert set(status) == {
        "mask_prompt",
        "edit_prompt",
        "mode",
        "elapsed_seconds",
        "eta_seconds",
        "stage_eta_seconds",
        "objects_found",
        "tenant",
        "job_id",
        "status",
        "progress",
        "current_frame",
        "total_frames",
        "message",
        "error",
        "output_video_path",
        "mask_preview_path",
        "logs_path",
        "output_dir",
        "created_at",
        "updated_at",
        "media",
    }
    assert status["status"] == "finished" and status["progress"] == 1.0
    assert status["elapsed_seconds"] > 0 and status["eta_seconds"] is None and status["stage_eta_seconds"] is None
    assert status["objects_found"] is not None  # a video job tracks its objects, as a masks job does
    # What the input held, as the probe found it (the sample clip: 8-bit SD, untagged so BT.601).
    media = status["media"]
    assert (media["bit_depth"], media["matrix"], media["color_range"], media["hdr"]) == (8, "smpte170m", "limited", "")
    assert media["summary"].startswith(f"{media['width']}x{media['height']} BT.601 8-bit, ")
    assert status["output_video_path"] == str(stack.output_root / "rest_001" / "rest_001_output.mp4")
    listed = http.get("/api/video/jobs", params={"status": "finished"}).json()
    assert "rest_001" in [j["job_id"] for j in listed["jobs"]]


def test_upload_then_edit_then_download_with_ranges(http, tmp_path):
    clip = make_sample_clip(tmp_path / "mine.mp4", frames=8, width=160, height=120)
    data = clip.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    missing = http.get(f"/api/video/uploads/{sha}")  # not stored yet: the page then uploads it
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert http.get("/api/video/uploads/not-a-hash").status_code == 400
    uploaded = http.post(
        "/api/video/upload",
        params={"filename": "mine.mp4", "sha256": hashlib.sha256(data).hexdigest()},
        content=data,
        headers=VIDEO,
    )
    assert uploaded.status_code == 200, uploaded.text
    path = uploaded.json()["input_video_path"]
    assert uploaded.json()["size_bytes"] == len(data) and Path(path).read_bytes() == data
    assert http.get(f"/api/video/uploads/{sha}").json() == uploaded.json()  # found: nothing to send again
    http.post(
        "/api/video/edit",
        json={
            "job_id": "rest_upload",
            "input_video_path": path,
            "mask_prompt": "car",
            "edit_prompt": "make it blue",
            "params": {"num_inference_steps": 2, **FAST_JOB["extra"]},
        },
    )
    assert events(http, "rest_upload")[-1]["status"] == "finished"

    whole = http.get("/api/video/artifact/rest_upload/output")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["content-disposition"].startswith("inline;")
    assert whole.headers["accept-ranges"] == "bytes" and int(whole.headers["content-length"]) == len(whole.content)
    (tmp_path / "out.mp4").write_bytes(whole.content)
    assert len(decode(tmp_path / "out.mp4")) == 8
    size = len(whole.content)
    for header, start, end in (
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-50", size - 50, size - 1),
    ):
        part = http.get("/api/video/artifact/rest_upload/output", headers={"Range": header})
        assert part.status_code == 206, (header, part.text)
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part.content == whole.content[start : end + 1]
    for header in (f"bytes={size}-", f"bytes={size + 10}-", f"bytes={2**64}-", "bytes=-0"):  # no byte of the file
        beyond = http.get("/api/video/artifact/rest_upload/output", headers={"Range": header})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}", header
        assert beyond.json()["error"]["code"] == "OUT_OF_RANGE"
    end = http.get("/api/video/artifact/rest_upload/output", headers={"Range": f"bytes={size - 5}-{2**64}"})
    assert end.status_code == 206 and end.content == whole.content[-5:]  # an end past the file: up to its end
    served = http.get("/api/video/artifact/rest_upload/input")
    assert served.content == data and served.headers["content-type"] == "video/mp4"
    assert http.get("/api/video/artifact/rest_upload/mask").headers["content-type"] == "video/mp4"
    log = http.get("/api/video/artifact/rest_upload/log")
    assert "ended finished" in log.text and log.headers["content-type"] == "text/plain; charset=utf-8"
    assert log.headers["content-disposition"].startswith("attachment;")
    assert log.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "request_body, status, code",
    [
        ({"input_video_path": "x", "mask_prompt": "car"}, 400, "INVALID_ARGUMENT"),  # no edit_prompt
        ({"input_video_path": "{clip}", "mask_prompt": " ", "edit_prompt": "red"}, 400, "INVALID_ARGUMENT"),
        (
            {"input_video_path": "{clip}", "mask_prompt": "car", "edit_prompt": "red", "params": {"seed": "x"}},
            400,
            "INVALID_ARGUMENT",
        ),
        ({"input_video_path": "/etc/passwd", "mask_prompt": "car", "edit_prompt": "red"}, 403, "PERMISSION_DENIED"),
        ({"input_video_path": "{dir}/missing.mp4", "mask_prompt": "car", "edit_prompt": "red"}, 404, "NOT_FOUND"),
    ],
)
def test_bad_requests_get_the_right_http_status_and_the_servers_message(http, clip, request_body, status, code):
    body = json.loads(json.dumps(request_body).replace("{clip}", str(clip)).replace("{dir}", str(clip.parent)))
    reply = http.post("/api/video/edit", json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert error["code"] == code and error["message"]


def test_conflicts_unknown_jobs_bad_ranges_and_cancel(http, clip):
    body = {
        "job_id": "rest_conflict",
        "input_video_path": str(clip),
        "mask_prompt": "car",
        "edit_prompt": "red",
        "params": {"num_inference_steps": 2, **FAST_JOB["extra"]},
    }
    assert http.post("/api/video/edit", json=body).status_code == 200
    other = http.post("/api/video/edit", json={**body, "edit_prompt": "blue"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "ALREADY_EXISTS"
    assert http.get("/api/video/status/nobody").status_code == 404
    assert http.get("/api/video/events/nobody").status_code == 404
    assert http.get("/api/video/artifact/rest_conflict/nonsense").status_code == 400
    assert http.get("/api/video/artifact/rest_conflict/log", headers={"Range": "bytes=9-3"}).status_code == 400
    cancelled = http.post("/api/video/cancel/rest_conflict", json={}).json()
    assert cancelled["job_id"] == "rest_conflict"
    final = events(http, "rest_conflict")[-1]
    assert final["status"] in ("cancelled", "finished")  # it may have finished before the cancel landed
    if final["status"] == "cancelled":
        assert http.get("/api/video/artifact/rest_conflict/output").status_code == 409  # FAILED_PRECONDITION
    assert http.get("/api/video/jobs", params={"status": "nonsense"}).status_code == 400


def test_uploads_need_a_length_and_respect_the_limit(stack, make_stack):
    # A second gateway with a 1 MB limit, in front of the same orchestrator.
    with make_stack.gateway("small-uploads", stack.orchestrator_address, env={"VIDEOEDIT_MAX_UPLOAD_MB": "1"}) as small:
        with httpx.Client(base_url=small.gateway_url, timeout=EVENT_TIMEOUT_S) as http:
            big = http.post(
                "/api/video/upload", params={"filename": "big.mp4"}, content=b"x" * (2 << 20), headers=VIDEO
            )
            assert big.status_code == 413 and "VIDEOEDIT_MAX_UPLOAD_MB" in big.json()["error"]["message"]
            streamed = http.post(
                "/api/video/upload", params={"filename": "s.mp4"}, content=iter([b"abc"]), headers=VIDEO
            )
            assert streamed.status_code == 411


def test_the_token_is_required_and_passed_on_and_signed_links_stand_in_for_it(make_stack):
    env = {"VIDEOEDIT_AUTH_TOKEN": "s3cret", "VIDEOEDIT_HTTP_LINK_TTL_S": "3"}
    with make_stack("secured", env=env) as secured:
        secured.start_gateway()
        with httpx.Client(base_url=secured.gateway_url, timeout=EVENT_TIMEOUT_S) as http:
            assert http.get("/api/video/jobs").status_code == 401
            assert http.get("/api/video/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
            for scheme in ("Bearer", "bearer", "BEARER"):  # the scheme in any case
                assert http.get("/api/video/jobs", headers={"Authorization": f"{scheme} s3cret"}).status_code == 200
            assert http.get("/api/video/jobs", params={"access_token": "s3cret"}).status_code == 401  # never in URLs
            assert http.get("/").status_code == 200  # the page itself is public; its API calls carry the token

            auth = {"Authorization": "Bearer s3cret"}
            assert http.post("/api/video/links/job1", json={"for": "events"}).status_code == 401
            events_link = http.post("/api/video/links/job1", json={"for": "events"}, headers=auth).json()
            log_link = http.post("/api/video/links/job1", json={"for": "log"}, headers=auth).json()
            assert events_link["url"].startswith("/api/video/events/job1?exp=") and "&sig=" in events_link["url"]
            assert events_link["expires_at"] <= time.time() + 3
            # A link gets past the token check for its own path only (no job1: 404 once past it).
            assert http.get(events_link["url"]).json()["error"]["code"] == "NOT_FOUND"
            assert http.get(log_link["url"]).json()["error"]["code"] == "NOT_FOUND"
            query = events_link["url"].split("?")[1]
            for elsewhere in ("/api/video/events/job2", "/api/video/status/job1", "/api/video/artifact/job1/output"):
                assert http.get(f"{elsewhere}?{query}").status_code == 401, elsewhere
            tampered = events_link["url"][:-1] + ("0" if events_link["url"][-1] != "0" else "1")
            assert http.get(tampered).status_code == 401
            bad = http.post("/api/video/links/job1", json={"for": "jobs"}, headers=auth)
            assert bad.status_code == 400 and "for:" in bad.json()["error"]["message"]
            time.sleep(4)
            assert http.get(events_link["url"]).status_code == 401  # expired
        log = secured.log_path("gateway").read_text()
        assert "s3cret" not in log and events_link["url"].split("sig=")[1] not in log
        assert "sig=REDACTED" in log and "access_token=REDACTED" in log


def test_without_a_token_links_are_plain_urls(http):
    link = http.post("/api/video/links/job%20one", json={"for": "output"}).json()
    assert link == {"url": "/api/video/artifact/job%20one/output", "expires_at": None}


def test_an_unreachable_orchestrator_is_503(make_stack):
    with make_stack.gateway("nowhere") as nowhere:  # in front of a port nothing listens on
        with httpx.Client(base_url=nowhere.gateway_url, timeout=EVENT_TIMEOUT_S) as http:
            reply = http.get("/api/video/status/anything")
            assert reply.status_code == 503 and reply.json()["error"]["code"] == "UNAVAILABLE"
            assert reply.headers["retry-after"] == "5"
            assert http.get("/openapi.json").json()["paths"]["/api/video/edit"]


def test_a_full_queue_is_429_with_retry_after(stack, make_stack, clip):
    """An orchestrator that queues nothing (--max-queued-jobs 0) behind its own gateway."""
    with make_stack.beside(stack, "full-queue", orchestrator_args=("--max-queued-jobs", "0"), gateway=True) as full:
        with httpx.Client(base_url=full.gateway_url, timeout=EVENT_TIMEOUT_S) as http:
            reply = http.post(
                "/api/video/edit",
                json={"input_video_path": str(clip), "mask_prompt": "car", "edit_prompt": "make it red"},
            )
            assert reply.status_code == 429 and reply.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
            assert "retry later" in reply.json()["error"]["message"] and reply.headers["retry-after"] == "5"
