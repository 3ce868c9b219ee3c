"""The stage driver: runs the original worker's stages in order and announces each one.

Stages are modules named after those stages; they never import each other. What one produces,
the driver hands to the next: extracting -> VideoInfo (the JobContext is built from it),
masking -> Sighting, propagating -> a MaskStore per target, editing -> a CropSpool of edited
boxes per target, smoothing -> a Smoother per target that the saving pass applies, saving -> the
output files.

A job has one target per object it edits (`objects`, or the one-object form's prompts): one
tracking session finds them all, each target's masks are kept apart, and each has an editing
stage of its own with its own instruction (its Edit calls are batched with the others' on the
model server), all pasted in one saving pass.

Later stages run behind earlier ones, each on a thread of its own, following what is final
(concurrency.py has every piece of that): editing behind propagating (TrackedFrames: each frame
once its mask is final), saving behind editing (a FrameWatermark over the edited boxes). So the
model server edits while it tracks, and little is left to do when it has edited the last frame.
A stage that fails, or a cancel, stops them all through the job's StopSignal.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videoedit.v1.contract import FramePrompt

from ..errors import InvalidArgument
from ..media.crop_spool import CropSpool
from ..media.mask_cache import MaskKey
from ..media.mask_store import MaskStore
from ..media.object_list import ObjectList
from ..media.object_masks import ObjectMasks
from ..media.summary import colour_note
from ..models import Models
from ..request import CheckedRequest, JobStatus, Mode, VideoEditRequest
from ..vision.prompts import Pick, PickMissed, picked
from ..vision.stitching import Found, Targets, union_mask
from .carrying import carry_edits, crop_boxes, plan_keyframes
from .checkpoint import Checkpoints, EditingCheckpoint, Fingerprint, TrackingCheckpoint
from .concurrency import BehindStage, FrameWatermark, KeyframePlan, StagesBehind, Stopped, StopSignal, TrackedFrames
from .context import JobContext, MaskSources, Picked, Progress, ReusedMasks, Sighting
from .editing import ResumedEdits, edit_frame, edit_frames, edit_tracked
from .extracting import extract
from .listing import copy_objects, listed_again, save_objects
from .masking import find_objects
from .propagating import mask_store, object_masks, propagate, reassemble, resume_propagating
from .reusing import reuse_masks
from .saving import Layer, OutputPaths, save_mask_video, save_stills, save_video
from .smoothing import Smoother

# Tracked frames propagating may be ahead of editing (their pixels held): a few. When the model
# server's edits are the bottleneck, tracking slows to their pace rather than holding frames.
TRACKED_FRAMES_HELD = 4


def output_paths(request: VideoEditRequest) -> OutputPaths:
    """Where the job's outputs go (context.OutputPaths.of)."""
    assert request.output_dir is not None  # validation always sets it
    return OutputPaths.of(request.output_dir, request.job_id, Mode(request.mode))


def run_pipeline(
    job: CheckedRequest,
    models: Models,
    progress: Progress,
    log: logging.Logger,
    workdir: Path,
    stop: StopSignal,
    paths: OutputPaths,
    threads: int = 0,
    attempt: int = 1,
    masks: MaskSources = MaskSources(),
) -> OutputPaths:
    """Run every stage of the job, writing its outputs to `paths`; returns them, with a summary.
    Raises on failure or when `stop` says so. `threads`: decoder/encoder threads this job may
    use (0: one or more per core). A video job checkpoints its work in `workdir` and, when an
    earlier attempt left checkpoints there, carries on from them (attempt `attempt`). `masks`:
    where masks tracked before may come from (extra.masks_from's job, the mask cache)."""
    if job.request.mode == Mode.SINGLE_FRAME:
        return run_single_frame(job, models, progress, log, workdir, stop, paths)
    try:
        return run_video(job, models, progress, log, workdir, stop, paths, threads, attempt, masks)
    except Stopped:  # a stage running behind failed, and stopped the others: its error says why
        assert stop.failure is not None
        raise stop.failure from None


