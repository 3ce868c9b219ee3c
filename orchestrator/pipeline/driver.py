"""The stage driver: runs the seed's stages in order and announces each one.

Stages are modules named after the seed's stages; they never import each other. What one
produces, the driver hands to the next: extracting -> VideoInfo (the JobContext is built from
it), masking -> Sighting, propagating -> MaskStore, editing -> a CropSpool of edited boxes,
smoothing -> a Smoother that the saving pass applies, saving -> the output files.

Later stages run behind earlier ones, each on a thread of its own, following what is final:
editing behind propagating (TrackedFrames: each frame once its mask is final), saving behind
editing (a FrameWatermark over the edited boxes). So the model server edits while it tracks, and
little is left to do when it has edited the last frame.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack
from pathlib import Path

from ..errors import InvalidArgument
from ..media.crop_spool import CropSpool
from ..models import Models
from ..request import CheckedRequest, JobStatus, VideoEditRequest
from ..vision.stitching import union_mask
from .background import in_background
from .context import FrameWatermark, JobContext, KeyframePlan, Progress, Stopped, Tally, TrackedFrames
from .carrying import carry_edits, crop_boxes, plan_keyframes
from .editing import edit_frame, edit_frames, edit_tracked
from .extracting import extract
from .masking import find_objects
from .propagating import mask_store, propagate
from .saving import OutputPaths, save_mask_video, save_stills, save_video
from .smoothing import Smoother


# How long a stage running behind waits to be told to stop (it stops at its next frame).
BEHIND_STOP_S = 60.0
# Tracked frames propagating may be ahead of editing (their pixels held): a few. When the model
# server's edits are the bottleneck, tracking slows to their pace rather than holding frames.
TRACKED_FRAMES_HELD = 4


def output_paths(request: VideoEditRequest) -> OutputPaths:
    """Where the job's outputs go: mp4 for videos, png for single frames."""
    assert request.output_dir is not None  # validation always sets it
    ext = "png" if request.mode == "single_frame" else "mp4"
    return OutputPaths(video=request.output_dir / f"{request.job_id}_output.{ext}",
                       mask=request.output_dir / f"{request.job_id}_mask.{ext}")


def run_pipeline(job: CheckedRequest, models: Models, progress: Progress, log: logging.Logger,
                 workdir: Path, threads: int = 0) -> OutputPaths:
    """Run every stage of the job; returns its outputs. Raises on failure or cancellation.
    `threads`: decoder/encoder threads this job may use (0: one or more per core)."""
    if job.request.mode == "single_frame":
        return run_single_frame(job, models, progress, log, workdir)
    req, opts = job.request, job.options
    paths = output_paths(req)

    # 1. Extracting: probe and count the frames (decoded again later, never all held).
    progress.stage(JobStatus.EXTRACTING, f"reading {req.input_video_path.name}")
    info = extract(req.input_video_path, req.max_frames, progress, log, threads)
    ctx = JobContext(req, opts, info, models, progress, log, workdir, threads)

    # 2. Masking: find the prompted objects (in the first chunk, or where they first appear).
    progress.stage(JobStatus.MASKING, f"looking for {req.mask_prompt!r}", total_frames=info.frame_count)
    sighting = find_objects(ctx)

    with ExitStack() as spools:
        spools.callback(sighting.tracker.close)  # propagating closes it; this covers a cancel before that
        masks = spools.enter_context(mask_store(ctx))
        edits = spools.enter_context(CropSpool(workdir / "edited.crops", info.frame_count))
        edited_ready = FrameWatermark()
        behind = _Behind(ctx, spools, edited_ready)  # after the spools: stopped before they close
        keyed = opts.uses_keyframes

        # 3. Propagating: track them through the rest of the video. Without keyframes, editing (4)
        # runs behind it: each frame is cropped from tracking's decode and sent to the model server
        # as soon as its mask is final, so the model server edits while it tracks.
        progress.stage(JobStatus.PROPAGATING, f"tracking {req.mask_prompt!r}", total_frames=info.frame_count)
        if keyed:
            propagate(ctx, sighting, masks)
        else:
            tracked = TrackedFrames(TRACKED_FRAMES_HELD)
            behind.watch(tracked)
            editing = behind.start("editing", edit_tracked, tracked, edits, edited_ready)
            try:
                propagate(ctx, sighting, masks, tracked)
            except Stopped:  # editing failed and stopped the handover: its error says why
                editing[0].result()
                raise
        del sighting  # a chunk of full frames and their masks: not needed past here
        mask_video = behind.start("mask video", save_mask_video, masks, paths)

        # 4. Editing: crop, edit, resize back to the box (the saving pass pastes it through the
        # eroded, feathered mask). With keyframes, the model edits those and the edit is carried to
        # the frames between them (all masks are known first). Saving (6, with smoothing, 5, inside
        # its pass) starts now and follows the edited frames as they become final, so the model
        # server is not left idle while it runs after editing. (Not beside tracking: the encoder's
        # buffers would add to tracking's frames, a higher peak that only long videos reach.)
        progress.stage(JobStatus.EDITING, f"editing: {req.edit_prompt!r}",
                       total_frames=info.frame_count * (2 if keyed else 1))
        if req.apply_smoothing:  # smoothing runs inside the saving pass (one decode of the source)
            smoothing_tally = Tally()
            smoother = Smoother(dataclasses.replace(ctx, progress=smoothing_tally))
            saving = behind.start("saving", save_video, masks, edits, paths, edited_ready, smoother)
            smoothing = (_part_of(smoother.finished, saving[0]), smoothing_tally)
        else:
            saving = behind.start("saving", save_video, masks, edits, paths, edited_ready)
        if keyed:
            # The model edits the keyframes as they are planned while, behind it, each gap is
            # carried as soon as its closing keyframe is spooled (and the saving pass follows the
            # carried frames).
            boxes = crop_boxes(ctx, masks)
            keys, keys_ready = KeyframePlan(info.frame_count), FrameWatermark()
            behind.watch(keys.decided)
            behind.watch(keys_ready)
            planning = behind.start("planning", plan_keyframes, masks, boxes, keys)
            carrying = behind.start("carrying", carry_edits, boxes, keys, edits, info.frame_count, edited_ready,
                                    keys_ready)
            try:
                edit_frames(ctx, masks, edits, keys, ready=keys_ready)
            except Stopped:  # the plan stopped: planning failed, and its error says why
                planning[0].result()
                raise
            keys_ready.finish()
            planning[0].result()  # done (editing read the whole plan): raises if planning failed
            edited = keys.count()
            behind.finish(carrying)
            carried = carrying[0].result()
            summary = f"{edited} frames edited by the model, {carried} carried from keyframes"
            log.info("editing: %s (%s keyframes, at most %d apart)", summary, opts.keyframes, opts.keyframe_interval)
            progress.advance(2 * info.frame_count, summary)
        else:
            behind.finish(editing)
            summary = f"{edits.frames()} frames edited by the model"
        edited_ready.finish()

        # 5. Smoothing: temporal EMA inside the mask, done by the saving pass (what is left of it).
        if req.apply_smoothing:
            progress.stage(JobStatus.SMOOTHING, f"smoothing ({opts.smoothing_mode}, window {req.smoothing_window}, "
                                                f"alpha {req.smoothing_alpha})", total_frames=info.frame_count)
            behind.finish(smoothing)

        # 6. Saving: one pass over the source pasting (and smoothing) the boxes -> H.264 mp4 with
        # the source's fps and audio; the mask video.
        progress.stage(JobStatus.SAVING, "encoding the output video", total_frames=2 * info.frame_count)
        behind.finish(saving, mask_video)
    return dataclasses.replace(paths, summary=summary)


