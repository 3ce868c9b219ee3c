"""End to end over real gRPC: both services as processes, tiny models, a real clip."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.media.decode import probe
from orchestrator.media.encode import encode_h264
from tests.helpers import CLIP_FPS, CLIP_FRAMES, FAST_JOB, decode, fps, streams
from videoedit.v1 import video_edit_pb2 as pb

STAGES = [
    pb.JOB_STATUS_QUEUED,
    pb.JOB_STATUS_EXTRACTING,
    pb.JOB_STATUS_MASKING,
    pb.JOB_STATUS_PROPAGATING,
    pb.JOB_STATUS_EDITING,
    pb.JOB_STATUS_SMOOTHING,
    pb.JOB_STATUS_SAVING,
    pb.JOB_STATUS_FINISHED,
]


def dedup(values):
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


@pytest.fixture(scope="module")
def finished_job(stack, clip):
    """One video job, watched from StartEdit to its end."""
    from clients.client import VideoEditClient

    with VideoEditClient(stack.orchestrator_address) as client:
        started = client.start_edit(str(clip), "car", "make the car blue", job_id="e2e", **FAST_JOB)
        seen = list(client.watch("e2e"))
    return started, seen


def test_status_stream_passes_every_stage_in_order(finished_job):
    started, seen = finished_job
    assert started.status == pb.JOB_STATUS_QUEUED and started.job_id == "e2e"
    stages = dedup([s.status for s in seen])
    assert stages == STAGES[STAGES.index(stages[0]) :], [pb.JobStatus.Name(s) for s in stages]
    progress = [s.progress for s in seen]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    assert seen[-1].error == ""


def test_outputs_are_the_legacy_api_files(finished_job):
    final = finished_job[1][-1]
    out = Path(final.output_dir)
    assert Path(final.output_video_path) == out / "e2e_output.mp4"
    assert Path(final.mask_preview_path) == out / "e2e_mask.mp4"
    assert Path(final.logs_path) == out / "e2e_log.txt"
    # The original worker's files, and the objects the job tracked (for later jobs to reuse).
    assert sorted(p.name for p in out.iterdir()) == [
        "e2e_log.txt",
        "e2e_mask.mp4",
        "e2e_objects",
        "e2e_objects.json",
        "e2e_output.mp4",
        "status.json",
    ]
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "finished" and status["job_id"] == "e2e" and status["progress"] == 1.0
    log = (out / "e2e_log.txt").read_text()
    for stage in ("extracting", "masking", "propagating", "editing", "smoothing", "saving"):
        assert f"{stage} " in log
    assert "TINY RANDOM-WEIGHT" in log


def test_output_video_is_h264_with_source_fps_frames_and_audio(finished_job, clip):
    final = finished_job[1][-1]
    assert streams(Path(final.output_video_path)) == {"video": "h264", "audio": "aac"}
    assert fps(Path(final.output_video_path)) == CLIP_FPS
    assert len(decode(Path(final.output_video_path))) == CLIP_FRAMES
    assert len(decode(Path(final.mask_preview_path))) == CLIP_FRAMES


def test_background_is_unchanged_and_the_object_is_edited(finished_job, clip, tmp_path):
    final = finished_job[1][-1]
    source, output = decode(clip), decode(Path(final.output_video_path))
    # Codec error alone: the decoded source through the same H.264 encoder, no edit.
    info = probe(clip, None)
    encode_h264(tmp_path / "reencoded.mp4", iter(source), info, audio_from=None)
    reencoded = decode(tmp_path / "reencoded.mp4")
    mattes = [m[..., 0] > 127 for m in decode(Path(final.mask_preview_path))]
    assert any(m.any() for m in mattes), "the tiny SAM3 should find something on some frame"
    edited_inside = []
    for src, out, codec_only, matte in zip(source, output, reencoded, mattes):
        # Grow the matte a little: H.264 chroma is subsampled 2x2 and blocks bleed at edges.
        near = cv2.dilate(matte.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        error = np.abs(src.astype(int) - out.astype(int))[~near].mean()
        codec_error = np.abs(src.astype(int) - codec_only.astype(int))[~near].mean()
        assert error <= codec_error * 1.15 + 0.1, "pixels outside the mask changed beyond codec error"
        if matte.sum() > 50:
            edited_inside.append(np.abs(src.astype(int) - out.astype(int))[matte].mean())
    assert max(edited_inside) > 5, "inside the mask the edit should change pixels"


def test_get_status_answers_from_the_finished_job(client, finished_job):
    status = client.get_status("e2e")
    assert status.status == pb.JOB_STATUS_FINISHED and status.output_video_path
    assert status.HasField("create_time") and status.HasField("update_time")


def test_start_edit_is_idempotent_per_job_id(client, clip, finished_job):
    again = client.start_edit(str(clip), "car", "make the car blue", job_id="e2e", **FAST_JOB)
    assert again.status == pb.JOB_STATUS_FINISHED
    with pytest.raises(grpc.RpcError) as err:
        client.start_edit(str(clip), "car", "make the car green", job_id="e2e", **FAST_JOB)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_list_jobs_filters_by_status(client, finished_job):
    jobs = client.list_jobs(status=pb.JOB_STATUS_FINISHED).jobs
    assert "e2e" in [j.job_id for j in jobs]
    assert all(j.status == pb.JOB_STATUS_FINISHED for j in jobs)


def test_single_frame_mode_writes_pngs(client, clip):
    client.start_edit(
        str(clip),
        "car",
        "make the car blue",
        job_id="single",
        mode="single_frame",
        num_inference_steps=2,
        extra={"edit_size": "64", "frame_index": "5"},
    )
    final = list(client.watch("single"))[-1]
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    output, mask = cv2.imread(final.output_video_path), cv2.imread(final.mask_preview_path)
    assert final.output_video_path.endswith("single_output.png") and output.shape == (120, 160, 3)
    assert mask.shape[:2] == (120, 160)


def test_a_text_file_named_mp4_is_refused_naming_the_field(client, media_dir):
    fake = media_dir / "notes.mp4"
    fake.write_text("this is not a video")
    with pytest.raises(grpc.RpcError) as err:
        client.start_edit(str(fake), "car", "make it red", job_id="not-a-video", **FAST_JOB)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("input_video_path: ") and "not a media file" in err.value.details()


@pytest.mark.parametrize(
    "fields, code, words",
    [
        (dict(mask_prompt=""), grpc.StatusCode.INVALID_ARGUMENT, "mask_prompt"),
        (dict(edit_prompt="   "), grpc.StatusCode.INVALID_ARGUMENT, "edit_prompt"),
        (dict(num_inference_steps=0), grpc.StatusCode.INVALID_ARGUMENT, "num_inference_steps"),
        (dict(smoothing_alpha=float("nan")), grpc.StatusCode.INVALID_ARGUMENT, "smoothing_alpha"),
        (dict(mode="fast"), grpc.StatusCode.INVALID_ARGUMENT, "mode"),
        (dict(job_id="../../etc"), grpc.StatusCode.INVALID_ARGUMENT, "job_id"),
        (dict(extra={"colour": "red"}), grpc.StatusCode.INVALID_ARGUMENT, "extra[colour]"),
        (dict(input_video_path="/etc/passwd"), grpc.StatusCode.PERMISSION_DENIED, "VIDEOEDIT_INPUT_ROOTS"),
        (dict(input_video_path="{media}/../outputs/x.mp4"), grpc.StatusCode.PERMISSION_DENIED, "outside"),
        (dict(input_video_path="{media}/missing.mp4"), grpc.StatusCode.NOT_FOUND, "does not exist"),
        (dict(output_dir="/tmp/elsewhere"), grpc.StatusCode.PERMISSION_DENIED, "output root"),
    ],
)
def test_bad_requests_get_the_right_code_and_the_server_keeps_serving(
    stack, client, clip, media_dir, fields, code, words
):
    request = dict(input_video_path=str(clip), mask_prompt="car", edit_prompt="make it red")
    request.update({k: v.format(media=media_dir) if isinstance(v, str) else v for k, v in fields.items()})
    with pytest.raises(grpc.RpcError) as err:
        client.start_edit(**request)
    assert err.value.code() == code
    assert words in err.value.details()
    with grpc.insecure_channel(stack.orchestrator_address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_unknown_job_is_not_found(client):
    with pytest.raises(grpc.RpcError) as err:
        client.get_status("no-such-job")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