def run_video(
    job: CheckedRequest,
    models: Models,
    progress: Progress,
    log: logging.Logger,
    workdir: Path,
    stop: StopSignal,
    paths: OutputPaths,
    threads: int,
    attempt: int = 1,
    sources: MaskSources = MaskSources(),
) -> OutputPaths:
    """The video pipeline, stage by stage."""
    req, opts = job.request, job.options

    # 1. Extracting: probe and count the frames (decoded again later, never all held); what an
    # earlier attempt of the job left to carry on from; masks tracked before, if any fit.
    progress.stage(JobStatus.EXTRACTING, f"reading {req.input_video_path.name}")
    info = extract(req.input_video_path, req.max_frames, progress, log, threads)
    identity = models.info().identity
    checkpoints = Checkpoints(workdir, Fingerprint.of(job, identity), log)
    ctx = JobContext(req, opts, info, models, progress, log, workdir, threads, stop, checkpoints)
    _check_prompts_fit(ctx)
    # Several targets: not in the mask cache (its entries hold one prompt's objects).
    # Nor when clicks or boxes steer tracking (picks only choose among the objects: cacheable).
    cacheable = (
        sources.cache is not None and opts.masks_from is None and len(ctx.targets) == 1 and not ctx.model_prompts
    )
    cache_key = _cache_key(ctx, identity) if cacheable else None
    reused = _reused(ctx, sources, cache_key, paths)

    with ExitStack() as spools:
        masks, edits, objects, resumed = _open_spools(ctx, spools, attempt if reused is None else 0)

        # 2. Masking: find the prompted objects (in the first chunk, or where they first appear).
        progress.stage(JobStatus.MASKING, f"looking for {_prompts(ctx)}", total_frames=info.frame_count)
        if reused is not None:
            start: Sighting | Resumed | ReusedMasks | Picked = reused
            progress.complete(0, f"objects tracked before, by {reused.origin}")
        elif resumed is None:
            start = find_objects(ctx)
            spools.callback(start.tracker.close)  # propagating closes it; this covers a cancel before that
        else:
            start = resumed
            progress.complete(0, "objects found by an earlier attempt")
        behind = spools.enter_context(StagesBehind(ctx))  # after the spools: stopped before they close
        edited_ready = [FrameWatermark(stop) for _ in edits]  # how far each of `edits` is final, for saving

        # 3. Propagating: track them through the rest of the video (or read the masks reused).
        # Without keyframes, editing (4) runs behind it: each frame is cropped from tracking's
        # decode and sent to the model server as soon as its mask is final, so the model server
        # edits while it tracks.
        progress.stage(JobStatus.PROPAGATING, f"tracking {_prompts(ctx)}", total_frames=info.frame_count)
        editing = None
        if reused is None and any(target.picks for target in ctx.visual):
            # Clicks pick among the objects on their frames: every object is tracked first, then
            # the masks are written again with the picked ones (editing follows that pass).
            found = _propagate(ctx, start, masks, objects)
            start = Picked(_picked_targets(ctx, _targets(ctx, start), found, objects.path), found)
        if opts.uses_keyframes or req.mode == Mode.MASKS:
            found = _propagate(ctx, start, masks, objects)
        else:
            editing, found = _propagate_with_editing_behind(ctx, behind, start, masks, objects, edits, edited_ready)
        mask_video = behind.start("mask video", save_mask_video, masks, paths)
        unmatched: set[int] = set()
        if isinstance(start, ReusedMasks):
            listing = behind.start("listing", listed_again, start, paths)
        else:
            targets = _targets(ctx, start)
            unmatched = _unmatched(ctx, targets, found)
            listing = behind.start("listing", save_objects, objects, found, targets, paths)
        del start  # a chunk of full frames and their masks: not needed past here
        if req.mode == Mode.MASKS:
            # 6. Saving: the mask video and the objects, and nothing to edit.
            progress.stage(JobStatus.SAVING, "writing the mask video and the objects", total_frames=info.frame_count)
            behind.finish(mask_video, listing)
            listed = _listed(ctx, listing, sources, cache_key, paths)
            said = "".join(f"; objects[{k}] {ctx.targets[k].mask_prompt!r}: matched nothing" for k in sorted(unmatched))
            return dataclasses.replace(paths, summary=f"{listed} object(s) found{said}", objects_found=listed)

        # 4. Editing: crop, edit, resize back to the box (the saving pass pastes it through the
        # eroded, feathered mask). Saving (6, with smoothing, 5, inside its pass) starts now and
        # follows the edited frames as they become final, so the model server is not left idle
        # while it runs after editing. (Not beside tracking: the encoder's buffers would add to
        # tracking's frames, a higher peak that only long videos reach.)
        progress.stage(
            JobStatus.EDITING,
            "editing: " + ", ".join(repr(t.edit_prompt) for t in ctx.targets),
            total_frames=info.frame_count * (2 if editing is None else len(editing)),
        )
        saving, smoothing = _start_saving(ctx, behind, masks, edits, paths, edited_ready)
        if editing is None:
            summary = _edit_keyframes(ctx, behind, masks[0], edits[0], edited_ready[0])
        else:
            behind.finish(*editing)
            summary = _edited(ctx, edits, unmatched)
        for ready in edited_ready:
            ready.finish()

        # 5. Smoothing and 6. saving: what is left of the saving pass (and smoothing in it).
        _finish_saving(ctx, behind, saving, smoothing, mask_video, listing)
        listed = _listed(ctx, listing, sources, cache_key, paths)
    note = colour_note(info)
    return dataclasses.replace(paths, summary=f"{summary}; {note}" if note else summary, objects_found=listed)


