"""Stage 2, masking: find the object named by `mask_prompt` with SAM3.

Segments the first chunk of frames. Every instance that matches the prompt
is edited (a text prompt returns all matching instances). When nothing
matches, the job fails here with an error that says so, before any editing
time is spent.
"""

from __future__ import annotations

from itertools import islice

import numpy as np

from .context import JobContext
from .extracting import read_frames
from .errors import InvalidArgument
from .model_client import Detection
from .request import JobStatus


def segment_first_chunk(ctx: JobContext, start: int = 0, count: int | None = None,
                        ) -> tuple[list[np.ndarray], list[list[Detection]]]:
    """The frames of the first chunk (from `start`, `count` long) and their detections."""
    assert ctx.info is not None
    count = min(count or ctx.options.chunk_size, ctx.info.frame_count - start)
    ctx.reporter.stage(JobStatus.MASKING, f"looking for {ctx.request.mask_prompt!r}", total_frames=count)
    frames = [frame for _, frame in islice(read_frames(ctx.info, start), count)]
    detections = ctx.models.segment(frames, ctx.request.mask_prompt)
    found = [start + i for i, dets in enumerate(detections) if dets]
    if not found:
        raise InvalidArgument(
            "mask_prompt", f"{ctx.request.mask_prompt!r} matched nothing in frames {start}-{start + count - 1}; "
            "try a simpler noun phrase (e.g. 'hair', 'car') or check the input video")
    ids = sorted({d.object_id for dets in detections for d in dets})
    ctx.log.info("masking: %r found %d object(s) (ids %s) on %d of the first %d frames",
                 ctx.request.mask_prompt, len(ids), ids, len(found), count)
    ctx.reporter.advance(count)
    return frames, detections


def union_mask(detections: list[Detection], height: int, width: int) -> np.ndarray:
    """All selected objects of one frame as one mask."""
    mask = np.zeros((height, width), dtype=bool)
    for det in detections:
        mask |= det.mask
    return mask
