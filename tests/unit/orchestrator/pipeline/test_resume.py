"""Resuming a video job from its checkpoints (pipeline.checkpoint), in-process with FakeModels.

A run is stopped the way a server shutdown stops it (JobInterrupted) at a chosen point; a second
run in the same scratch directory carries on from what the first made durable. FakeModels are
deterministic, so the resumed job's output must equal an uninterrupted run's, with only the work
in flight when it stopped done twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from orchestrator.errors import JobInterrupted
from orchestrator.jobs.validation import parse_extra
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline import output_paths, run_pipeline
from orchestrator.pipeline.checkpoint import MANIFEST
from orchestrator.pipeline.concurrency import StopReason, StopSignal
from orchestrator.request import CheckedRequest, JobStatus, VideoEditRequest
from tests.helpers import RecordedProgress, decode
from tests.unit.orchestrator.pipeline.test_stages import square_clip

FRAMES = 48
EXTRA = dict(chunk_size="6", chunk_overlap="2", edit_size="64", edit_batch_size="2")


@dataclass
class StopAt(RecordedProgress):
    """Progress that stops the job as a shutdown would, once `stage` reports `frame` frames done."""

    stage_to_stop: JobStatus = JobStatus.PROPAGATING
    frame: int = 0
    signal: StopSignal = field(default_factory=StopSignal)

    def __post_init__(self) -> None:
        super().__init__()

    def advance(self, done: int, message: str | None = None) -> None:
        super().advance(done, message)
        if self.stages and self.stages[-1] is self.stage_to_stop and done >= self.frame:
            self.signal.stop(StopReason.SHUTDOWN)


def run(workdir: Path, clip: Path, models: FakeModels, progress: RecordedProgress, stop: StopSignal, log_name: str):
    request = VideoEditRequest(
        job_id="job",
        input_video_path=clip,
        output_dir=workdir.parent / "out",
        mask_prompt="car",
        edit_prompt="make it blue",
        num_inference_steps=2,
    )
    (workdir.parent / "out").mkdir(exist_ok=True)
    workdir.mkdir(exist_ok=True)
    return run_pipeline(
        CheckedRequest(request, parse_extra(EXTRA)),
        models,
        progress,
        logging.getLogger(log_name),
        workdir,
        stop,
        output_paths(request),
        attempt=2,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return square_clip(tmp_path_factory.mktemp("clip") / "clip.mkv", appears=3, frames=FRAMES)[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, clip) -> tuple[list[np.ndarray], list[np.ndarray], FakeModels]:
    """Output and mask frames of the job run once to its end, and its models."""
    models, work = FakeModels(), tmp_path_factory.mktemp("whole") / "work"
    paths = run(work, clip, models, RecordedProgress(), StopSignal(), "tests.resume.whole")
    return decode(paths.video), decode(paths.mask), models


def interrupted_then_resumed(tmp_path, clip, stage: JobStatus, frame: int, caplog, tamper=None):
    """Run the job until the stop point, then again in the same scratch directory; returns both
    runs' models and the second run's outputs."""
    work = tmp_path / "work"
    first = FakeModels(edit_seconds=0.01)
    stopping = StopAt(stage_to_stop=stage, frame=frame)
    with pytest.raises(JobInterrupted):
        run(work, clip, first, stopping, stopping.signal, "tests.resume.first")
    assert first.calls.wait(10) == 0
    if tamper is not None:
        tamper(work)
    second = FakeModels()
    with caplog.at_level(logging.INFO, logger="tests.resume.second"):
        paths = run(work, clip, second, RecordedProgress(), StopSignal(), "tests.resume.second")
    return first, second, decode(paths.video), decode(paths.mask)


def segment_frames(models: FakeModels) -> int:
    return sum(models.segment_calls)


def edited_crops(models: FakeModels) -> int:
    return sum(c.crops for c in models.edit_calls)


@pytest.mark.parametrize("stage, frame", [(JobStatus.PROPAGATING, 24), (JobStatus.EDITING, 30)])
def test_a_stopped_job_resumes_where_it_was_and_its_output_is_the_uninterrupted_runs(
    tmp_path, clip, uninterrupted, caplog, stage, frame
):
    video, mask, whole = uninterrupted
    first, second, resumed_video, resumed_mask = interrupted_then_resumed(tmp_path, clip, stage, frame, caplog)
    assert [np.array_equal(a, b) for a, b in zip(resumed_video, video, strict=True)] == [True] * FRAMES
    assert [np.array_equal(a, b) for a, b in zip(resumed_mask, mask, strict=True)] == [True] * FRAMES
    [line] = [r.getMessage() for r in caplog.records if "resumed at frame" in r.getMessage()]
    assert line.startswith("resume: attempt 2 resumed at frame ")
    # Done twice: at most the Segment chunks in flight (2) and the lead frames of the new session;
    # the Edit calls in flight (2 of 2 crops).
    assert segment_frames(first) + segment_frames(second) <= segment_frames(whole) + 2 * 6 + 2
    assert edited_crops(first) + edited_crops(second) <= edited_crops(whole) + 2 * 2
    assert segment_frames(second) < segment_frames(whole) and edited_crops(second) < edited_crops(whole)


def _foreign(work: Path) -> None:
    manifest = json.loads((work / MANIFEST).read_text())
    manifest["fingerprint"]["request"] = "0" * 64
    (work / MANIFEST).write_text(json.dumps(manifest))


def _torn(work: Path) -> None:
    (work / MANIFEST).write_bytes((work / MANIFEST).read_bytes()[:40])


def _masks_changed(work: Path) -> None:
    [npz] = work.glob("tracking-*.npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "tamper, why",
    [
        (_foreign, "it was made for another request"),
        (_torn, "it cannot be read"),
        (_masks_changed, "is not the file the manifest names"),
    ],
)
def test_a_foreign_or_torn_checkpoint_is_ignored_and_the_job_starts_over(
    tmp_path, clip, uninterrupted, caplog, tamper, why
):
    video, _, whole = uninterrupted
    _, second, resumed_video, _ = interrupted_then_resumed(tmp_path, clip, JobStatus.EDITING, 30, caplog, tamper)
    assert [np.array_equal(a, b) for a, b in zip(resumed_video, video, strict=True)] == [True] * FRAMES
    assert any(why in r.getMessage() and "starting over" in r.getMessage() for r in caplog.records)
    assert segment_frames(second) == segment_frames(whole) and edited_crops(second) == edited_crops(whole)
