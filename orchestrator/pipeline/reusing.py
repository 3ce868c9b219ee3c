"""Stages 2 and 3 without the segmenter: the masks another job tracked, reused (`extra.masks_from`,
or the mask cache). Each frame's mask is the union of the picked objects' masks from that job's
file (media.object_masks); the job sends no Segment call. Editing runs behind it as behind
propagating: each frame goes on with its pixels once its mask is in the store.
"""

from __future__ import annotations

import numpy as np

from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..media.object_masks import ObjectMasks
from .concurrency import TrackedFrame, TrackedFrames
from .context import JobContext, ReusedMasks


def reuse_masks(ctx: JobContext, reused: ReusedMasks, store: MaskStore, tracked: TrackedFrames | None = None) -> None:
    """Write every frame's mask (the picked objects' union) into `store`, in order; with `tracked`,
    hand each frame on with its pixels (decoded here) once its mask is written."""
    info = ctx.info
    with ObjectMasks.open(reused.paths.object_masks, info.height, info.width) as objects:
        records = objects.by_frame(i - 1 for i in reused.picked)  # files hold the tracker's ids
        frames = (
            read_frames(info, 0, threads=ctx.threads) if tracked is not None else enumerate([None] * info.frame_count)
        )
        for index, pixels in frames:
            on_frame = records[index] if index < len(records) else []
            store.put(index, objects.union(on_frame) if on_frame else np.zeros((info.height, info.width), bool))
            if tracked is not None:
                box = store.box(index)
                tracked.put(TrackedFrame(index, box, pixels if box is not None else None))
            if index % 8 == 7:
                ctx.progress.advance(index + 1)
    if tracked is not None:
        tracked.finish()
    ctx.progress.advance(info.frame_count)
    ctx.log.info(
        "propagating: masks of object(s) %s from %s, on %d of %d frames (no Segment call)",
        ", ".join(map(str, reused.picked)) or "none",
        reused.origin,
        store.frames_with_object(),
        info.frame_count,
    )
