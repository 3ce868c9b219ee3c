"""Dense optical flow (OpenCV DIS) at a bounded working size, for smoothing and evaluation,
and MotionField, which carries images along the flow of a frame sequence.

Flow is computed on grey frames at most FLOW_SIDE pixels on the long side and scaled back up:
DIS flow is smooth anyway, and full-HD flow would cost ~10x more for the same warps.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

FLOW_SIDE = 480


def flow_gray(rgb: np.ndarray) -> np.ndarray:
    """The grey, downscaled frame that flow is computed on."""
    height, width = rgb.shape[:2]
    scale = min(1.0, FLOW_SIDE / max(height, width))
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                         interpolation=cv2.INTER_AREA)
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
