"""Stage 2, masking: find the objects named by `mask_prompt` with SAM3.

Segments the video chunk by chunk from the start until the prompt matches (usually the first
chunk; an object that enters later is found where it enters, and those Segment results are
kept for propagating). Every matching instance is edited unless `extra.instances` asks for
the largest N. When nothing matches anywhere, the job fails here, before any editing time is
spent, with an error that says which frames were searched.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import numpy as np

from .context import JobContext
from .errors import InvalidArgument
from .extracting import read_frames
from .request import JobStatus
from .stitching import IdStitcher, Objects, frame_objects, largest


@dataclass
class Sighting:
    """Where the objects were first found: one chunk of frames with video-wide object ids."""

    start: int  # index of the chunk's first frame
    frames: list[np.ndarray]  # the chunk's frames (its last ones overlap the next chunk)
    objects: list[Objects]  # per frame of the chunk
    keep: frozenset[int] | None  # ids to edit; None: every object, also ones that appear later
    stitcher: IdStitcher  # carries on numbering objects for propagating


def find_objects(ctx: JobContext, start: int = 0, stop: int | None = None) -> Sighting:
    """Segment chunks of frames [start, stop) until the prompt matches; raise if it never does."""
    info, opts, prompt = ctx.info, ctx.options, ctx.request.mask_prompt
    assert info is not None
    stop = info.frame_count if stop is None else min(stop, info.frame_count)
    ctx.reporter.stage(JobStatus.MASKING, f"looking for {prompt!r}", total_frames=stop - start)
    stitcher = IdStitcher()
    frames_iter = read_frames(info, start)
    chunk_start = start
    while chunk_start < stop:
        frames = [frame for _, frame in islice(frames_iter, min(opts.chunk_size, stop - chunk_start))]
        objects = stitcher.stitch([frame_objects(dets) for dets in ctx.models.segment(frames, prompt)])
        ctx.reporter.advance(chunk_start + len(frames) - start)
        if any(objects):
            keep = None if opts.instances is None else largest(objects, opts.instances)
            found = sorted({g for frame in objects for g in frame})
            ctx.log.info("masking: %r found %d object(s) in frames %d-%d%s", prompt, len(found), chunk_start,
                         chunk_start + len(frames) - 1,
                         "" if keep is None else f"; editing the {len(keep)} largest (ids {sorted(keep)})")
            ctx.reporter.complete(chunk_start + len(frames) - start, f"found {len(found)} object(s)")
            return Sighting(chunk_start, frames, objects, keep, stitcher)
        chunk_start += len(frames)
    raise InvalidArgument(
        "mask_prompt", f"{prompt!r} matched nothing in frames {start}-{stop - 1}; "
        "try a simpler noun phrase (e.g. 'hair', 'car') or check the input video")


def union_mask(objects: Objects, keep: frozenset[int] | None, height: int, width: int) -> np.ndarray:
    """The kept objects of one frame as one mask."""
    mask = np.zeros((height, width), dtype=bool)
    for g, m in objects.items():
        if keep is None or g in keep:
            mask |= m
    return mask
