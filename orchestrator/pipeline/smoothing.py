"""Stage 5, smoothing: cut flicker inside the edited region.

Each frame's edited region is blended with the mean of up to `smoothing_window - 1` previous
smoothed frames, with weight `smoothing_alpha` (times the paste weight, so the background is
never touched). The history restarts whenever the object leaves the frame.

`extra.smoothing_mode=flow` first follows the history along the motion of the scene: OpenCV's
DIS optical flow, computed on the *source* frames (the edit changes colours, not motion), says
where each pixel of the current crop was on each earlier frame, so a moving object is blended
with itself rather than with where it was (no ghost trail).

Only crop boxes are computed on: the history is the previous output frames (decoded source with
the smoothed box written in), read inside the current box.

It can run behind the editing stage (`ready`: how far the edited boxes are final; `done`: how far
its own output is), so that little of it is left when editing ends.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

from ..media.crop_spool import CropSpool
from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..vision.compositing import blend, box_weight
from ..vision.crop import region
from ..vision.optical_flow import FlowTrail, sample
from .context import FrameWatermark, JobContext


def smooth_frames(ctx: JobContext, masks: MaskStore, edited: CropSpool, out: CropSpool,
                  ready: FrameWatermark | None = None, done: FrameWatermark | None = None) -> None:
    """Smooth the edited boxes of `edited` into `out` (same boxes); frame by frame as `ready`
    says they are final, telling `done` how far `out` is."""
    info, req, mode = ctx.info, ctx.request, ctx.options.smoothing_mode
    depth = max(req.smoothing_window - 1, 1)
    history: deque[np.ndarray] = deque(maxlen=depth)  # previous output frames, newest last
    trail = FlowTrail(depth) if mode == "flow" else None
    done = done or FrameWatermark()

    def has_edit(index: int) -> bool:
        if ready is not None and index < info.frame_count:
            ready.wait(index)
        if edited.has(index):
            return True
        done.advance(index + 1)  # nothing to smooth: final as it is
        return False

    for index, frame in read_frames(info, wanted=has_edit, threads=ctx.threads):
        box, current = edited.get(index)  # type: ignore[misc]  # only frames with a box are read
        if trail is not None:
            trail.add(frame, follows_previous=bool(history))
        if history:
            weight = box_weight(lambda b: masks.region(index, b), box, info.width, info.height, req.erode_kernel)
            current = blend(current, _mean_of(history, box, trail), weight, req.smoothing_alpha)
        region(frame, box)[:] = current  # the output frame, as the next frames' history sees it
        out.put(index, box, current)
        done.advance(index + 1)
        if req.smoothing_window >= 2:
            history.append(frame)
        if index % 8 == 7:
            ctx.progress.advance(index + 1)
        if not has_edit(index + 1):
            history.clear()  # the object leaves (or the video ends): the next stretch starts afresh
    done.finish()
    ctx.progress.advance(info.frame_count)
    ctx.log.info("smoothing: %s, window %d, alpha %s, %d frames", mode, req.smoothing_window, req.smoothing_alpha,
                 out.frames())


def _mean_of(history: deque[np.ndarray], box, trail: FlowTrail | None) -> np.ndarray:
    """The mean of the history frames inside `box` (uint8, rounded), each followed along the flow."""
    if trail is None:
        samples = [region(h, box) for h in history]
    else:
        samples = [sample(h, xs, ys) for h, (xs, ys) in zip(reversed(history), trail.positions(box))]
    # Accumulated by OpenCV (one SIMD pass per frame), far cheaper than numpy's mean over a stack.
    total = np.zeros(samples[0].shape, np.float32)
    for pixels in samples:
        cv2.accumulate(pixels, total)
    return cv2.convertScaleAbs(total, alpha=1 / len(samples))  # rounded to uint8
