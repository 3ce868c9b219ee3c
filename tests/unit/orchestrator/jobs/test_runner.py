"""run_job: every write of a job through its claim (the store first, then status.json; the log
and the outputs only while the claim holds; outputs renamed into place in the transaction that
records the end), outages handed back to the queue, a full volume named. FakeModels, a real clip
and a claim that records what it was asked."""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clients.sample_clip import make_sample_clip
from orchestrator.config import Settings
from orchestrator.errors import ModelServerUnavailable
from orchestrator.jobs.claims import OwnedOutright
from orchestrator.jobs.reporter import JobReporter
from orchestrator.jobs.runner import MAX_ATTEMPTS, OUTAGE_RETRY_FIRST_S, describe_error, new_status, run_job
from orchestrator.jobs.validation import check_request
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline.concurrency import StopReason, StopSignal
from orchestrator.request import CheckedRequest, JobStatus, VideoEditRequest, VideoEditStatus
from tests.helpers import CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH, decode


@dataclass
class RecordingClaim:
    """A JobClaim that records what the job asked of it; `holding` and `store_takes` say whether
    the job is still its own and whether the store would take the end."""

    attempt: int = 1
    holding: bool = True
    store_takes: bool = True
    stop: StopSignal = field(default_factory=StopSignal)
    updates: list[JobStatus] = field(default_factory=list)
    ends: list[VideoEditStatus] = field(default_factory=list)
    releases: list[tuple[VideoEditStatus, float]] = field(default_factory=list)

    def holds(self) -> bool:
        return self.holding

    def update(self, status: VideoEditStatus, new_stage: bool) -> bool:
        self.updates.append(status.status)
        return self.holding

    def finish(self, status: VideoEditStatus, commit: Callable[[], None]) -> bool:
        if not (self.holding and self.store_takes):
            return False
        commit()
        self.ends.append(status)
        return True

    def release(self, status: VideoEditStatus, retry_after_s: float) -> bool:
        self.releases.append((status, retry_after_s))
        return True

    def lose(self) -> None:
        """As HeldClaim.lose: the job is not ours any more."""
        self.holding = False
        self.stop.stop(StopReason.LEASE_LOST)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    media = tmp_path_factory.mktemp("media")
    return make_sample_clip(media / "clip.mp4", frames=CLIP_FRAMES, width=CLIP_WIDTH, height=CLIP_HEIGHT)


def run(tmp_path: Path, clip: Path, claim, models: FakeModels | None = None) -> tuple[VideoEditStatus, CheckedRequest]:
    settings = Settings(input_roots=(clip.parent,), output_root=tmp_path)
    request = VideoEditRequest(
        job_id="job",
        input_video_path=clip,
        mask_prompt="car",
        edit_prompt="make it blue",
        num_inference_steps=2,
        extra={"edit_size": "64", "chunk_size": "6"},
    )
    checked = check_request(request, settings)
    status = new_status(checked)
    reporter = JobReporter(status, checked.output_dir, stop=getattr(claim, "stop", None), claim=claim)
    return run_job(checked, models or FakeModels(), reporter), checked


def written_status(checked: CheckedRequest) -> str | None:
    path = checked.output_dir / "status.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


def test_a_finished_job_records_its_end_then_renames_its_outputs_into_place(tmp_path, clip):
    claim = RecordingClaim(attempt=2)
    final, checked = run(tmp_path, clip, claim)
    assert final.status is JobStatus.FINISHED and [e.status for e in claim.ends] == [JobStatus.FINISHED]
    assert claim.updates[0] is JobStatus.EXTRACTING and JobStatus.SAVING in claim.updates  # the store first
    assert len(decode(final.output_video_path)) == CLIP_FRAMES and final.mask_preview_path.exists()
    assert written_status(checked) == "finished"
    assert not list(checked.output_dir.glob(".*attempt-*")), "the attempt's own names are gone"


def test_a_run_whose_end_the_store_refuses_leaves_outputs_and_status_to_the_run_that_holds_it(tmp_path, clip):
    claim = RecordingClaim(store_takes=False)
    final, checked = run(tmp_path, clip, claim)
    assert not claim.ends and final.status is not JobStatus.FINISHED
    assert not list(checked.output_dir.glob("*_output.mp4")) and not list(checked.output_dir.glob(".*attempt-*"))
    assert written_status(checked) == "saving"  # its last running status, never its end


def test_a_run_that_loses_its_claim_writes_nothing_after(tmp_path, clip):
    """Lost while editing: no status.json, log line or output of it lands after that."""
    claim = RecordingClaim()

    class Losing(FakeModels):
        def edit(self, crops, *args, **kwargs):
            if claim.holding:
                claim.lose()
                lost_at.append(time.time())
            return super().edit(crops, *args, **kwargs)

    lost_at: list[float] = []
    _, checked = run(tmp_path, clip, claim, Losing())
    assert lost_at and not claim.ends and not claim.releases
    assert written_status(checked) in ("propagating", "editing")
    log_text = (checked.output_dir / "job_log.txt").read_text()
    assert "started" in log_text and "ended" not in log_text and "editing:" not in log_text
    assert not list(checked.output_dir.glob("*_output.mp4")) and not list(checked.output_dir.glob(".*attempt-*"))


class Outage(FakeModels):
    def edit(self, crops, *args, **kwargs):
        raise ModelServerUnavailable("model server localhost:1: Edit failed with UNAVAILABLE: connection refused")


@pytest.mark.parametrize("attempt", [1, 3])
def test_a_model_server_outage_hands_the_job_back_to_the_queue_with_a_back_off(tmp_path, clip, attempt):
    claim = RecordingClaim(attempt=attempt)
    final, checked = run(tmp_path, clip, claim, Outage())
    [(status, wait_s)] = claim.releases
    assert status.status is JobStatus.QUEUED and final.status is JobStatus.QUEUED and not claim.ends
    assert wait_s == OUTAGE_RETRY_FIRST_S * 2 ** (attempt - 1)
    assert "model-server outage" in status.message and f"attempt {attempt} of at most {MAX_ATTEMPTS}" in status.message
    assert written_status(checked) == "queued"


def test_an_outage_fails_the_job_after_the_last_attempt_or_with_no_queue_to_go_back_to(tmp_path, clip):
    claim = RecordingClaim(attempt=MAX_ATTEMPTS)
    final, _ = run(tmp_path / "last", clip, claim, Outage())
    assert final.status is JobStatus.FAILED and not claim.releases and "UNAVAILABLE" in final.error
    final, checked = run(tmp_path / "in-process", clip, OwnedOutright(), Outage())
    assert final.status is JobStatus.FAILED and "UNAVAILABLE" in final.error and written_status(checked) == "failed"


def test_earlier_attempts_scratch_goes_once_nothing_writes_there(tmp_path, clip):
    out = tmp_path / "job"
    for attempt, age_s in ((1, 600), (2, 0)):  # 1: an orchestrator that died long ago; 2: still writing
        spool = out / f".work-attempt-{attempt}" / "masks-0.bits"
        spool.parent.mkdir(parents=True)
        spool.write_bytes(b"\0")
        os.utime(spool, (time.time() - age_s,) * 2)
        os.utime(spool.parent, (time.time() - age_s,) * 2)
    run(tmp_path, clip, RecordingClaim(attempt=3))
    assert sorted(p.name for p in out.glob(".work-*")) == [".work-attempt-2"]


def test_a_full_volume_is_named_in_the_error():
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/outputs/job/.job_output.attempt-1.mp4")
    assert describe_error(err).startswith("no space left on the volume of /data/outputs/job/.job_output.attempt-1.mp4")
