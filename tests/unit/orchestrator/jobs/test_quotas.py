"""Tenants' quotas on new jobs (jobs/quotas.py) through JobManager.start, over a real SQLite store:
max_queued and max_video_seconds refuse with RESOURCE_EXHAUSTED naming the limit; a repeat of an
existing job, an admin's key and tenants without settings are not limited. (max_running is the
claims': test_store.py.)"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clients.sample_clip import make_sample_clip
from orchestrator.config import Settings
from orchestrator.errors import ResourceExhausted
from orchestrator.jobs.manager import JobManager
from orchestrator.jobs.store import SqliteJobStore
from orchestrator.jobs.tenants import Caller, TenantSettings
from orchestrator.models.fake import FakeModels
from orchestrator.request import VideoEditRequest

ACME = Caller("acme")


@pytest.fixture
def media(tmp_path) -> Path:
    make_sample_clip(tmp_path / "media" / "clip.mp4", frames=48, width=64, height=48, fps=24)  # 2 s
    return tmp_path / "media"


@pytest.fixture
def jobs(tmp_path, media):
    settings = Settings(input_roots=(media,), output_root=tmp_path / "out")
    manager = JobManager(settings, FakeModels(), SqliteJobStore(tmp_path / "jobs.sqlite3"), max_concurrent_jobs=0)
    yield manager  # claims nothing: every job stays queued
    manager.shutdown()
    manager.close()


def limit(jobs: JobManager, media: Path, **quotas) -> None:
    jobs.store.set_tenant_settings(TenantSettings("acme", input_roots=(media,), **quotas))


def request(media: Path, job_id: str, **fields) -> VideoEditRequest:
    values = dict(input_video_path=media / "clip.mp4", mask_prompt="car", edit_prompt="make it red", job_id=job_id)
    return VideoEditRequest(**{**values, **fields})


def test_max_queued_refuses_a_tenants_next_job_but_not_a_repeat_nor_others(jobs, media):
    limit(jobs, media, max_queued=2)
    for job_id in ("j1", "j2"):
        jobs.start(request(media, job_id), ACME)
    with pytest.raises(ResourceExhausted) as refused:
        jobs.start(request(media, "j3"), ACME)
    assert "tenant 'acme' has 2 jobs queued" in str(refused.value) and "max_queued" in str(refused.value)
    assert "videoedit-admin quota set" in str(refused.value)
    assert jobs.start(request(media, "j2"), ACME).job_id == "j2"  # idempotent: the job as it is
    jobs.start(request(media, "j3"), Caller("acme", admin=True))  # an admin's key has no quotas
    jobs.start(request(media, "j1"))  # nor the default tenant; another tenant's queue is its own
    for job_id in ("j1", "j3"):  # acme's admin went past the limit: 3 queued
        jobs.cancel(job_id, ACME)
    assert jobs.start(request(media, "j4"), ACME).tenant == "acme"  # one fewer queued than the limit: room again


def test_max_video_seconds_refuses_a_longer_video_unless_max_frames_cuts_it(jobs, media):
    limit(jobs, media, max_video_seconds=1.5)
    with pytest.raises(ResourceExhausted) as refused:
        jobs.start(request(media, "long"), ACME)
    message = str(refused.value)
    assert "2.0 s of video" in message and "limit of 1.5 s" in message and "max_video_seconds" in message
    assert jobs.start(request(media, "cut", max_frames=24), ACME).job_id == "cut"  # 1 s of it


def test_an_input_of_unknown_length_is_refused_unless_max_frames_bounds_it(jobs, media):
    """A raw H.264 stream's headers say no duration: the limit could not be checked up front."""
    with av.open(str(media / "raw.h264"), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    limit(jobs, media, max_video_seconds=60)
    raw = dict(input_video_path=media / "raw.h264")
    with pytest.raises(ResourceExhausted, match="not in its headers.*set max_frames, or remux"):
        jobs.start(request(media, "raw", **raw), ACME)
    assert jobs.start(request(media, "bounded", max_frames=12, **raw), ACME).job_id == "bounded"


def test_a_tenant_without_settings_has_no_quotas(jobs, tmp_path, media):
    jobs.store.set_tenant_settings(TenantSettings("other", max_queued=0, max_video_seconds=0.1))
    uploads = tmp_path / "media" / "uploads" / "tenants" / "acme"  # what acme may read without settings
    make_sample_clip(uploads / "clip.mp4", frames=48, width=64, height=48, fps=24)
    for job_id in ("a", "b"):
        assert jobs.start(request(uploads, job_id), ACME).job_id == job_id
