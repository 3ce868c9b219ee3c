"""Clicks and boxes through the services (tiny models over real gRPC): a positive point inside an
object a masks job found keeps it (the mask is white there), a point on no object fails the job
naming it, an exemplar box reaches the model server (its counter says so), a box alone with no
text gives a finished job, and bad prompts are INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from clients.client import VideoEditClient
from clients.sample_clip import make_sample_clip
from tests.helpers import decode, samples
from videoedit.v1 import video_edit_pb2 as pb

FRAMES, WIDTH, HEIGHT = 12, 160, 120
JOB = dict(num_inference_steps=2, extra={"edit_size": "64", "chunk_size": "6", "chunk_overlap": "2"})


def prompts_counted(stack) -> dict[str, float]:
    found = samples(f"http://{stack.metrics_address}/metrics")
    return {
        labels[0][1]: value
        for (name, labels), value in found.items()
        if name == "videoedit_modelserver_visual_prompts_total"
    }


def run(client: VideoEditClient, clip: Path, job_id: str, mask_prompt: str, prompts: list[dict], **fields):
    client.start_edit(str(clip), mask_prompt, "make it red", job_id=job_id, visual_prompts=prompts, **(JOB | fields))
    return client.wait(job_id)


@pytest.fixture(scope="module")
def clip(stack) -> Path:
    return make_sample_clip(stack.input_roots[0] / "clicks.mp4", frames=FRAMES, width=WIDTH, height=HEIGHT)


@pytest.fixture(scope="module")
def found_masks(stack, clip) -> list[np.ndarray]:
    """The masks job's mask of every object, per frame (what a person clicks on)."""
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "", job_id="clicks-find", mode="masks", **JOB)
        found = client.wait("clicks-find")
    assert found.status == pb.JOB_STATUS_FINISHED, found.error
    return [frame[..., 0] > 127 for frame in decode(Path(found.mask_preview_path))]


def a_pixel(masks: list[np.ndarray], on: bool) -> tuple[int, int, int]:
    """(frame, x, y) well inside an object (`on`; on the frame where objects cover most) or well
    away from every object (the mask video is lossy: a 7x7 neighbourhood agrees)."""
    order = sorted(range(len(masks)), key=lambda i: -int(masks[i].sum()) if on else int(masks[i].sum()))
    for frame in order:
        lit = masks[frame] if on else ~masks[frame]
        for y, x in zip(*np.nonzero(lit), strict=True):
            window = lit[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4]
            if window.shape == (7, 7) and window.all():
                return frame, int(x), int(y)
    pytest.skip("the tiny SAM3 left no pixel well inside or outside an object")


def test_a_positive_point_on_an_object_keeps_it_and_its_mask_is_white_there(stack, clip, found_masks):
    frame, x, y = a_pixel(found_masks, on=True)
    point = {"frame_index": frame, "points": [{"x": x, "y": y, "positive": True}]}
    with VideoEditClient(stack.orchestrator_address) as client:
        final = run(client, clip, "clicks-keep", "car", [point])
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    assert decode(Path(final.mask_preview_path))[frame][y, x, 0] > 127
    assert "keep object(s)" in Path(final.logs_path).read_text()


def test_a_point_on_no_object_fails_the_job_naming_it(stack, clip, found_masks):
    frame, x, y = a_pixel(found_masks, on=False)
    point = {"frame_index": frame, "points": [{"x": x, "y": y}]}
    with VideoEditClient(stack.orchestrator_address) as client:
        final = run(client, clip, "clicks-miss", "car", [point])
    assert final.status == pb.JOB_STATUS_FAILED
    assert "visual_prompts[0].points[0]: no object found there" in final.error and f"on frame {frame}" in final.error


def test_an_exemplar_box_reaches_the_model_server(stack, clip):
    before = prompts_counted(stack).get("exemplar", 0.0)
    box = {"frame_index": 2, "box": {"x0": 20, "y0": 30, "x1": 90, "y1": 80}}
    with VideoEditClient(stack.orchestrator_address) as client:
        final = run(client, clip, "clicks-exemplar", "car", [box], extra=JOB["extra"] | {"chunk_size": "4"})
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    assert prompts_counted(stack)["exemplar"] == before + 1


def test_a_box_alone_without_text_tracks_its_object_to_a_finished_job(stack, clip):
    before = prompts_counted(stack).get("new_object", 0.0)
    box = {"frame_index": 4, "box": {"x0": 30, "y0": 30, "x1": 110, "y1": 90}}
    with VideoEditClient(stack.orchestrator_address) as client:
        final = run(client, clip, "clicks-box-alone", "", [box])
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    assert prompts_counted(stack)["new_object"] == before + 2  # tracked back from frame 4, and on from it
    log = Path(final.logs_path).read_text()
    assert "tracked back from frame 4 to frame 0" in log


@pytest.mark.parametrize(
    "prompt, field",
    [
        ({"frame_index": 0, "box": {"x0": 9, "y0": 9, "x1": 9, "y1": 20}}, "visual_prompts[0].box"),
        ({"frame_index": 0, "points": [{"x": 5, "y": 5, "positive": False}]}, "visual_prompts"),
        ({"frame_index": 0}, "visual_prompts[0]"),
    ],
)
def test_bad_prompts_are_invalid_arguments_naming_the_field(stack, clip, prompt, field):
    with VideoEditClient(stack.orchestrator_address) as client, pytest.raises(grpc.RpcError) as err:
        run(client, clip, "clicks-bad", "", [prompt])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}: ")


def test_prompts_past_the_video_fail_the_job_naming_them(stack, clip):
    with VideoEditClient(stack.orchestrator_address) as client:
        final = run(client, clip, "clicks-late", "car", [{"frame_index": FRAMES, "points": [{"x": 1, "y": 1}]}])
        outside = run(client, clip, "clicks-out", "car", [{"frame_index": 0, "points": [{"x": WIDTH + 5, "y": 1}]}])
    assert final.status == pb.JOB_STATUS_FAILED and "visual_prompts[0].frame_index: 12 is past the end" in final.error
    assert outside.status == pb.JOB_STATUS_FAILED and "outside the 160x120 frame" in outside.error