def _prompts(ctx: JobContext) -> str:
    """What the job looks for, for its stage messages: "'car'", "'car', 'sky'"."""
    return ", ".join(repr(t.mask_prompt) for t in ctx.targets)


def _targets(ctx: JobContext, start: Sighting | Resumed | Picked) -> Targets:
    """Each target's prompt and kept ids, as masking picked them (or an earlier attempt, or clicks)."""
    if isinstance(start, (Sighting, Picked)):
        return start.targets
    return ctx.tracking(start.tracking.keep)


def _unmatched(ctx: JobContext, targets: Targets, found: Found) -> set[int]:
    """The targets no object was found for (said in the log: not a failure while another matched)."""
    matched = {targets.of(prompt) for prompt in found.prompts.values()}
    unmatched = set(range(len(targets.prompts))) - matched
    for k in sorted(unmatched):
        ctx.log.warning("masking: objects[%d] %r matched nothing; it is not edited", k, targets.prompts[k])
    return unmatched


def _edited(ctx: JobContext, edits: list[CropSpool], unmatched: set[int]) -> str:
    """What editing did, for the final status: per target with several."""
    if len(edits) == 1:
        return f"{edits[0].frames()} frames edited by the model{_which(edits[0])}"
    return "; ".join(
        f"objects[{k}] {t.mask_prompt!r}: "
        + ("matched nothing" if k in unmatched else f"{edits[k].frames()} frames edited{_which(edits[k])}")
        for k, t in enumerate(ctx.targets)
    )


def _cache_key(ctx: JobContext, identity: str) -> MaskKey:
    """What the masks this job would track depend on."""
    assert ctx.checkpoints is not None
    opts = ctx.options
    return MaskKey(
        input_sha256=ctx.checkpoints.fingerprint.input_sha256,
        mask_prompt=ctx.request.mask_prompt,
        tracking=dict(
            chunk_size=opts.chunk_size,
            chunk_overlap=opts.chunk_overlap,
            max_gap=opts.max_gap,
            instances=opts.instances,
            frames=ctx.info.frame_count,
            # Anamorphic frames are tracked in square pixels (models.square_pixels); entries made
            # before that, on stored pixels, do not match.
            pixels="square",
        ),
        segmenter=identity,
        tenant=ctx.request.tenant,
    )


