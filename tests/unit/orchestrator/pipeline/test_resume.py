"""Resuming a video job from its checkpoints (pipeline.checkpoint), in-process with FakeModels.

A run is stopped the way a server shutdown stops it (JobInterrupted) at a chosen point; a second
run in the same scratch directory carries on from what the first made durable. FakeModels are
deterministic, so the frames the resumed job hands to the encoder must equal an uninterrupted
run's, with only the work in flight when it stopped done twice.

The frames are compared as handed to the encoder, not as decoded from the mp4: x264 does not
always encode the same frames into the same bits. On these 96x64 clips, with other threads busy
in the process, about one encode in fifteen came out different (one x264 thread too, the frames
checked identical), and every decoded frame then differed by a few levels.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest

from orchestrator.errors import JobInterrupted
from orchestrator.jobs.validation import parse_extra
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline import output_paths, run_pipeline, saving
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


class EncodedFrames:
    """What the saving stage hands to the encoder, per output file: one digest per frame (a spy
    on media.encode.encode_h264 as the saving stage calls it; the encoding itself is real)."""

    def __init__(self) -> None:
        self.by_path: dict[Path, list[str]] = {}
        self._encode = saving.encode_h264

    def __call__(self, path: Path, frames: Iterable[np.ndarray | av.VideoFrame], *args, **kwargs) -> int:
        self.by_path[path] = []  # an earlier attempt's frames, if any, are forgotten
        return self._encode(path, self._digested(path, frames), *args, **kwargs)

    def _digested(
        self, path: Path, frames: Iterable[np.ndarray | av.VideoFrame]
    ) -> Iterator[np.ndarray | av.VideoFrame]:
        for frame in frames:
            pixels = frame.to_ndarray() if isinstance(frame, av.VideoFrame) else frame
            self.by_path[path].append(hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest())
            yield frame


@dataclass
class Outputs:
    """A run's output and mask videos: the frames handed to the encoder and the decoded frames."""

    video: list[str]
    mask: list[str]
    decoded: list[np.ndarray]

    def same_frames_as(self, other: Outputs) -> tuple[list[bool], list[bool]]:
        return (
            [a == b for a, b in zip(self.video, other.video, strict=True)],
            [a == b for a, b in zip(self.mask, other.mask, strict=True)],
        )

    def mean_differences(self, other: Outputs) -> list[float]:
        return [float(np.abs(a.astype(int) - b).mean()) for a, b in zip(self.decoded, other.decoded, strict=True)]


@pytest.fixture(scope="module")
def encoded() -> Iterator[EncodedFrames]:
    spy = EncodedFrames()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(saving, "encode_h264", spy)
        yield spy


def outputs(encoded: EncodedFrames, paths) -> Outputs:
    return Outputs(encoded.by_path[paths.video], encoded.by_path[paths.mask], decode(paths.video))


# Decoded, a resumed run's frames may differ from the uninterrupted run's by x264's choices only
# (seen: up to 0.7 grey levels on a frame's mean).
ENCODER_DIFFERENCE = 1.5


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return square_clip(tmp_path_factory.mktemp("clip") / "clip.mkv", appears=3, frames=FRAMES)[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, clip, encoded) -> tuple[Outputs, FakeModels]:
    """The outputs of the job run once to its end, and its models."""
    models, work = FakeModels(), tmp_path_factory.mktemp("whole") / "work"
    paths = run(work, clip, models, RecordedProgress(), StopSignal(), "tests.resume.whole")
    return outputs(encoded, paths), models


def interrupted_then_resumed(tmp_path, clip, encoded, stage: JobStatus, frame: int, caplog, tamper=None):
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
    return first, second, outputs(encoded, paths)


def segment_frames(models: FakeModels) -> int:
    return sum(models.segment_calls)


def edited_crops(models: FakeModels) -> int:
    return sum(c.crops for c in models.edit_calls)


@pytest.mark.parametrize("stage, frame", [(JobStatus.PROPAGATING, 24), (JobStatus.EDITING, 30)])
def test_a_stopped_job_resumes_where_it_was_and_its_output_is_the_uninterrupted_runs(
    tmp_path, clip, encoded, uninterrupted, caplog, stage, frame
):
    expected, whole = uninterrupted
    first, second, resumed = interrupted_then_resumed(tmp_path, clip, encoded, stage, frame, caplog)
    assert resumed.same_frames_as(expected) == ([True] * FRAMES, [True] * FRAMES)
    assert max(resumed.mean_differences(expected)) < ENCODER_DIFFERENCE
    [line] = [r.getMessage() for r in caplog.records if "resumed at frame" in r.getMessage()]
    assert line.startswith("resume: attempt 2 resumed at frame ")
    # Done twice: at most the Segment chunks in flight (2) and the lead frames of the new session;
    # the Edit calls in flight (2 of 2 crops).
    assert segment_frames(first) + segment_frames(second) <= segment_frames(whole) + 2 * 6 + 2
    assert edited_crops(first) + edited_crops(second) <= edited_crops(whole) + 2 * 2
    assert segment_frames(second) < segment_frames(whole) and edited_crops(second) < edited_crops(whole)


def _made_under_another(part: str) -> Callable[[Path], None]:
    """The checkpoint as another request, input content, code version or model identity left it:
    its fingerprint's `part` is not what this attempt computes."""

    def tamper(work: Path) -> None:
        manifest = json.loads((work / MANIFEST).read_text())
        manifest["fingerprint"][part] = "0" * 64
        (work / MANIFEST).write_text(json.dumps(manifest))

    tamper.__name__ = f"another_{part}"
    return tamper


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
        (_made_under_another("request"), "it was made for another request"),
        (_made_under_another("input_sha256"), "the input's content changed"),
        (_made_under_another("code"), "it was made by another version of the orchestrator"),
        (_made_under_another("models"), "it was made with other models"),
        (_torn, "it cannot be read"),
        (_masks_changed, "is not the file the manifest names"),
    ],
)
def test_a_foreign_or_torn_checkpoint_is_ignored_and_the_job_starts_over(
    tmp_path, clip, encoded, uninterrupted, caplog, tamper, why
):
    expected, whole = uninterrupted
    _, second, resumed = interrupted_then_resumed(tmp_path, clip, encoded, JobStatus.EDITING, 30, caplog, tamper)
    assert resumed.same_frames_as(expected) == ([True] * FRAMES, [True] * FRAMES)
    assert any(why in r.getMessage() and "starting over" in r.getMessage() for r in caplog.records)
    assert segment_frames(second) == segment_frames(whole) and edited_crops(second) == edited_crops(whole)
