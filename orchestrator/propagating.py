"""Stage 3, propagating: track the object through the whole video.

Frames go to `Segment` in chunks (each chunk is a SAM3 tracking window); the
per-frame union of the matching objects is spooled to a MaskStore.
"""

from __future__ import annotations

from itertools import islice

from .context import JobContext
from .extracting import read_frames
from .mask_store import MaskStore
from .masking import union_mask
from .model_client import Detection
from .request import JobStatus


def propagate(ctx: JobContext, first_chunk: list[list[Detection]]) -> MaskStore:
    info = ctx.info
    assert info is not None
    store = MaskStore(ctx.workdir / "masks.npy", info.frame_count, info.height, info.width)
    ctx.reporter.stage(JobStatus.PROPAGATING, f"tracking {ctx.request.mask_prompt!r}", total_frames=info.frame_count)
    for index, detections in enumerate(first_chunk):
        store.put(index, union_mask(detections, info.height, info.width))
    done = len(first_chunk)
    ctx.reporter.advance(done)

    frames = read_frames(info, start=done)
    while done < info.frame_count:
        chunk = [frame for _, frame in islice(frames, ctx.options.chunk_size)]
        for offset, detections in enumerate(ctx.models.segment(chunk, ctx.request.mask_prompt)):
            store.put(done + offset, union_mask(detections, info.height, info.width))
        done += len(chunk)
        ctx.reporter.advance(done, f"tracked {done}/{info.frame_count} frames")
    ctx.log.info("propagating: object present on %d of %d frames", store.frames_with_object(), info.frame_count)
    return store