def _reused(ctx: JobContext, sources: MaskSources, key: MaskKey | None, paths: OutputPaths) -> ReusedMasks | None:
    """The masks this job reuses (said in the log), or None: it tracks its own."""
    if sources.masks_from is not None:
        origin = f"job {ctx.options.masks_from!r}"
        reused = ReusedMasks.load(ctx, sources.masks_from, origin, "extra[masks_from]")
    elif sources.cache is not None and key is not None and (entry := sources.cache.find(key)) is not None:
        # The entry's files linked into this job's outputs at once, and read from there: an entry
        # evicted from now on costs this job nothing.
        cached = OutputPaths(video=None, mask=entry.files, objects=entry.listing, object_files=entry.files)
        try:
            copy_objects(ctx, cached, paths)
            reused = ReusedMasks.load(ctx, paths, "the mask cache", "mask cache")
        except (OSError, InvalidArgument) as err:  # evicted meanwhile, or not for this job: it tracks
            ctx.log.warning("masks: the mask cache's entry cannot be used (%s); tracking", err)
            return None
        origin = f"the mask cache (tracked by job {reused.listing.job_id!r})"
        reused = dataclasses.replace(reused, origin=origin)
    else:
        if sources.cache is not None:
            ctx.log.info("masks: none in the mask cache for this input, prompt and tracking; tracking")
        return None
    if picks := ctx.visual[0].picks:  # reused masks have one target (validation)
        listed = set(reused.picked)
        ids = _pick(ctx, picks, reused.paths.object_masks, lambda g: g + 1 in listed)  # files: ids - 1
        reused = dataclasses.replace(reused, picked=tuple(sorted(g + 1 for g in ids)))
        frames = ", ".join(map(str, ctx.visual[0].picked_frames))
        ctx.log.info("masks: the clicks on frame(s) %s keep object(s) %s", frames, list(reused.picked))
    ctx.log.info("masks: reused from %s, object(s) %s: no Segment call", reused.origin, list(reused.picked))
    return reused


def _listed(
    ctx: JobContext, listing: BehindStage[ObjectList], sources: MaskSources, key: MaskKey | None, paths: OutputPaths
) -> int:
    """How many objects the job listed; what it tracked itself goes to the mask cache (unless clicks
    picked among them: an entry's objects edited are what any job on it edits by default)."""
    listed = listing.result()
    picks = any(target.picks for target in ctx.visual)
    if sources.cache is not None and key is not None and listed.job_id == ctx.request.job_id and not picks:
        assert paths.objects is not None and paths.object_files is not None
        sources.cache.put(key, paths.objects, paths.object_files)
    return len(listed.objects)


def _finish_saving(
    ctx: JobContext,
    behind: StagesBehind,
    saving: BehindStage[None],
    smoothing: BehindStage[None] | None,
    mask_video: BehindStage[None],
    listing: BehindStage[ObjectList],
) -> None:
    """Steps 5 and 6: the saving pass, running since editing began, is followed to its end, its
    smoothing reported as a stage of its own."""
    req, frames = ctx.request, ctx.info.frame_count
    # 5. Smoothing: temporal EMA inside the mask, done by the saving pass (what is left of it).
    if smoothing is not None:
        ctx.progress.stage(
            JobStatus.SMOOTHING,
            f"smoothing ({ctx.options.smoothing_mode}, window {req.smoothing_window}, alpha {req.smoothing_alpha})",
            total_frames=frames,
        )
        behind.finish(smoothing)
    # 6. Saving: one pass over the source pasting (and smoothing) the boxes -> H.264 mp4 with the
    # source's fps and audio; the mask video.
    ctx.progress.stage(JobStatus.SAVING, "encoding the output video", total_frames=2 * frames)
    behind.finish(saving, mask_video, listing)


