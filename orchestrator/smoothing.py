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

import cv2
import numpy as np

from .context import JobContext
from .editing import paste_weight
from .extracting import read_frames
from .frame_spool import SpoolWriter, read_spool
from .mask_store import MaskStore
from .optical_flow import dense_flow, flow_gray, sample_maps
from .request import JobStatus

def smooth_frames(ctx: JobContext, masks: MaskStore, edited: Path, out_path: Path) -> Path:
    info = ctx.info
    assert info is not None
    req, mode = ctx.request, ctx.options.smoothing_mode
    ctx.reporter.stage(JobStatus.SMOOTHING, f"smoothing ({mode}, window {req.smoothing_window}, "
                                            f"alpha {req.smoothing_alpha})", total_frames=info.frame_count)
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
                ctx.reporter.advance(index + 1)
    ctx.reporter.advance(info.frame_count)
    ctx.log.info("smoothing: %s, window %d, alpha %s, %d frames", mode, req.smoothing_window, req.smoothing_alpha,
                 info.frame_count)
    return out_path


class MotionField:
    """Backward optical flow between consecutive source frames (DIS, OpenCV)."""

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._previous: np.ndarray | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None

    def update(self, rgb: np.ndarray) -> None:
        """The next source frame; afterwards warp_previous maps the frame before onto it."""
        gray = flow_gray(rgb)
        if self._previous is None:
            self._maps = None
        else:
            # flow(x) points from pixel x of the current frame to where it was in the previous one.
            self._maps = sample_maps(dense_flow(self._dis, gray, self._previous, rgb.shape[1], rgb.shape[0]))
        self._previous = gray

    def warp_previous(self, image: np.ndarray) -> np.ndarray:
        """`image`, aligned with the previous frame, moved to where its content is now."""
        if self._maps is None:
            return image
        return cv2.remap(image, self._maps[0], self._maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
