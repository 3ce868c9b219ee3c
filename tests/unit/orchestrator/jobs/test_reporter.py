"""JobReporter: stage bands from the shared stage list, monotonic progress, status.json on stage
changes, cancellation at every checkpoint."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import JobCancelled, JobInterrupted, JobLost
from orchestrator.jobs.reporter import JobReporter
from orchestrator.pipeline.concurrency import StopReason, StopSignal
from orchestrator.request import JobStatus, VideoEditStatus
from videoedit.v1 import contract


def reporter(tmp_path) -> tuple[JobReporter, list[VideoEditStatus]]:
    seen: list[VideoEditStatus] = []
    return JobReporter(VideoEditStatus(job_id="j"), tmp_path, listener=seen.append), seen


def test_progress_follows_the_shared_stage_bands_and_never_goes_back(tmp_path):
    rep, seen = reporter(tmp_path)
    for stage in contract.STAGES:
        rep.stage(JobStatus(stage.name), stage.name, total_frames=10)
        assert rep.status.progress == pytest.approx(stage.progress_start)
        rep.advance(5)
        rep.advance(10)
        assert rep.status.progress == pytest.approx(stage.progress_end)
    assert [s.progress for s in seen] == sorted(s.progress for s in seen)
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "saving"


def test_a_stage_that_ends_early_completes_its_band(tmp_path):
    rep, _ = reporter(tmp_path)
    rep.stage(JobStatus.MASKING, "looking", total_frames=100)
    rep.complete(16, "found")
    status = rep.status
    assert (status.current_frame, status.total_frames, status.message) == (16, 16, "found")
    assert status.progress == pytest.approx(contract.STAGES[1].progress_end)


@pytest.mark.parametrize(
    "reason, error",
    [(StopReason.CANCELLED, JobCancelled), (StopReason.SHUTDOWN, JobInterrupted), (StopReason.LEASE_LOST, JobLost)],
)
def test_every_report_raises_once_the_job_is_asked_to_stop(tmp_path, reason, error):
    rep, _ = reporter(tmp_path)
    rep.stage(JobStatus.EDITING, "editing", total_frames=4)
    rep.advance(1)
    rep.stop.stop(reason)
    for checkpoint in (lambda: rep.advance(2), lambda: rep.complete(2), lambda: rep.stage(JobStatus.SAVING, "")):
        with pytest.raises(error):
            checkpoint()


def test_the_final_check_ignores_a_shutdown_but_not_a_cancel(tmp_path):
    """A job whose outputs are written keeps them when the server starts shutting down then."""
    stop = StopSignal()
    reporter = JobReporter(VideoEditStatus(job_id="j", output_dir=tmp_path), tmp_path, stop=stop)
    stop.stop(StopReason.SHUTDOWN)
    reporter.check_cancelled(finishing=True)
    with pytest.raises(JobInterrupted):
        reporter.check_cancelled()
    stop.stop(StopReason.CANCELLED)
    with pytest.raises(JobCancelled):
        reporter.check_cancelled(finishing=True)