@dataclass(frozen=True)
class Resumed:
    """What an earlier attempt left that this one carries on from (checkpoint.Resume, with the
    editing resume point no further than the masks it can trust)."""

    tracking: TrackingCheckpoint
    edited_up_to: int  # frames [0, edited_up_to) have their edits in the spool (or none)
    editing: EditingCheckpoint | None


def _open_spools(
    ctx: JobContext, spools: ExitStack, attempt: int
) -> tuple[list[MaskStore], list[CropSpool], ObjectMasks, Resumed | None]:
    """The job's mask stores and crop spools (one per target) and object masks: empty, or as an
    earlier attempt left them when its checkpoint is this job's (then the Resumed to carry on from)."""
    info, checkpoints, targets = ctx.info, ctx.checkpoints, range(len(ctx.targets))
    assert checkpoints is not None
    resume = checkpoints.load(info.height, info.width)
    resumed = None
    if resume is not None:
        written = resume.tracking.assembly.written
        # Keyframe plans are not checkpointed: with keyframes, editing starts over; so it does with
        # several targets (one manifest, written by one editing stage).
        editing = resume.editing
        if editing is None or ctx.options.uses_keyframes or len(targets) > 1:
            editing = None
        edited_up_to = min(editing.final, written) if editing is not None else 0
        try:
            masks = [spools.enter_context(mask_store(ctx, k, resume_up_to=written)) for k in targets]
            objects = spools.enter_context(object_masks(ctx, resume_up_to=written))
            edits = [
                spools.enter_context(
                    CropSpool(ctx.workdir / f"edited-{k}.crops", info.frame_count, resume_up_to=edited_up_to)
                )
                for k in targets
            ]
        except ValueError as err:
            ctx.log.warning("resume: the spools of an earlier attempt are ignored (%s); starting over", err)
            checkpoints.clear()
        else:
            resumed = Resumed(resume.tracking, edited_up_to, editing)
            ctx.log.info(
                "resume: attempt %d resumed at frame %d (tracking) / %d (editing)",
                attempt,
                resume.tracking.received,
                edited_up_to,
            )
            return masks, edits, objects, resumed
    masks = [spools.enter_context(mask_store(ctx, k)) for k in targets]
    objects = spools.enter_context(object_masks(ctx))
    edits = [spools.enter_context(CropSpool(ctx.workdir / f"edited-{k}.crops", info.frame_count)) for k in targets]
    return masks, edits, objects, None


def _check_prompts_fit(ctx: JobContext) -> None:
    """Every click and box on a frame of the video, inside it (pixels of the upright frame); the
    job fails naming the prompt otherwise, before any model call."""
    info = ctx.info
    for k, target in enumerate(ctx.targets):
        name = f"objects[{k}].visual_prompts" if ctx.request.objects else "visual_prompts"
        for i, prompt in enumerate(target.visual_prompts):
            if prompt.frame_index >= info.frame_count:
                raise InvalidArgument(
                    f"{name}[{i}].frame_index",
                    f"{prompt.frame_index} is past the end: the video has {info.frame_count} frames",
                )
            as_sent = FramePrompt(prompt.frame_index, prompt.points, prompt.box, prompt.object or 0)
            if problem := as_sent.problem(info.width, info.height):
                raise InvalidArgument(f"{name}[{i}]", problem)


def _picked_targets(ctx: JobContext, targets: Targets, found: Found, tracked: Path) -> Targets:
    """`targets` with each one's objects picked by its clicks among those it tracked (`tracked`:
    the objects' masks file); InvalidArgument naming a positive click no object contains."""
    keep = list(targets.keep)
    for k, visual in enumerate(ctx.visual):
        if visual.picks:
            ids = _pick(ctx, visual.picks, tracked, lambda g, k=k: targets.editing(g, found.prompts.get(g)) == k)
            keep[k] = ids
            ctx.log.info(
                "masking: the clicks on frame(s) %s keep object(s) %s of %r",
                ", ".join(map(str, visual.picked_frames)),
                [g + 1 for g in sorted(ids)],
                targets.prompts[k],
            )
    return ctx.tracking(tuple(keep))