def _part_of(part: Future, whole: Future) -> Future:
    """`part` of the work of `whole`, failing when `whole` fails before `part` is done."""

    def fail_part(done: Future) -> None:
        error = done.exception() if not done.cancelled() else None
        if error is not None:
            try:
                part.set_exception(error)
            except InvalidStateError:  # the part was done already
                pass

    whole.add_done_callback(fail_part)
    return part


class _Behind:
    """Stages running behind the current one, each on a thread of its own with its own progress
    count. When the job ends early, they are stopped (their watermarks) and waited for before the
    spools they read are closed."""

    def __init__(self, ctx: JobContext, spools: ExitStack, *watermarks: FrameWatermark) -> None:
        self._ctx = ctx
        self._running: list[Future] = []
        self._watermarks: tuple[FrameWatermark | TrackedFrames, ...] = watermarks
        spools.callback(self._wait_all)  # runs after the stop below (an ExitStack unwinds backwards)
        spools.callback(self._stop_all)

    def watch(self, handover: FrameWatermark | TrackedFrames) -> None:
        """Stop `handover` too when the job ends early (work behind waits on it)."""
        self._watermarks += (handover,)

    def start(self, name: str, stage: Callable[..., None], *args) -> tuple[Future, Tally]:
        tally = Tally()
        future = in_background(name, stage, dataclasses.replace(self._ctx, progress=tally), *args)
        self._running.append(future)
        return future, tally

    def finish(self, *started: tuple[Future, Tally]) -> None:
        """Wait for work started earlier, reporting its progress (summed) as the current stage's."""
        for future, _ in started:
            while True:
                try:
                    future.result(timeout=0.25)
                    break
                except FutureTimeout:
                    self._ctx.progress.advance(sum(tally.done for _, tally in started))  # a cancel checkpoint too
        self._ctx.progress.advance(sum(tally.done for _, tally in started))

    def _stop_all(self) -> None:
        for watermark in self._watermarks:
            watermark.stop()

    def _wait_all(self) -> None:
        for future in self._running:
            try:
                future.exception(timeout=BEHIND_STOP_S)
            except FutureTimeout:
                self._ctx.log.warning("a stage running behind did not stop within %ss", BEHIND_STOP_S)


def run_single_frame(job: CheckedRequest, models: Models, progress: Progress, log: logging.Logger,
                     workdir: Path) -> OutputPaths:
    """Edit one frame (extra frame_index) into PNGs, for fast prompt tuning."""
    req, opts = job.request, job.options
    paths = output_paths(req)
    index = opts.frame_index

    progress.stage(JobStatus.EXTRACTING, f"reading frame {index} of {req.input_video_path.name}")
    info = extract(req.input_video_path, index + 1, progress, log)
    if info.frame_count <= index:
        raise InvalidArgument("extra[frame_index]", f"{index} is past the last frame ({info.frame_count - 1})")
    ctx = JobContext(req, opts, info, models, progress, log, workdir)

    progress.stage(JobStatus.MASKING, f"looking for {req.mask_prompt!r}", total_frames=1)
    sighting = find_objects(ctx, start=index, stop=index + 1)
    sighting.tracker.close()
    frame, mask = sighting.frames[0], union_mask(sighting.objects[0], sighting.keep, info.height, info.width)

    progress.stage(JobStatus.EDITING, f"editing: {req.edit_prompt!r}", total_frames=1)
    edited = edit_frame(ctx, index, frame, mask)
    progress.advance(1)

    progress.stage(JobStatus.SAVING, "writing PNGs")
    save_stills(ctx, edited, mask, paths)
    return paths
