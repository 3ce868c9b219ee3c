"""Stage 2, masking: find the objects named by `mask_prompt` (or each of `objects`'s) with SAM3.

Opens a tracker (one SAM3 tracking session with every prompt) and segments the video chunk by
chunk from the start until a prompt matches (usually the first chunk; an object that enters later
is found where it enters, and those Segment results are kept for propagating, which carries on
with the same tracker). Every matching instance is edited unless `extra.instances` (or the
object's `instances`) asks for the largest N, picked here among what its prompt found. When
nothing matches anywhere, the job fails here, before any editing time is spent, with an error
that says which frames were searched.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from videoedit.v1.contract import FramePrompt

from ..errors import InvalidArgument, TrackingLost
from ..media.decode import read_frames
from ..media.object_masks import ObjectMasks
from ..vision.prompts import PROMPTED_ID_BASE, prompts_for_call
from ..vision.stitching import IdStitcher, Objects, Targets, frame_objects, frame_prompts, frame_scores, largest
from .context import JobContext, Sighting


def find_objects(ctx: JobContext, start: int = 0, stop: int | None = None) -> Sighting:
    """Segment chunks of frames [start, stop) until a prompt matches; raise if none ever does."""
    info, opts = ctx.info, ctx.options
    prompts = [t.mask_prompt for t in ctx.targets if t.mask_prompt.strip()]
    behind = None
    if not prompts:  # clicks alone: tracked back from the first clicked frame, and on from it
        start = max(start, min(t.first_prompted_frame for t in ctx.visual))
        behind = track_back(ctx, start) if stop is None else None
    stop = info.frame_count if stop is None else min(stop, info.frame_count)
    stitcher = IdStitcher()
    frames_iter = read_frames(info, start, threads=ctx.threads)
    tracker, run_start = ctx.track(prompts), start
    chunk_start = start
    try:
        while chunk_start < stop:
            frames = [frame for _, frame in islice(frames_iter, min(opts.chunk_size, stop - chunk_start))]
            visual = prompts_for_call(ctx.model_prompts, chunk_start, len(frames), run_start, stitcher.session_id)
            try:
                segmentation = tracker.segment(frames, chunk_start - run_start, visual)
            except TrackingLost as err:  # nothing found yet, so nothing to carry over: start afresh here
                ctx.log.warning("masking: %s; tracking starts again at frame %d", err, chunk_start)
                tracker.close()
                tracker, run_start = ctx.track(prompts), chunk_start
                visual = prompts_for_call(ctx.model_prompts, chunk_start, len(frames), run_start, stitcher.session_id)
                segmentation = tracker.segment(frames, 0, visual)
            if chunk_start == start:
                _cut_prompts(ctx, prompts, segmentation.prompts)
            objects = stitcher.stitch(
                [frame_objects(dets) for dets in segmentation.frames],
                continues=tracker.persistent and chunk_start > run_start,
                scores=[frame_scores(dets) for dets in segmentation.frames],
                prompts=[frame_prompts(dets) for dets in segmentation.frames],
            )
            ctx.progress.advance(chunk_start + len(frames) - start)
            if any(objects):
                targets = _kept(ctx, objects, stitcher, chunk_start, chunk_start + len(frames) - 1)
                found = len({g for frame in objects for g in frame})
                ctx.progress.complete(chunk_start + len(frames) - start, f"found {found} object(s)")
                return Sighting(chunk_start, frames, objects, targets, stitcher, tracker, run_start, behind)
            chunk_start += len(frames)
    except BaseException:
        tracker.close()
        raise
    tracker.close()
    field, said = (
        ("visual_prompts", "the clicked object was not found")
        if not prompts
        else ("mask_prompt", f"{prompts[0]!r} matched nothing")
        if len(ctx.targets) == 1
        else ("objects", "no object's mask_prompt matched anything")
    )
    raise InvalidArgument(
        field,
        f"{said} in frames {start}-{stop - 1}; try a simpler noun phrase (e.g. 'hair', 'car') or check the input video",
    )


def track_back(ctx: JobContext, start: int) -> Path | None:
    """Clicks alone, first on frame `start` > 0: the clicked objects tracked from there back to the
    first frame by a session of their own, sent the frames in reverse order (the tracker does not
    know: a video played backwards), one chunk decoded at a time. Their masks go to a file in the
    scratch directory (media.object_masks) that propagating reads for frames [0, start); None
    when there is nothing before `start`. A lost session ends the pass where it got to (said)."""
    if start == 0:
        return None
    info, opts = ctx.info, ctx.options
    on_first = [p for p in ctx.model_prompts if p.frame_index == start]
    asked = [FramePrompt(0, p.points, p.box, PROMPTED_ID_BASE + (p.object_id or 0)) for p in on_first]
    path = ctx.workdir / "backward.masks"
    tracker = ctx.track([])
    end, sent = start + 1, 0  # frames [0, end) are still to track back
    try:
        with ObjectMasks(path, info.height, info.width) as out:
            while end > 0:
                first = max(0, end - opts.chunk_size)
                frames = [frame for _, frame in islice(read_frames(info, first, threads=ctx.threads), end - first)]
                try:
                    segmentation = tracker.segment(frames[::-1], sent, asked if sent == 0 else [])
                except TrackingLost as err:
                    ctx.log.warning("masking: tracking back stopped before frame %d: %s", end - 1, err)
                    break
                for offset, detections in enumerate(segmentation.frames):
                    if (index := end - 1 - offset) < start:
                        out.put(
                            index,
                            {
                                d.object_id - PROMPTED_ID_BASE: d.mask
                                for d in detections
                                if d.object_id >= PROMPTED_ID_BASE
                            },
                        )
                sent, end = sent + len(frames), first
            out.sync()
    finally:
        tracker.close()
    ctx.log.info("masking: the clicked object(s) tracked back from frame %d to frame %d", start, end)
    return path


def _cut_prompts(ctx: JobContext, prompts: list[str], read: list[str]) -> None:
    """Say in the log which prompts SAM3 read only the start of."""
    for asked, as_read in zip(prompts, read, strict=False):
        if as_read != asked:
            ctx.log.warning(
                "masking: mask_prompt %r is longer than SAM3 reads (its text window); it read only %r. "
                "Shorten the prompt to say what matters first.",
                asked,
                as_read,
            )


def _kept(ctx: JobContext, objects: list[Objects], stitcher: IdStitcher, first: int, last: int) -> Targets:
    """Each target's objects to edit: all (also later ones), or its N largest found here."""
    targets = ctx.targets
    every = ctx.tracking((None,) * len(targets))
    keep = []
    for k, target in enumerate(targets):
        its = [every.of_frame(frame, stitcher.prompts, k) for frame in objects]
        found = sorted({g for frame in its for g in frame})
        kept = None if target.instances is None else largest(its, target.instances)
        keep.append(kept)
        ctx.log.info(
            "masking: %r found %d object(s) in frames %d-%d%s",
            target.mask_prompt,
            len(found),
            first,
            last,
            "" if kept is None else f"; editing the {len(kept)} largest (ids {sorted(kept)})",
        )
    return ctx.tracking(tuple(keep))
