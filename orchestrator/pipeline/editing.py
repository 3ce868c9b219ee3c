"""Stage 4, editing: crop around the object, edit the crop, paste it back.

Only a crop around the mask goes to InstructPix2Pix, resized to the working size it is good at
(512 by default); the edit is pasted back through the mask, eroded by `erode_kernel` and
feathered inward, so nothing outside the mask changes and no seam shows (vision.crop,
vision.compositing). Frames whose mask is empty are copied as they are and never sent to the
model server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..media.decode import read_frames
from ..media.frame_spool import SpoolWriter
from ..media.mask_store import MaskStore
from ..vision.compositing import paste, paste_weight
from ..vision.crop import Box, cut_crop, stabilised_crops
from .context import JobContext

# Frames held before a flush even when few of them have an object (keeps memory bounded).
MAX_PENDING_FRAMES = 64


@dataclass(frozen=True)
class EditTarget:
    """One frame to edit: where its crop is and what may change."""

    index: int
    frame: np.ndarray  # RGB uint8 HxWx3
    box: Box  # the crop
    mask: np.ndarray  # bool HxW: the object


def frame_seed(job_seed: int, index: int, mode: str) -> int:
    """The diffusion seed of frame `index`. "shared" (default): the job seed on every frame, so
    every frame starts from the same noise and the edit's texture does not flicker; "per_frame":
    job seed + frame index, independent noise per frame. Either way a frame's result depends only
    on the job seed and its index, never on how frames were batched."""
    return job_seed if mode == "shared" else (job_seed + index) % 2**63


def edit_and_paste(ctx: JobContext, targets: Sequence[EditTarget]) -> list[np.ndarray]:
    """Crop -> one Edit call -> paste: the edited frames, in the order of `targets`."""
    req, opts = ctx.request, ctx.options
    crops = [cut_crop(t.frame, t.box, opts.edit_size) for t in targets]
    seeds = [frame_seed(req.seed, t.index, opts.seed_mode) for t in targets]
    edited = ctx.models.edit(crops, req.edit_prompt, req.image_guidance_scale, req.guidance_scale,
                             req.num_inference_steps, seeds)
    return [paste(t.frame, crop, t.box, paste_weight(t.mask, req.erode_kernel)) for t, crop in zip(targets, edited)]


def edit_frames(ctx: JobContext, masks: MaskStore) -> Path:
    """Edit every frame that has an object; write all frames to a lossless spool (its path)."""
    info, opts = ctx.info, ctx.options
    crops = stabilised_crops(masks.boxes(), info.width, info.height, opts.crop_margin)
    out_path = ctx.workdir / "edited.mkv"
    pending: list[tuple[int, np.ndarray]] = []
    done = 0
    with SpoolWriter(out_path, info.width, info.height, info.fps) as spool:

        def flush() -> None:
            nonlocal done
            targets = [EditTarget(i, frame, box, masks.get(i)) for i, frame in pending
                       if (box := crops[i]) is not None]
            edited = dict(zip((t.index for t in targets), edit_and_paste(ctx, targets))) if targets else {}
            for index, frame in pending:
                spool.write(edited.get(index, frame))
            done += len(pending)
            pending.clear()
            ctx.progress.advance(done, f"edited {done}/{info.frame_count} frames")

        for index, frame in read_frames(info):
            pending.append((index, frame))
            # Flush on a full batch of crops, or when many object-less frames
            # queue up behind a partial batch (keeps memory bounded).
            if sum(crops[i] is not None for i, _ in pending) >= opts.edit_batch_size \
                    or len(pending) >= MAX_PENDING_FRAMES:
                flush()
        if pending:
            flush()
    ctx.log.info("editing: %d frames edited of %d", masks.frames_with_object(), info.frame_count)
    return out_path
