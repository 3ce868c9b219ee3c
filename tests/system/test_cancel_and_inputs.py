"""Cancelling queued and running jobs; inputs with rotation metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.sample_clip import make_sample_clip
from tests.helpers import FAST_JOB, decode
from videoedit.v1 import video_edit_pb2 as pb

# Slow enough per Edit batch that a cancel lands while the job is editing.
SLOW_JOB = dict(num_inference_steps=20, extra={"edit_size": "256", "chunk_size": "6", "edit_batch_size": "2"})


def test_cancel_a_running_and_a_queued_job(client, clip):
    client.start_edit(str(clip), "car", "make it red", job_id="cancel-running", **SLOW_JOB)
    client.start_edit(str(clip), "car", "make it red", job_id="cancel-queued", **FAST_JOB)

    queued = client.cancel("cancel-queued")  # one worker: it is still waiting behind the first
    assert queued.status == pb.JOB_STATUS_CANCELLED

    for status in client.watch("cancel-running"):
        if status.status == pb.JOB_STATUS_EDITING:
            client.cancel("cancel-running")
    final = client.get_status("cancel-running")
    assert final.status == pb.JOB_STATUS_CANCELLED
    out = Path(final.output_dir)
    assert not (out / "cancel-running_output.mp4").exists()  # no partial outputs left behind
    assert (out / "status.json").exists() and "cancelled" in Path(final.logs_path).read_text()
    assert not list(out.glob(".work-*"))  # scratch space removed

    # A finished job stays finished; cancelling twice is harmless.
    assert client.cancel("cancel-running").status == pb.JOB_STATUS_CANCELLED
    assert client.get_status("cancel-queued").status == pb.JOB_STATUS_CANCELLED
    assert not Path(client.get_status("cancel-queued").output_dir, "cancel-queued_log.txt").exists()


def test_a_preview_never_waits_behind_a_long_job(client, clip):
    """One worker for jobs, one of its own for one-frame previews (VIDEOEDIT_PREVIEW_SLOTS=1): a
    preview started while a video job edits finishes while that job still runs."""
    client.start_edit(str(clip), "car", "make it red", job_id="long-one", **SLOW_JOB)
    for status in client.watch("long-one"):
        if status.status == pb.JOB_STATUS_EDITING:
            break
    client.start_edit(str(clip), "car", "make it blue", job_id="preview-beside", mode="single_frame", **FAST_JOB)
    preview = client.wait("preview-beside")
    running = client.get_status("long-one")
    client.cancel("long-one")
    assert preview.status == pb.JOB_STATUS_FINISHED, preview.error
    assert running.status == pb.JOB_STATUS_EDITING  # the long job was still at it


@pytest.fixture(scope="module")
def long_clip(media_dir):
    """Long enough that every stage lasts a while, even smoothing and saving."""
    return make_sample_clip(media_dir / "long.mp4", frames=120, width=320, height=240)


@pytest.mark.parametrize("stage", ["MASKING", "PROPAGATING", "EDITING", "SMOOTHING", "SAVING"])
def test_cancel_lands_in_every_stage(client, long_clip, stage):
    job_id = f"cancel-in-{stage.lower()}"
    client.start_edit(
        str(long_clip),
        "car",
        "make it red",
        job_id=job_id,
        num_inference_steps=1,
        extra={"edit_size": "64", "chunk_size": "8"},
    )
    target = pb.JobStatus.Value(f"JOB_STATUS_{stage}")
    for status in client.watch(job_id):
        if status.status == target:
            client.cancel(job_id)
    final = client.get_status(job_id)
    out = Path(final.output_dir)
    assert not list(out.glob(".work-*"))
    if stage == "SAVING" and final.status == pb.JOB_STATUS_FINISHED:
        # Saving runs behind editing and smoothing: its stage is only the tail, and a cancel can
        # arrive after the last frame is written. Then the job is whole, never half-written.
        assert len(decode(out / f"{job_id}_output.mp4")) == 120 and len(decode(out / f"{job_id}_mask.mp4")) == 120
        return
    assert final.status == pb.JOB_STATUS_CANCELLED, pb.JobStatus.Name(final.status)
    assert not list(out.glob(f"{job_id}_output.*")) and not list(out.glob(f"{job_id}_mask.*"))


def test_cancelling_a_finished_job_leaves_it_finished(client, clip):
    client.start_edit(str(clip), "car", "make it red", job_id="done-then-cancel", **FAST_JOB)
    assert client.wait("done-then-cancel").status == pb.JOB_STATUS_FINISHED
    assert client.cancel("done-then-cancel").status == pb.JOB_STATUS_FINISHED


@pytest.mark.parametrize("rotation", [90, -90])
def test_rotated_video_is_edited_upright(client, media_dir, rotation):
    clip = make_sample_clip(
        media_dir / f"rotated{rotation}.mp4", frames=6, width=160, height=96, rotation=rotation, audio=False
    )
    job_id = f"rotated{rotation % 360}"
    client.start_edit(str(clip), "car", "make it red", job_id=job_id, **FAST_JOB)
    final = list(client.watch(job_id))[-1]
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    frames = decode(Path(final.output_video_path))
    assert len(frames) == 6 and frames[0].shape == (160, 96, 3)
