"""Masks first over HTTP (issue 30): a masks job finds and tracks the objects only; its objects
list and one preview per object come from the artifact routes, served as what they are; an edit
job reuses its masks (`masks_from`, `objects`) without one Segment call. (The page doing the
same: test_web_page.py.)"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import EVENT_TIMEOUT_S, FAST_JOB, model_items
from tests.system.test_http_api import events

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def http(web):
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as client:
        yield client


@pytest.fixture(scope="module")
def masks_job(web, clip) -> tuple[list[dict], dict]:
    """A finished masks job, "rest_masks": the statuses its event stream sent, and its objects list."""
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as http:
        job = {"job_id": "rest_masks", "input_video_path": str(clip), "mask_prompt": "car", "params": {"mode": "masks"}}
        started = http.post("/api/video/edit", json=job)  # no edit_prompt: a masks job has no instruction
        assert started.status_code == 200, started.text
        seen = events(http, "rest_masks")
        assert seen[-1]["status"] == "finished", seen[-1]
        return seen, http.get("/api/video/artifact/rest_masks/objects").json()


def test_a_masks_job_lists_its_objects_with_a_preview_of_each(http, masks_job):
    seen, objects = masks_job
    final = seen[-1]
    assert final["mode"] == "masks" and {"masking", "propagating"} <= {s["status"] for s in seen}
    assert "editing" not in {s["status"] for s in seen}
    listed = http.get("/api/video/artifact/rest_masks/objects")
    # JSON, served as text/plain and as an attachment: an artifact is only video, PNG or plain text
    assert listed.status_code == 200 and listed.headers["content-type"] == "text/plain; charset=utf-8"
    assert listed.headers["content-disposition"].startswith("attachment;")
    assert listed.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in listed.headers["content-security-policy"]
    # job_id names the job that tracked them: this one, or an earlier one the mask cache took them from
    assert objects["mask_prompt"] == "car" and objects["job_id"]
    assert final["objects_found"] == len(objects["objects"]) >= 1
    assert str(final["objects_found"]) in final["message"]
    ids = [found["id"] for found in objects["objects"]]
    for object_id in ids:
        preview = http.get(f"/api/video/artifact/rest_masks/object/{object_id}")
        assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
        assert preview.content.startswith(PNG_SIGNATURE)
        assert preview.headers["content-disposition"].startswith("inline;")
        part = http.get(f"/api/video/artifact/rest_masks/object/{object_id}", headers={"Range": "bytes=0-7"})
        assert part.status_code == 206 and part.content == PNG_SIGNATURE
        assert part.headers["content-type"] == "image/png"
    missing = http.get(f"/api/video/artifact/rest_masks/object/{max(ids) + 1}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    for bad in ("0", "x"):
        refused = http.get(f"/api/video/artifact/rest_masks/object/{bad}")
        assert refused.status_code == 400 and refused.json()["error"]["message"].startswith("object_id:")


def test_an_edit_reuses_the_masks_without_segmenting(http, clip, stack, masks_job):
    """The objects picked by id; no mask_prompt (the masks job's is used)."""
    first = masks_job[1]["objects"][0]["id"]
    before = model_items(stack)
    extra = FAST_JOB["extra"] | {"masks_from": "rest_masks", "objects": str(first)}
    job = {"job_id": "rest_reuse", "input_video_path": str(clip), "edit_prompt": "make it blue"}
    reused = http.post("/api/video/edit", json=job | {"params": {"num_inference_steps": 2, "extra": extra}})
    assert reused.status_code == 200, reused.text
    assert events(http, "rest_reuse")[-1]["status"] == "finished"
    assert model_items(stack)["segment"] == before["segment"]


def test_objects_of_a_job_without_them_are_404(http, clip):
    job = {"input_video_path": str(clip), "mask_prompt": "car", "edit_prompt": "make it red"}
    preview = {"mode": "single_frame", "num_inference_steps": 2, **FAST_JOB["extra"]}
    http.post("/api/video/edit", json=job | {"job_id": "rest_no_objects", "params": preview})
    assert events(http, "rest_no_objects")[-1]["status"] == "finished"
    for route in ("objects", "object/1"):
        reply = http.get(f"/api/video/artifact/rest_no_objects/{route}")
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "NOT_FOUND", (route, reply.text)
    assert http.get("/api/video/status/rest_no_objects").json()["objects_found"] is None
    assert http.get("/api/video/artifact/nobody/objects").status_code == 404


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"masks_from": "nobody"}, "extra[masks_from]"),
        ({"masks_from": "rest_masks", "objects": "one"}, "extra[objects]"),
    ],
)
def test_bad_reuse_options_are_400_naming_them(http, clip, masks_job, extra, field):
    job = {"input_video_path": str(clip), "edit_prompt": "make it red", "params": {"extra": extra}}
    reply = http.post("/api/video/edit", json=job)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["message"].startswith(field), json.dumps(reply.json())