def _pick(ctx: JobContext, picks: tuple[Pick, ...], tracked: Path, candidate: Callable[[int], bool]) -> frozenset[int]:
    """The ids (as the masks file holds them) of the `candidate` objects the clicks pick."""
    info = ctx.info
    with ObjectMasks.open(tracked, info.height, info.width) as objects:
        records = objects.by_frame()

        def masks_on(frame: int) -> dict[int, np.ndarray]:
            on_frame = records[frame] if frame < len(records) else []
            return {r.object_id: objects.union([r]) for r in on_frame if candidate(r.object_id)}

        try:
            return picked(picks, masks_on) or frozenset()
        except PickMissed as err:
            raise InvalidArgument(err.pick.field, str(err)) from None


def _propagate(
    ctx: JobContext,
    start: Sighting | Resumed | ReusedMasks | Picked,
    masks: list[MaskStore],
    objects: ObjectMasks,
    tracked: list[TrackedFrames] | None = None,
) -> Found:
    """Propagating from where masking found the objects, or from an earlier attempt's checkpoint,
    or the masks reused (one target: validation says so); returns the objects' scores and prompts."""
    tracked = tracked or []
    if isinstance(start, Picked):
        reassemble(ctx, start.targets, start.found, masks, objects, tracked)
        return start.found
    if isinstance(start, ReusedMasks):
        reuse_masks(ctx, start, masks[0], tracked[0] if tracked else None)
        return Found()
    if isinstance(start, Sighting):
        return propagate(ctx, start, masks, objects, tracked)
    return resume_propagating(ctx, start.tracking, masks, objects, tracked, start.edited_up_to)


def _propagate_with_editing_behind(
    ctx: JobContext,
    behind: StagesBehind,
    start: Sighting | Resumed | ReusedMasks | Picked,
    masks: list[MaskStore],
    objects: ObjectMasks,
    edits: list[CropSpool],
    edited_ready: list[FrameWatermark],
) -> tuple[list[BehindStage[int]], Found]:
    """Propagating, handing each frame over to each target's editing, which runs behind it, once
    its mask is final; returns the editing stages (still running) and the objects' scores and
    prompts."""
    tracked = [TrackedFrames(TRACKED_FRAMES_HELD, ctx.stop) for _ in masks]
    resumed_edits = None
    if isinstance(start, Resumed) and start.editing is not None:  # one target only (_open_spools)
        already = EditingCheckpoint(start.edited_up_to, start.editing.anchor)
        resumed_edits = ResumedEdits(already, [masks[0].box(i) for i in range(start.edited_up_to)])
    several = len(masks) > 1
    editing = [
        behind.start(
            f"editing {k + 1}" if several else "editing",
            _edit_target,
            k,
            tracked[k],
            edits[k],
            edited_ready[k],
            resumed_edits,
        )
        for k in range(len(masks))
    ]
    return editing, _propagate(ctx, start, masks, objects, tracked)


def _edit_target(
    ctx: JobContext,
    k: int,
    tracked: TrackedFrames,
    edits: CropSpool,
    ready: FrameWatermark,
    resumed: ResumedEdits | None,
) -> int:
    """Target `k`'s editing stage: edit_tracked with its own instruction (checkpointed only when it
    is the job's one target: one manifest, one editing stage writing it)."""
    target = ctx.for_target(k)
    if len(ctx.targets) > 1:
        target = dataclasses.replace(target, checkpoints=None)
    return edit_tracked(target, tracked, edits, ready, resumed)


