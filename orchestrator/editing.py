"""Stage 4, editing: crop around the object, edit the crop, paste it back.

Only a crop around the mask goes to InstructPix2Pix, resized to the working
size it is good at (512 by default); the edit is pasted back through the
mask, eroded by `erode_kernel` and feathered inward, so nothing outside the
mask changes and no seam shows. Frames whose mask is empty are copied as they
are and never sent to the model server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from .context import JobContext
from .extracting import read_frames
from .frame_spool import SpoolWriter
from .mask_store import Box, MaskStore
from .request import JobStatus

# Feathering: the paste weight ramps from 0 at the eroded mask's edge to 1
# this many pixels inside it.
FEATHER_PX = 4
# Frames the crop box is averaged over (centred), against jitter.
CROP_WINDOW = 9


def crop_box(box: Box, width: int, height: int, margin: float,
             center: tuple[float, float] | None = None, side: float | None = None) -> Box:
    """A square crop around `box` grown by `margin` per side, kept inside the frame.

    `center`/`side` (from `stabilised_crops`) override the box's own, but the
    crop always grows to contain the whole box. Where the frame is too small
    for the square, the crop is cut to the frame on that axis."""
    x0, y0, x1, y1 = box
    cx, cy = center or ((x0 + x1) / 2, (y0 + y1) / 2)
    if side is None:
        side = max(x1 - x0, y1 - y0, 16) * (1 + 2 * margin)
    # The crop must contain the box even when its centre was moved.
    side = max(side, 2 * max(cx - x0, x1 - cx), 2 * max(cy - y0, y1 - cy))
    crop_w, crop_h = int(np.ceil(min(side, width))), int(np.ceil(min(side, height)))
    left = int(np.clip(np.floor(cx - crop_w / 2), 0, width - crop_w))
    top = int(np.clip(np.floor(cy - crop_h / 2), 0, height - crop_h))
    # Clamping to the frame can shift the crop off the box by a pixel of rounding: pull it back.
    left, top = min(left, x0), min(top, y0)
    left, top = max(left, x1 - crop_w), max(top, y1 - crop_h)
    return left, top, left + crop_w, top + crop_h


def stabilised_crops(masks: MaskStore, width: int, height: int, margin: float, window: int = CROP_WINDOW,
                     ) -> list[Optional[Box]]:
    """Crop boxes for every frame, smoothed over time so the crop does not jitter.

    SAM3's mask edges wobble from frame to frame; a crop that follows them
    exactly makes InstructPix2Pix see a shaking image and flicker. Centre and
    size are averaged over `window` frames of the same visible stretch of the
    object (a moving average, centred: all masks are known before editing)."""
    boxes = [masks.box(i) for i in range(masks.count)]
    centers = np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) if b else (np.nan, np.nan) for b in boxes])
    sides = np.array([max(b[2] - b[0], b[3] - b[1], 16) * (1 + 2 * margin) if b else np.nan for b in boxes])
    half = window // 2
    crops: list[Optional[Box]] = []
    for i, box in enumerate(boxes):
        if box is None:
            crops.append(None)
            continue
        lo, hi = i, i  # the stretch of consecutive frames with the object, within the window
        while lo > max(0, i - half) and boxes[lo - 1] is not None:
            lo -= 1
        while hi < min(len(boxes) - 1, i + half) and boxes[hi + 1] is not None:
            hi += 1
        center = tuple(centers[lo:hi + 1].mean(axis=0))
        crops.append(crop_box(box, width, height, margin, center=center, side=float(sides[lo:hi + 1].max())))
    return crops


def paste_mask(mask: np.ndarray, erode_kernel: int) -> np.ndarray:
    """Uint8 0/1 HxW: the mask eroded by `erode_kernel`, the region the edit may touch."""
    m = mask.astype(np.uint8)
    if erode_kernel > 0:
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (erode_kernel, erode_kernel)))
    return m


def paste_weight(mask: np.ndarray, erode_kernel: int) -> np.ndarray:
    """Float32 HxW in 0..1: 0 everywhere outside the paste mask.

    The paste mask is eroded by FEATHER_PX more and blurred with a kernel that
    reaches FEATHER_PX, so the blur never spreads past the paste mask: the
    background stays bit-exact.
    """
    m = paste_mask(mask, erode_kernel)
    inner = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * FEATHER_PX + 1,) * 2))
    weight = cv2.GaussianBlur(inner.astype(np.float32), (2 * FEATHER_PX + 1,) * 2, 0)
    weight *= m  # exact zero outside the paste mask
    return weight


def paste(frame: np.ndarray, edited_crop: np.ndarray, box: Box, weight: np.ndarray) -> np.ndarray:
    """Blend the edited crop into `frame` inside `box` with `weight` (full-frame)."""
    x0, y0, x1, y1 = box
    out = frame.copy()
    w = weight[y0:y1, x0:x1, None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    resized = cv2.resize(edited_crop, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    blended = region * (1 - w) + resized * w
    # Where w == 0 the original bytes are kept exactly (no float round trip).
    out[y0:y1, x0:x1] = np.where(w > 0, np.clip(np.rint(blended), 0, 255).astype(np.uint8), frame[y0:y1, x0:x1])
    return out


def frame_seed(job_seed: int, index: int, mode: str) -> int:
    """The diffusion seed of frame `index`. "shared" (default): the job seed on every frame, so
    every frame starts from the same noise and the edit's texture does not flicker; "per_frame":
    job seed + frame index, independent noise per frame. Either way a frame's result depends only
    on the job seed and its index, never on how frames were batched."""
    return job_seed if mode == "shared" else (job_seed + index) % 2**63


@dataclass
class _Pending:
    index: int
    frame: np.ndarray
    box: Optional[Box]  # None: nothing to edit on this frame


def edit_frames(ctx: JobContext, masks: MaskStore, out_path: Path) -> Path:
    """Edit every frame that has an object; write all frames to a lossless spool."""
    info = ctx.info
    assert info is not None
    req, opts = ctx.request, ctx.options
    ctx.reporter.stage(JobStatus.EDITING, f"editing: {req.edit_prompt!r}", total_frames=info.frame_count)
    crops = stabilised_crops(masks, info.width, info.height, opts.crop_margin)
    pending: list[_Pending] = []
    done = 0
    with SpoolWriter(out_path, info.width, info.height, info.fps) as spool:

        def flush() -> None:
            nonlocal done
            to_edit = [p for p in pending if p.box is not None]
            if to_edit:
                crops = [cv2.resize(p.frame[p.box[1]:p.box[3], p.box[0]:p.box[2]], (opts.edit_size,) * 2,
                                    interpolation=cv2.INTER_AREA) for p in to_edit]
                seeds = [frame_seed(req.seed, p.index, opts.seed_mode) for p in to_edit]
                edited = ctx.models.edit(crops, req.edit_prompt, req.image_guidance_scale, req.guidance_scale,
                                         req.num_inference_steps, seeds)
                for p, crop in zip(to_edit, edited):
                    p.frame = paste(p.frame, crop, p.box, paste_weight(masks.get(p.index), req.erode_kernel))
            for p in pending:
                spool.write(p.frame)
            done += len(pending)
            pending.clear()
            ctx.reporter.advance(done, f"edited {done}/{info.frame_count} frames")

        for index, frame in read_frames(info):
            pending.append(_Pending(index, frame, crops[index]))
            # Flush on a full batch of crops, or when many object-less frames
            # queue up behind a partial batch (keeps memory bounded).
            if sum(p.box is not None for p in pending) >= opts.edit_batch_size or len(pending) >= 64:
                flush()
        if pending:
            flush()
    ctx.log.info("editing: %d frames edited of %d", masks.frames_with_object(), info.frame_count)
    return out_path
