"""Stage 5, smoothing: cut flicker inside the edited region.

Each frame's edited region is blended with the mean of up to `smoothing_window - 1` previous
smoothed frames, with weight `smoothing_alpha` (times the paste weight, so the background is
never touched). The history restarts whenever the object leaves the frame.

`extra.smoothing_mode=flow` first moves the history along the motion of the scene: OpenCV's
DIS optical flow, computed on the *source* frames (the edit changes colours, not motion), warps
each remembered frame onto the current one, so a moving object is blended with itself rather
than with where it was (no ghost trail).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..media.decode import read_frames
from ..media.frame_spool import SpoolWriter, read_spool
from ..media.mask_store import MaskStore
from ..vision.compositing import paste_weight
from ..vision.optical_flow import MotionField
from .context import JobContext


def smooth_frames(ctx: JobContext, masks: MaskStore, edited: Path) -> Path:
    """Smooth the spooled edited frames into a new spool (its path)."""
    info, req, mode = ctx.info, ctx.request, ctx.options.smoothing_mode
    out_path = ctx.workdir / "smoothed.mkv"
    history: deque[np.ndarray] = deque(maxlen=max(req.smoothing_window - 1, 1))
    motion = MotionField() if mode == "flow" else None
    sources: Iterator[tuple[int, np.ndarray]] | None = read_frames(info) if motion else None
    with SpoolWriter(out_path, info.width, info.height, info.fps) as spool:
        for index, frame in enumerate(read_spool(edited)):
            if motion is not None and sources is not None:
                motion.update(next(sources)[1])
            out = frame
            if masks.box(index) is None or req.smoothing_window < 2:
                history.clear()
            else:
                if history:
                    if motion is not None:
                        warped = [motion.warp_previous(h) for h in history]
                        history.clear()
                        history.extend(warped)
                    weight = req.smoothing_alpha * paste_weight(masks.get(index), req.erode_kernel)[..., None]
                    past = np.mean(np.stack(history), axis=0)
                    blended = np.clip(np.rint(frame * (1 - weight) + past * weight), 0, 255).astype(np.uint8)
                    out = np.where(weight > 0, blended, frame)
                history.append(out)
            spool.write(out)
            if index % 8 == 7:
                ctx.progress.advance(index + 1)
    ctx.progress.advance(info.frame_count)
    ctx.log.info("smoothing: %s, window %d, alpha %s, %d frames", mode, req.smoothing_window, req.smoothing_alpha,
                 info.frame_count)
    return out_path
