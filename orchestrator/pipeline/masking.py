"""Stage 2, masking: find the objects named by `mask_prompt` with SAM3.

Opens a tracker (one SAM3 tracking session) and segments the video chunk by chunk from the
start until the prompt matches (usually the first chunk; an object that enters later is found
where it enters, and those Segment results are kept for propagating, which carries on with the
same tracker). Every matching instance is edited unless `extra.instances` asks for
the largest N. When nothing matches anywhere, the job fails here, before any editing time is
spent, with an error that says which frames were searched.
"""

from __future__ import annotations

from itertools import islice

from ..errors import InvalidArgument, TrackingLost
from ..media.decode import read_frames
from ..vision.stitching import IdStitcher, frame_objects, frame_scores, largest
from .context import JobContext, Sighting


def find_objects(ctx: JobContext, start: int = 0, stop: int | None = None) -> Sighting:
    """Segment chunks of frames [start, stop) until the prompt matches; raise if it never does."""
    info, opts, prompt = ctx.info, ctx.options, ctx.request.mask_prompt
    stop = info.frame_count if stop is None else min(stop, info.frame_count)
    stitcher = IdStitcher()
    frames_iter = read_frames(info, start, threads=ctx.threads)
    tracker, run_start = ctx.models.track(prompt), start
    chunk_start = start
    try:
        while chunk_start < stop:
            frames = [frame for _, frame in islice(frames_iter, min(opts.chunk_size, stop - chunk_start))]
            try:
                segmentation = tracker.segment(frames, chunk_start - run_start)
            except TrackingLost as err:  # nothing found yet, so nothing to carry over: start afresh here
                ctx.log.warning("masking: %s; tracking starts again at frame %d", err, chunk_start)
                tracker.close()
                tracker, run_start = ctx.models.track(prompt), chunk_start
                segmentation = tracker.segment(frames, 0)
            if chunk_start == start and segmentation.prompt != prompt:
                ctx.log.warning(
                    "masking: mask_prompt is longer than SAM3 reads (its text window); it read only "
                    "%r. Shorten the prompt to say what matters first.",
                    segmentation.prompt,
                )
            objects = stitcher.stitch(
                [frame_objects(dets) for dets in segmentation.frames],
                continues=tracker.persistent and chunk_start > run_start,
                scores=[frame_scores(dets) for dets in segmentation.frames],
            )
            ctx.progress.advance(chunk_start + len(frames) - start)
            if any(objects):
                keep = None if opts.instances is None else largest(objects, opts.instances)
                found = sorted({g for frame in objects for g in frame})
                ctx.log.info(
                    "masking: %r found %d object(s) in frames %d-%d%s",
                    prompt,
                    len(found),
                    chunk_start,
                    chunk_start + len(frames) - 1,
                    "" if keep is None else f"; editing the {len(keep)} largest (ids {sorted(keep)})",
                )
                ctx.progress.complete(chunk_start + len(frames) - start, f"found {len(found)} object(s)")
                return Sighting(chunk_start, frames, objects, keep, stitcher, tracker, run_start)
            chunk_start += len(frames)
    except BaseException:
        tracker.close()
        raise
    tracker.close()
    raise InvalidArgument(
        "mask_prompt",
        f"{prompt!r} matched nothing in frames {start}-{stop - 1}; "
        "try a simpler noun phrase (e.g. 'hair', 'car') or check the input video",
    )
