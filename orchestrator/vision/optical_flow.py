"""Dense optical flow (OpenCV DIS) around an object, for smoothing, keyframes and evaluation, and
FlowTrail, which follows pixels of an edited box back along the flow of a frame sequence.

Flow is computed on the FlowArea around the object's box only, shrunk to at most the pixels of a
frame FLOW_SIDE pixels wide: DIS flow is smooth anyway, and full-HD flow would cost ~10x more for
the same warps; whole frames shrunk that far would lose small objects.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..resample import shrink
from .crop import Box, grow

FLOW_SIDE = 480


# Flow around an object looks at its box grown by AREA_MARGIN (at least AREA_MARGIN_PX): where
# its pixels can come from on nearby frames, as objects and stabilised boxes move.
AREA_MARGIN = 0.15
AREA_MARGIN_PX = 16
# The area is shrunk to at most this many pixels: those of a 16:9 frame at FLOW_SIDE, so flow
# around an object costs what whole-frame flow did, all of it spent where the edit is.
AREA_PIXELS = FLOW_SIDE * FLOW_SIDE * 9 // 16


@dataclass(frozen=True)
class FlowArea:
    """A part of the frame that flow is computed on, and the working size it is shrunk to. Around
    an object, flow is finer than a whole frame at FLOW_SIDE would give it (a small object in an
    HD frame gets its full resolution: whole-frame flow loses it), for no more work."""

    box: Box
    size: tuple[int, int]  # working (width, height)

    @classmethod
    def around(cls, box: Box, width: int, height: int) -> FlowArea:
        """The area for an object in `box` of a `width` x `height` frame."""
        reach = max(AREA_MARGIN_PX, round(AREA_MARGIN * max(box[2] - box[0], box[3] - box[1])))
        area = grow(box, reach, width, height)
        area_w, area_h = area[2] - area[0], area[3] - area[1]
        scale = min(1.0, (AREA_PIXELS / (area_w * area_h)) ** 0.5)
        return cls(area, (max(1, round(area_w * scale)), max(1, round(area_h * scale))))

    @property
    def scale(self) -> tuple[float, float]:
        """(x, y) working-size pixels per frame pixel."""
        x0, y0, x1, y1 = self.box
        return self.size[0] / (x1 - x0), self.size[1] / (y1 - y0)

    def gray(self, frame: np.ndarray) -> np.ndarray:
        """The area of a frame (RGB or grey, full size), grey at the working size."""
        x0, y0, x1, y1 = self.box
        part = frame[y0:y1, x0:x1]
        part = cv2.cvtColor(part, cv2.COLOR_RGB2GRAY) if part.ndim == 3 else np.ascontiguousarray(part)
        return shrink(part, self.size) if self.size != (x1 - x0, y1 - y0) else part

    def to_working(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frame pixel positions on the working-size grid (as cv2.resize(INTER_LINEAR) lays it out)."""
        (sx, sy), (ax, ay) = self.scale, self.box[:2]
        return (xs - ax + 0.5) * sx - 0.5, (ys - ay + 0.5) * sy - 0.5

    def from_working(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (sx, sy), (ax, ay) = self.scale, self.box[:2]
        return (xs + 0.5) / sx - 0.5 + ax, (ys + 0.5) / sy - 0.5 + ay


# DIS's work goes with the pixels at the finest pyramid level it refines: DIS FAST stops at level 2
# (a quarter of each side), which on a small area is too coarse to see an object's motion (a
# 72 px object in 1080p: 0.5 px short per frame at level 2, 0.03 px at level 1). Areas get the
# finest level with at most this many pixels (a whole 480x270 frame at level 2 has 8k; 16k at level
# 1 is a 250 px area, about 3 ms of DIS here).
TRAIL_FINEST_PIXELS = 16_000


@dataclass(frozen=True)
class _Step:
    """One frame's flow back to the frame before, computed on `area`."""

    area: FlowArea
    flow: np.ndarray  # working size: pixel x of this frame was at x + flow(x) in the one before


class FlowTrail:
    """Backward optical flow over the last few consecutive source frames, to find where the pixels
    of a box of the current frame were on each earlier frame.

    Each step's flow is computed on the FlowArea around the edited box only. Positions are
    composed through the steps (sampling each flow where the previous step landed), so an earlier
    frame is sampled once, at the end, and only inside the box.
    """

    def __init__(self, length: int) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._steps: deque[_Step] = deque(maxlen=max(length, 1))  # newest last: frame t -> t-1
        # The frame added last: full-size grey, its area and that area's working image.
        self._last: tuple[np.ndarray, FlowArea, np.ndarray] | None = None

    def add(self, rgb: np.ndarray, box: Box, follows_previous: bool) -> None:
        """The next source frame and its box; `follows_previous`: the frame before it was added and
        the trail goes on (otherwise it restarts here)."""
        # A grey copy: the caller writes the smoothed box into `rgb` afterwards.
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        area = FlowArea.around(box, gray.shape[1], gray.shape[0])
        now = area.gray(gray)
        if not follows_previous or self._last is None:
            self._steps.clear()
        else:
            last_gray, last_area, last_image = self._last
            before = last_image if last_area == area else area.gray(last_gray)
            self._dis.setFinestScale(_finest_level(area.size))
            self._steps.append(_Step(area, self._dis.calc(now, before, None)))
        self._last = gray, area, now

    def positions(self, box: Box) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """For k = 1, 2, ...: (x, y) maps (box-sized, float32) of where each pixel of `box` in
        the newest frame was k frames earlier, as far back as the trail goes."""
        x0, y0, x1, y1 = box
        xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        for step in reversed(self._steps):
            sx, sy = step.area.scale
            # Beyond the step's area the flow at the area's edge goes on.
            at = cv2.remap(step.flow, *step.area.to_working(xs, ys), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            xs, ys = xs + at[..., 0] / sx, ys + at[..., 1] / sy
            yield xs, ys


def _finest_level(size: tuple[int, int]) -> int:
    """The finest DIS pyramid level for a working `size` within TRAIL_FINEST_PIXELS (FAST's 2 at most)."""
    level = 0
    while level < 2 and size[0] * size[1] > TRAIL_FINEST_PIXELS * 4**level:
        level += 1
    return level


def sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """`image` read at positions (xs, ys) (bilinear, edges repeated)."""
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
