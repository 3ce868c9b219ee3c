"""Dense optical flow (OpenCV DIS) at a bounded working size, for smoothing and evaluation,
and FlowTrail, which follows pixels back along the flow of a frame sequence.

Flow is computed on grey frames at most FLOW_SIDE pixels on the long side and scaled back up:
DIS flow is smooth anyway, and full-HD flow would cost ~10x more for the same warps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from functools import lru_cache

import cv2
import numpy as np

from ..resample import shrink

FLOW_SIDE = 480


def flow_gray(rgb: np.ndarray) -> np.ndarray:
    """The grey, downscaled frame that flow is computed on."""
    height, width = rgb.shape[:2]
    scale = min(1.0, FLOW_SIDE / max(height, width))
    if scale < 1:
        rgb = shrink(rgb, (max(1, round(width * scale)), max(1, round(height * scale))))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def dense_flow(dis, gray_from: np.ndarray, gray_to: np.ndarray, width: int, height: int) -> np.ndarray:
    """Flow (H, W, 2) at full size: pixel x of `from` is at x + flow(x) in `to`."""
    flow = dis.calc(gray_from, gray_to, None)
    if flow.shape[:2] != (height, width):
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * (width / gray_from.shape[1])
    return flow


def sample_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps that read each pixel x at x + flow(x)."""
    grid_x, grid_y = _grid(*flow.shape[:2])
    return grid_x + flow[..., 0], grid_y + flow[..., 1]


@lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


class FlowTrail:
    """Backward optical flow over the last few consecutive source frames, to find where the pixels
    of a box of the current frame were on each earlier frame.

    Flows stay at the working size; positions are composed through them (sampling each flow where
    the previous step landed), so an earlier frame is sampled once, at the end, and only inside
    the box: no full-frame warps.
    """

    def __init__(self, length: int) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._flows: deque[np.ndarray] = deque(maxlen=max(length, 1))  # newest last: frame t -> t-1
        self._gray: np.ndarray | None = None
        self._size = (0, 0)

    def add(self, rgb: np.ndarray, follows_previous: bool) -> None:
        """The next source frame; `follows_previous`: the frame before it was added and the trail
        goes on (otherwise it restarts here)."""
        gray = flow_gray(rgb)
        if not follows_previous or self._gray is None:
            self._flows.clear()
        else:
            # flow(x) points from pixel x of this frame to where it was in the previous one.
            self._flows.append(self._dis.calc(gray, self._gray, None))
        self._gray, self._size = gray, (rgb.shape[1], rgb.shape[0])

    def positions(self, box: tuple[int, int, int, int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """For k = 1, 2, ...: (x, y) maps (box-sized, float32) of where each pixel of `box` in
        the newest frame was k frames earlier, as far back as the trail goes."""
        x0, y0, x1, y1 = box
        xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        width, height = self._size
        for flow in reversed(self._flows):
            sx, sy = flow.shape[1] / width, flow.shape[0] / height  # working size / frame size
            # Where (xs, ys) lies on the working-size flow, as cv2.resize(INTER_LINEAR) maps pixels;
            # flow vectors scale back up by the width ratio, as in dense_flow.
            step = cv2.remap(flow, (xs + 0.5) * sx - 0.5, (ys + 0.5) * sy - 0.5, cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE) / sx
            xs, ys = xs + step[..., 0], ys + step[..., 1]
            yield xs, ys


def sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """`image` read at positions (xs, ys) (bilinear, edges repeated)."""
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
