"""What the stages get (the job, the probed video, the models, progress, the job's logger, a
scratch directory, its stop signal and checkpoints; built by the driver once the video is probed) and what
one stage hands the next through the driver. How stages running at the same time hand frames
over is in concurrency.py."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from videoedit.v1.contract import FramePrompt

from ..errors import InvalidArgument
from ..media.decode import VideoInfo
from ..media.mask_cache import MaskCache
from ..media.object_list import ObjectList
from ..models import Models, Tracker
from ..models.square_pixels import square_pixels
from ..request import CheckedRequest, EditOptions, JobStatus, Mode, ObjectEdit, VideoEditRequest
from ..vision.crop import Box
from ..vision.prompts import TargetPrompts, target_prompts
from ..vision.stitching import Found, IdStitcher, Keep, Objects, Targets
from .checkpoint import Checkpoints
from .concurrency import StopSignal


class Progress(Protocol):
    """Where the pipeline reports what it is doing (jobs.reporter.JobReporter; concurrency.Tally
    for a stage running behind). Every call is also a checkpoint: it raises when the job's
    StopSignal says stop (JobCancelled and its kin, or concurrency.Stopped)."""

    def stage(self, stage: JobStatus, message: str, total_frames: int | None = None) -> None:
        """A new stage starts (called by the driver only)."""

    def advance(self, done: int, message: str | None = None) -> None:
        """`done` frames of the current stage are finished."""

    def complete(self, done: int, message: str | None = None) -> None:
        """The current stage ended after `done` frames, earlier than planned."""

    def probed(self, media: dict[str, Any]) -> None:
        """What the input holds (media.summary.MediaSummary's fields; extracting only)."""


@dataclass(frozen=True)
class OutputPaths:
    """Where a job's outputs go (or, `staged`, where one attempt of it writes them first)."""

    video: Path | None  # {job_id}_output.mp4 (.png in single-frame mode; none in masks mode)
    mask: Path  # {job_id}_mask.mp4 (.png)
    objects: Path | None = None  # {job_id}_objects.json (video and masks modes)
    object_files: Path | None = None  # {job_id}_objects/: a preview per object, every object's masks
    summary: str = ""  # what the job did, for its final status (e.g. frames edited / carried)
    objects_found: int | None = None  # objects tracked, for the final status

    @classmethod
    def of(cls, output_dir: Path, job_id: str, mode: Mode) -> OutputPaths:
        """A job's outputs in `output_dir`: mp4 for videos, png for single frames; the objects of a
        video or masks job; no edited video from a masks job."""
        if mode == Mode.SINGLE_FRAME:
            return cls(video=output_dir / f"{job_id}_output.png", mask=output_dir / f"{job_id}_mask.png")
        return cls(
            video=None if mode == Mode.MASKS else output_dir / f"{job_id}_output.mp4",
            mask=output_dir / f"{job_id}_mask.mp4",
            objects=output_dir / f"{job_id}_objects.json",
            object_files=output_dir / f"{job_id}_objects",
        )

    @property
    def object_masks(self) -> Path:
        """Every object's masks (media.object_masks; pipeline.listing writes it)."""
        assert self.object_files is not None
        return self.object_files / "masks.bin"

    def preview(self, object_id: int) -> Path:
        """Object `object_id`'s preview (pipeline.listing writes it)."""
        assert self.object_files is not None
        return self.object_files / f"object_{object_id}.png"

    def staged(self, attempt: int) -> OutputPaths:
        """Where attempt `attempt` of the job writes these outputs until its end is recorded:
        hidden names beside them with the same suffix (the muxer goes by it), so a run that lost
        its claim can never overwrite the outputs of the run that holds it."""

        def hidden(path: Path) -> Path:
            return path.with_name(f".{path.stem}.attempt-{attempt}{path.suffix}")

        def maybe(path: Path | None) -> Path | None:
            return None if path is None else hidden(path)

        return OutputPaths(maybe(self.video), hidden(self.mask), maybe(self.objects), maybe(self.object_files))

    def files(self) -> list[Path]:
        """Every output (files, and the objects' directory), in one order for any OutputPaths."""
        return [p for p in (self.video, self.mask, self.objects, self.object_files) if p is not None]


@dataclass(frozen=True)
class MaskSources:
    """Where a job may find masks tracked before: the outputs of the job extra.masks_from names
    (jobs.reuse resolved it), and the mask cache (None: none)."""

    masks_from: OutputPaths | None = None
    cache: MaskCache | None = None


@dataclass(frozen=True)
class ReusedMasks:
    """Masks tracked before, for this job: where they are, whose they are, which objects it edits."""

    listing: ObjectList
    paths: OutputPaths  # the listing and the objects' files (another job's outputs, a mask cache entry)
    origin: str  # for the log: "job 'x'", "the mask cache"
    picked: tuple[int, ...]  # the object ids edited

    @classmethod
    def load(cls, ctx: JobContext, paths: OutputPaths, origin: str, field: str) -> ReusedMasks:
        """The masks at `paths`, checked against this job's input (content, frames, size) and
        `extra.objects`; InvalidArgument naming `field` (or extra[objects]) when they do not fit."""
        assert paths.objects is not None and ctx.checkpoints is not None
        try:
            listing = ObjectList.read(paths.objects)
        except (OSError, ValueError) as err:
            raise InvalidArgument(field, f"the masks of {origin} cannot be read: {err}") from None
        info = ctx.info
        why = listing.reusable_for(ctx.checkpoints.fingerprint.input_sha256)
        if why is None and (listing.frames, listing.width, listing.height) != (
            info.frame_count,
            info.width,
            info.height,
        ):
            why = (
                f"{origin} tracked {listing.frames} frames of {listing.width}x{listing.height}; this job "
                f"reads {info.frame_count} of {info.width}x{info.height} (give both the same max_frames)"
            )
        if why is not None:
            raise InvalidArgument(field, why)
        try:
            picked = listing.picked(ctx.options.objects)
        except ValueError as err:
            raise InvalidArgument("extra[objects]", str(err)) from None
        return cls(listing, paths, origin, picked)


@dataclass(frozen=True)
class Pasted:
    """A frame's edit as the saving pass pasted it: its box, the pixels, the paste weight."""

    box: Box
    pixels: np.ndarray  # RGB uint8, box-sized: the source with the edit pasted in
    weight: np.ndarray  # uint8 alpha, box-sized (vision.compositing.paste_weight)


class FrameFilter(Protocol):
    """Work that the saving pass does on each decoded source frame, in order (smoothing)."""

    def __call__(self, index: int, frame: np.ndarray | None, pasted: Pasted | None) -> None:
        """Write frame `index`'s final box into `frame` (the decoded source, RGB), given its edit as
        pasted (None: the frame has no edit, and `frame` may be None: not converted to RGB)."""


@dataclass(frozen=True)
class JobContext:
    """What every stage of one job gets: the checked request, the probed input, the models, where
    to report progress and log, a scratch directory, and the job's stop signal (which every wait
    between stages watches)."""

    request: VideoEditRequest
    options: EditOptions
    info: VideoInfo  # the probed input
    models: Models
    progress: Progress
    log: logging.Logger
    workdir: Path  # scratch space, removed when the job ends
    threads: int = 0  # decoder/encoder threads (0: FFmpeg/x264 pick, one or more per core)
    stop: StopSignal = field(default_factory=StopSignal)
    checkpoints: Checkpoints | None = None  # where stages record what they made durable (None: nowhere)

    @property
    def targets(self) -> tuple[ObjectEdit, ...]:
        """The objects the job edits, each with its own instruction (CheckedRequest.targets)."""
        return CheckedRequest(self.request, self.options).targets

    @property
    def visual(self) -> tuple[TargetPrompts, ...]:
        """Each target's clicks and boxes by what they ask (vision.prompts)."""
        one = not self.request.objects
        return tuple(
            target_prompts(
                t.visual_prompts,
                bool(t.mask_prompt.strip()),
                "visual_prompts" if one else f"objects[{k}].visual_prompts",
            )
            for k, t in enumerate(self.targets)
        )

    @property
    def model_prompts(self) -> tuple[FramePrompt, ...]:
        """Every target's prompts for the model (exemplars, the tracker's clicks), by video frame."""
        return tuple(p for target in self.visual for p in target.model)

    def tracking(self, keep: Keep) -> Targets:
        """The targets as tracking sees them: each one's mask prompt, and `keep`, the ids each edits."""
        return Targets(tuple(t.mask_prompt for t in self.targets), keep)

    def track(self, prompts: Sequence[str]) -> Tracker:
        """A new tracker of `prompts` (Models.track) that sees square pixels whatever the source's
        sample aspect ratio (models.square_pixels)."""
        return square_pixels(self.models.track(prompts), self.info.sample_aspect_ratio)

    @property
    def sar(self) -> float:
        """The source's sample aspect ratio (1.0: square pixels), for crop geometry."""
        return float(self.info.sample_aspect_ratio)

    def for_target(self, k: int) -> JobContext:
        """This context for target `k` alone: its request is the one-object form with that target's
        prompts, so a stage written for one object (editing) runs unchanged with its instruction."""
        target = self.targets[k]
        request = dataclasses.replace(
            self.request, mask_prompt=target.mask_prompt, edit_prompt=target.edit_prompt, objects=[]
        )
        return dataclasses.replace(self, request=request)


@dataclass(frozen=True)
class Picked:
    """Tracking done, and each target's objects picked by clicks (vision.prompts): the masks are
    written again from the objects tracked (propagating.reassemble)."""

    targets: Targets
    found: Found


@dataclass
class Sighting:
    """Where the objects were first found: one chunk of frames with video-wide object ids."""

    start: int  # index of the chunk's first frame
    frames: list[np.ndarray]  # the chunk's frames (its last ones overlap the next chunk)
    objects: list[Objects]  # per frame of the chunk
    targets: Targets  # each target's prompt and the ids it edits
    stitcher: IdStitcher  # carries on numbering objects (and keeping their prompts) for propagating
    tracker: Tracker  # the tracking session that found them: propagating carries it on (and closes it)
    run_start: int  # the video index of the tracker's first frame
    behind: Path | None = None  # the objects tracked back from `start` (masking.track_back), if any
