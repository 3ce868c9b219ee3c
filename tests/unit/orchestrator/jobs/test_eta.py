"""The estimate of a job's time left (jobs/eta.py) and how the reporter publishes it."""

from __future__ import annotations

import pytest

from orchestrator.jobs.eta import Timing, estimate, eta_seconds
from orchestrator.jobs.reporter import STAGE_BANDS, JobReporter
from orchestrator.request import JobStatus, VideoEditStatus


def test_no_progress_no_estimate():
    assert eta_seconds(Timing(0.0, 0.0, 0.1, 3.0, 3.0)) is None


def test_the_current_stage_at_its_own_pace_and_the_rest_at_the_jobs():
    # Editing covers 0.4..0.8 of the job and is half done after 20 s; 40 s of run for 0.6 of the job.
    eta = eta_seconds(Timing(0.6, 0.4, 0.8, stage_seconds=20.0, run_seconds=40.0))
    stage_left = 20.0  # the other half of editing at 20 s per half
    after = (40.0 / 0.6) * 0.2  # smoothing and saving: 0.2 of the job at its pace
    assert eta == pytest.approx(stage_left + after)


def test_a_stage_just_entered_is_estimated_at_the_jobs_pace():
    eta = eta_seconds(Timing(0.4, 0.4, 0.8, stage_seconds=0.0, run_seconds=10.0))
    assert eta == pytest.approx(10.0 / 0.4 * 0.6)


def test_the_last_frame_of_the_last_stage_leaves_nothing():
    assert eta_seconds(Timing(1.0, 0.9, 1.0, 5.0, 50.0)) == 0.0


def test_the_reporter_publishes_elapsed_and_eta_and_an_end_keeps_only_elapsed(tmp_path):
    seen: list[VideoEditStatus] = []
    rep = JobReporter(VideoEditStatus(job_id="j"), tmp_path, listener=seen.append)
    rep.stage(JobStatus.EDITING, "editing", total_frames=10)
    rep.advance(10)
    status = rep.status
    assert status.elapsed_seconds is not None and status.elapsed_seconds >= 0
    assert status.eta_seconds is not None  # the bands after editing are still to come
    assert status.stage_eta_seconds is not None and status.stage_eta_seconds <= status.eta_seconds
    assert status.progress == pytest.approx(STAGE_BANDS[JobStatus.EDITING][1])
    ended = rep.final(status=JobStatus.FINISHED)
    assert ended.eta_seconds is None and ended.stage_eta_seconds is None
    assert ended.elapsed_seconds >= status.elapsed_seconds
    assert rep.final(status=JobStatus.QUEUED).elapsed_seconds is None  # queued again: a new run


def test_the_stage_estimate_is_its_own_pace_and_the_job_adds_the_stages_after_it():
    # Half of a 0.4..0.8 band done in 20 s: 20 s left in it; the job's pace (40 s for 0.6) over 0.2 more.
    left = estimate(Timing(0.6, 0.4, 0.8, stage_seconds=20.0, run_seconds=40.0))
    assert left is not None and left.stage == pytest.approx(20.0)
    assert left.job == pytest.approx(20.0 + 40.0 / 0.6 * 0.2)