def _start_saving(
    ctx: JobContext,
    behind: StagesBehind,
    masks: list[MaskStore],
    edits: list[CropSpool],
    paths: OutputPaths,
    edited_ready: list[FrameWatermark],
) -> tuple[BehindStage[None], BehindStage[None] | None]:
    """Start the saving pass behind editing, each target a layer with a Smoother of its own;
    returns it and smoothing, the part of it that is a stage of its own (None without smoothing:
    the last target's Smoother reports it, all of them smoothing each frame in turn)."""
    layers = [Layer(m, e, ready) for m, e, ready in zip(masks, edits, edited_ready, strict=True)]
    if not ctx.request.apply_smoothing:
        return behind.start("saving", save_video, layers, paths), None
    tallies = [behind.tally() for _ in layers]
    smoothers = [Smoother(dataclasses.replace(ctx, progress=tally)) for tally in tallies]
    layers = [dataclasses.replace(layer, place=smoother) for layer, smoother in zip(layers, smoothers, strict=True)]
    saving = behind.start("saving", save_video, layers, paths)
    return saving, BehindStage("smoothing", smoothers[-1].finished, tallies[-1])


def _edit_keyframes(
    ctx: JobContext, behind: StagesBehind, masks: MaskStore, edits: CropSpool, edited_ready: FrameWatermark
) -> str:
    """The model edits the keyframes as they are planned while, behind it, each gap is carried as
    soon as its closing keyframe is spooled (and the saving pass follows the carried frames);
    returns what was done, for the final status."""
    info, opts = ctx.info, ctx.options
    boxes = crop_boxes(ctx, masks)
    keys, keys_ready = KeyframePlan(info.frame_count, ctx.stop), FrameWatermark(ctx.stop)
    planning = behind.start("planning", plan_keyframes, masks, boxes, keys)
    carrying = behind.start("carrying", carry_edits, boxes, keys, edits, info.frame_count, edited_ready, keys_ready)
    edit_frames(ctx, masks, edits, keys, ready=keys_ready)
    keys_ready.finish()
    planning.result()  # done: editing read the whole plan
    edited = keys.count()
    behind.finish(carrying)
    summary = f"{edited} frames edited by the model, {carrying.result()} carried from keyframes"
    ctx.log.info("editing: %s (%s keyframes, at most %d apart)", summary, opts.keyframes, opts.keyframe_interval)
    ctx.progress.advance(2 * info.frame_count, summary)
    return summary


# Stretches of edited frames a final status lists (more go as "..."): enough to say which part of
# the video changed, short enough for one line.
LISTED_STRETCHES = 4


def _which(edits: CropSpool) -> str:
    """Which frames have an edit, for the final status: " (frames 3-20, 25-47)"."""
    runs = edits.stretches()
    if not runs:
        return ""
    listed = ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:LISTED_STRETCHES])
    return f" (frames {listed}{', ...' if len(runs) > LISTED_STRETCHES else ''})"


def run_single_frame(
    job: CheckedRequest,
    models: Models,
    progress: Progress,
    log: logging.Logger,
    workdir: Path,
    stop: StopSignal,
    paths: OutputPaths,
) -> OutputPaths:
    """Edit one frame (extra frame_index) into PNGs, for fast prompt tuning."""
    req, opts = job.request, job.options
    index = opts.frame_index

    progress.stage(JobStatus.EXTRACTING, f"reading frame {index} of {req.input_video_path.name}")
    info = extract(req.input_video_path, index + 1, progress, log)
    if info.frame_count <= index:
        raise InvalidArgument("extra[frame_index]", f"{index} is past the last frame ({info.frame_count - 1})")
    ctx = JobContext(req, opts, info, models, progress, log, workdir, stop=stop)

    progress.stage(JobStatus.MASKING, f"looking for {req.mask_prompt!r}", total_frames=1)
    sighting = find_objects(ctx, start=index, stop=index + 1)
    sighting.tracker.close()
    found, targets = sighting.stitcher.prompts, sighting.targets
    frame = sighting.frames[0]
    mask = union_mask(
        sighting.objects[0], lambda g: targets.editing(g, found.get(g)) is not None, info.height, info.width
    )

    progress.stage(JobStatus.EDITING, f"editing: {req.edit_prompt!r}", total_frames=1)
    edited = edit_frame(ctx, index, frame, mask)
    progress.advance(1)

    progress.stage(JobStatus.SAVING, "writing PNGs")
    save_stills(ctx, edited, mask, paths)
    return paths
