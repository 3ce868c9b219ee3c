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

A Smoother is a filter of the saving pass, which decodes each source frame once anyway and
hands it over in order: smoothing costs no decode pass, spool or thread of its own. `finished`
says when the last frame is smoothed (the driver reports the stage by it).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future

import cv2
import numpy as np

from ..request import SmoothingMode
from ..vision.compositing import blend
from ..vision.crop import Box, region
from ..vision.optical_flow import FlowTrail, sample
from .context import JobContext, Pasted


class Smoother:
    """Writes each frame's pasted box, smoothed, into the frame (saving's FrameFilter)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        depth = max(ctx.request.smoothing_window - 1, 1)
        self._history: deque[np.ndarray] = deque(maxlen=depth)  # previous output frames, newest last
        self._trail = FlowTrail(depth) if ctx.options.smoothing_mode == SmoothingMode.FLOW else None
        self._smoothed = 0
        self.finished: Future[None] = Future()

    def __call__(self, index: int, frame: np.ndarray | None, pasted: Pasted | None) -> None:
        """`frame`: source frame `index` (the frames come in order; None when it has no edit);
        `pasted`: its edit."""
        req, history = self.ctx.request, self._history
        if pasted is None:
            history.clear()  # the object left: its next stretch starts afresh
        else:
            assert frame is not None
            current = pasted.pixels
            if self._trail is not None:
                self._trail.add(frame, pasted.box, follows_previous=bool(history))
            if history:
                current = blend(current, _mean_of(history, pasted.box, self._trail), pasted.weight, req.smoothing_alpha)
            region(frame, pasted.box)[:] = current  # the output frame, as the next frames' history sees it
            if req.smoothing_window >= 2:
                history.append(frame)
            self._smoothed += 1
        if index % 8 == 7:
            self.ctx.progress.advance(index + 1)
        if index == self.ctx.info.frame_count - 1:
            self.ctx.progress.advance(index + 1)
            self.ctx.log.info(
                "smoothing: %s, window %d, alpha %s, %d frames",
                self.ctx.options.smoothing_mode,
                req.smoothing_window,
                req.smoothing_alpha,
                self._smoothed,
            )
            self.finished.set_result(None)


def _mean_of(history: deque[np.ndarray], box: Box, trail: FlowTrail | None) -> np.ndarray:
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
