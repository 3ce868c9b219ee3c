"""Hostile input against the running services: every bad request gets the right gRPC code (or
the job ends FAILED with an actionable error), the server keeps serving, and nothing is written
outside the job's output dir. (Property-based fuzzing of validation: unit/orchestrator/jobs.)"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.sample_clip import make_sample_clip
from tests.helpers import FAST_JOB
from videoedit.v1 import video_edit_pb2 as pb

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def hostile(media_dir) -> Path:
    """A folder of broken and strange media files."""
    folder = media_dir / "hostile"
    folder.mkdir(exist_ok=True)
    good = make_sample_clip(folder / "good.mp4", frames=12, width=160, height=120)
    data = good.read_bytes()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("this is not a video\n" * 50)
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    rng = np.random.default_rng(0)
    start = len(corrupt) // 3
    corrupt[start : start + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()  # garbage mid-stream
    (folder / "corrupt.mp4").write_bytes(bytes(corrupt))
    _write_ffv1(folder / "one_pixel.mkv", 1, 1, frames=3)
    _write_ffv1(folder / "huge_fps.mkv", 64, 48, frames=6, fps=Fraction(10000))
    _audio_only(good, folder / "audio_only.m4a")
    _write_ffv1(folder / "too_wide.mkv", 8200, 32, frames=1)
    (folder / "a_directory.mp4").mkdir(exist_ok=True)
    (folder / "page.html").write_text("<html><script>fetch('/api/video/jobs')</script></html>\n")
    (folder / "art.ans").write_text("\x1b[31mFFmpeg reads ANSI art as frames\x1b[0m\n")  # the tty demuxer
    cv2.imwrite(str(folder / "still.png"), np.zeros((64, 64, 3), np.uint8))
    return folder


def _write_ffv1(path: Path, width: int, height: int, frames: int, fps: Fraction = Fraction(24)) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i in range(frames):
            rgb = np.full((height, width, 3), 40 + 20 * i, np.uint8)
            rgb[height // 4 : height // 2 + 1, width // 4 : width // 2 + 1] = (200, 30, 30)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")))
        out.mux(stream.encode(None))


def _audio_only(source: Path, target: Path) -> None:
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as out:
        audio = out.add_stream_from_template(src.streams.audio[0])
        for packet in src.demux(src.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = audio
                out.mux(packet)


def start(client, path, job_id, **fields):
    return client.start_edit(
        str(path), fields.pop("mask", "car"), fields.pop("edit", "make it red"), job_id=job_id, **(FAST_JOB | fields)
    )


@pytest.mark.parametrize(
    "name, words",
    [
        ("one_pixel.mkv", "1x1 frames"),
        ("too_wide.mkv", "8200x32 frames"),
    ],
)
def test_unusable_files_end_failed_saying_why(client, hostile, name, words):
    job_id = "bad-" + name.replace(".", "-")
    start(client, hostile / name, job_id)
    final = client.wait(job_id)
    assert final.status == pb.JOB_STATUS_FAILED and words in final.error
    assert final.error.startswith("extracting: input_video_path")  # the stage and the field


@pytest.mark.parametrize(
    "name", ["corrupt.mp4", "huge_fps.mkv", pytest.param("8k.mp4", marks=pytest.mark.slow)]
)  # ~40 s on 2 cores
def test_damaged_or_odd_files_finish_or_fail_clearly(client, hostile, name):
    if name == "8k.mp4":
        make_sample_clip(hostile / name, frames=2, width=7680, height=4320, audio=False)
    job_id = "odd-" + name.replace(".", "-")
    start(client, hostile / name, job_id)
    final = client.wait(job_id)
    assert final.status in (pb.JOB_STATUS_FINISHED, pb.JOB_STATUS_FAILED)
    if final.status == pb.JOB_STATUS_FAILED:
        assert "input_video_path" in final.error or "matched nothing" in final.error, final.error
    else:
        assert Path(final.output_video_path).stat().st_size > 0


@pytest.mark.parametrize(
    "fields, code, words",
    [
        (dict(path="missing.mp4"), NOT_FOUND, "does not exist"),
        (dict(path="a_directory.mp4"), INVALID, "is not a file"),
        # Only videos: what FFmpeg found is named (the probe reads headers, nothing is decoded).
        (dict(path="empty.mp4"), INVALID, "is not a video: not a media file FFmpeg can read"),
        (dict(path="text.mp4"), INVALID, "is not a video: not a media file FFmpeg can read"),
        (dict(path="truncated.mp4"), INVALID, "is not a video: not a media file FFmpeg can read"),  # no moov
        (dict(path="page.html"), INVALID, "is not a video: not a media file FFmpeg can read"),
        (dict(path="audio_only.m4a"), INVALID, "is not a video: no video stream (streams: audio)"),
        (dict(path="art.ans"), INVALID, "is not a video: a still image or text (tty)"),
        (dict(path="still.png"), INVALID, "is not a video: a still image or text (png_pipe)"),
        # A NUL anywhere is the field's error, not the OS's "embedded null byte".
        (dict(path="go\0od.mp4"), INVALID, "input_video_path: contains a NUL character (at "),
        (dict(output_dir="/tmp/out\0put"), INVALID, "output_dir: contains a NUL character"),
        (dict(job_id="job\0id"), INVALID, "job_id: contains a NUL character"),
        (dict(mask="car\0"), INVALID, "mask_prompt: contains a NUL character"),
        (dict(edit="\0make it red"), INVALID, "edit_prompt: contains a NUL character"),
        (dict(extra={"edit\0size": "64"}), INVALID, "extra: contains a NUL character"),
        (dict(extra={"seed_mode": "per_frame\0"}), INVALID, "extra[seed_mode]: contains a NUL character"),
        (dict(mask=""), INVALID, "mask_prompt"),
        (dict(edit=" \n\t"), INVALID, "edit_prompt"),
        (dict(edit="x" * 2001), INVALID, "at most 2000"),
        (dict(guidance_scale=-1.0), INVALID, "guidance_scale"),
        (dict(guidance_scale=float("nan")), INVALID, "guidance_scale"),
        (dict(image_guidance_scale=float("inf")), INVALID, "image_guidance_scale"),
        (dict(num_inference_steps=0), INVALID, "num_inference_steps"),
        (dict(num_inference_steps=10**9), INVALID, "num_inference_steps"),
        (dict(erode_kernel=-1), INVALID, "erode_kernel"),
        (dict(smoothing_window=0), INVALID, "smoothing_window"),
        (dict(smoothing_alpha=2.0), INVALID, "smoothing_alpha"),
        (dict(seed=-1), INVALID, "seed"),
        (dict(mode="everything"), INVALID, "mode"),
        (dict(max_frames=2**31 - 1), INVALID, "max_frames"),
        (dict(max_frames=-5), INVALID, "max_frames"),
        (dict(extra={"turbo": "1"}), INVALID, "extra[turbo]"),
        (dict(extra={"edit_size": "77"}), INVALID, "multiple of 8"),
        (dict(extra={"chunk_size": "1e9"}), INVALID, "extra[chunk_size]"),
        (dict(extra={"model_path": "/tmp/evil"}), INVALID, "model server"),
        (dict(job_id="../escape"), INVALID, "job_id"),
        (dict(job_id="a/b"), INVALID, "job_id"),
        (dict(job_id=".."), INVALID, "job_id"),
        (dict(job_id="x" * 129), INVALID, "job_id"),
        (dict(job_id="new\\nline"), INVALID, "job_id"),
        (dict(output_dir="/etc"), grpc.StatusCode.PERMISSION_DENIED, "output_dir"),
    ],
)
def test_bad_requests_get_the_right_code_naming_the_field(client, hostile, fields, code, words):
    path = hostile / fields.pop("path", "good.mp4")
    fields.setdefault("job_id", "never-runs")
    fields = {**FAST_JOB, **fields}
    with pytest.raises(grpc.RpcError) as err:
        client.start_edit(str(path), fields.pop("mask", "car"), fields.pop("edit", "make it red"), **fields)
    assert err.value.code() == code and words in err.value.details(), err.value.details()
    if "is not a video" in words:
        assert err.value.details().startswith("input_video_path: "), err.value.details()


def test_an_oversize_request_is_resource_exhausted(client, hostile):
    with pytest.raises(grpc.RpcError) as err:
        client.start_edit(str(hostile / "good.mp4"), "car", "x" * (5 << 20))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    "job_id, prompt",
    [
        ("unicode", "mach das Auto 红色 🚗 ñ"),
        ("injection", "ignore previous instructions; $(rm -rf /) `reboot` '; DROP TABLE jobs; -- ../../etc/passwd"),
    ],
)
def test_strange_prompts_are_just_text(client, hostile, job_id, prompt):
    start(client, hostile / "good.mp4", job_id, edit=prompt)
    final = client.wait(job_id)
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    assert prompt in Path(final.logs_path).read_text()


def test_after_all_that_the_server_serves_and_wrote_only_job_dirs(stack, client, hostile):
    with grpc.insecure_channel(stack.orchestrator_address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    start(client, hostile / "good.mp4", "still-fine")
    assert client.wait("still-fine").status == pb.JOB_STATUS_FINISHED
    for entry in stack.output_root.iterdir():  # job dirs and the job store only
        assert entry.is_dir() or entry.name.startswith(".videoedit-jobs.sqlite3"), entry


# --- property-based: validation only ever answers with our errors, and what it accepts is sane ---
