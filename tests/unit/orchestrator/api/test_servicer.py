"""The servicer's translation: unset optional fields get the original worker's defaults; a status maps to
protobuf field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api.servicer import request_from_proto, status_to_proto
from orchestrator.errors import InvalidArgument
from orchestrator.request import JobStatus, ObjectEdit, VideoEditRequest, VideoEditStatus
from videoedit.v1 import video_edit_pb2 as pb


def test_unset_optional_fields_get_the_legacy_defaults():
    request = request_from_proto(
        pb.VideoEditRequest(
            input_video_path="/in/a.mp4", mask_prompt="hair", edit_prompt="make it red", guidance_scale=0.0
        )
    )
    defaults = VideoEditRequest(input_video_path=Path("/in/a.mp4"), mask_prompt="hair", edit_prompt="make it red")
    assert request.guidance_scale == 0.0  # set explicitly, even to zero: kept
    assert (request.image_guidance_scale, request.num_inference_steps, request.apply_smoothing, request.mode) == (
        defaults.image_guidance_scale,
        defaults.num_inference_steps,
        defaults.apply_smoothing,
        "video",
    )
    assert request.output_dir is None and request.max_frames is None


def test_objects_come_with_their_instances_parsed_like_extra_instances():
    objects = [
        pb.ObjectEdit(mask_prompt="car", edit_prompt="blue"),
        pb.ObjectEdit(mask_prompt="sky", edit_prompt="pink", instances="largest"),
        pb.ObjectEdit(mask_prompt="dog", edit_prompt="red", instances="3"),
        pb.ObjectEdit(mask_prompt="cat", edit_prompt="red", instances="all"),
    ]
    request = request_from_proto(pb.VideoEditRequest(input_video_path="/in/a.mp4", objects=objects))
    assert request.objects == [
        ObjectEdit("car", "blue", None),
        ObjectEdit("sky", "pink", 1),
        ObjectEdit("dog", "red", 3),
        ObjectEdit("cat", "red", None),
    ]
    bad = pb.ObjectEdit(mask_prompt="sky", edit_prompt="pink", instances="most")
    with pytest.raises(InvalidArgument, match=r"^objects\[1\].instances: 'most' must be"):
        request_from_proto(pb.VideoEditRequest(input_video_path="/in/a.mp4", objects=[objects[0], bad]))


def test_a_status_maps_field_by_field():
    status = VideoEditStatus(
        job_id="j",
        status=JobStatus.EDITING,
        progress=0.5,
        current_frame=3,
        total_frames=9,
        message="editing",
        output_dir=Path("/out/j"),
        created_at=1.5,
        updated_at=2.25,
        mask_prompt="car",
        edit_prompt="make it red",
        mode="video",
        elapsed_seconds=12.5,
        eta_seconds=30.0,
        stage_eta_seconds=4.0,
    )
    msg = status_to_proto(status)
    assert (msg.mask_prompt, msg.edit_prompt, msg.mode) == ("car", "make it red", "video")
    assert (msg.elapsed_seconds, msg.eta_seconds, msg.stage_eta_seconds) == (12.5, 30.0, 4.0)
    assert (msg.status, msg.progress, msg.current_frame, msg.total_frames) == (pb.JOB_STATUS_EDITING, 0.5, 3, 9)
    assert msg.output_dir == "/out/j" and msg.output_video_path == "" and not msg.error
    assert msg.create_time.ToNanoseconds() == 1_500_000_000 and msg.update_time.ToNanoseconds() == 2_250_000_000
    queued = status_to_proto(VideoEditStatus(job_id="q"))
    assert not any(queued.HasField(f) for f in ("total_frames", "elapsed_seconds", "eta_seconds", "stage_eta_seconds"))
