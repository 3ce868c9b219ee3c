"""Stages 2 and 3 without the segmenter: the masks another job tracked, reused (`extra.masks_from`,
or the mask cache). Each frame's mask is the union of the picked objects' masks from that job's
file (media.object_masks); the job sends no Segment call. Editing runs behind it as behind
propagating: each frame goes on with its pixels once its mask is in the store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument
from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..media.object_list import ObjectList
from ..media.object_masks import ObjectMasks
from .concurrency import TrackedFrame, TrackedFrames
from .context import JobContext, OutputPaths


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
