"""Downscaling frames (for SAM3, for the model's crop, for optical flow) without aliasing, cheaply.

cv2.INTER_AREA averages each output pixel's footprint, the right filter for shrinking, but for a
ratio that is not a whole number it takes a slow general path (a 720p frame to SAM3's 1008 px:
5.8 ms, against 0.7 ms bilinear; a 4K one several times that). Bilinear alone aliases once the
image shrinks more than 2x. So: INTER_AREA's fast path by a whole-number factor, to at most twice
the target size, then bilinear for the rest.
"""

from __future__ import annotations

import cv2
import numpy as np


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` resized to `size` (width, height), no larger than it."""
    height, width = image.shape[:2]
    factor = min(width // size[0], height // size[1])
    if factor < 2:
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    # The fast path needs sides that divide by the factor: leave out the last (< factor) rows and
    # columns here, and map the rest exactly below (they come back as the edge, repeated).
    small = cv2.resize(
        image[: height // factor * factor, : width // factor * factor],
        (width // factor, height // factor),
        interpolation=cv2.INTER_AREA,
    )
    if (width, height) == (size[0] * factor, size[1] * factor):
        return small  # a whole-number ratio: exactly INTER_AREA
    scale_x, scale_y = width / (size[0] * factor), height / (size[1] * factor)
    # Output pixel x's centre, (x + 0.5) * width / size, in `small`'s pixels: scale * x + (scale - 1) / 2.
    to_small = np.float32([[scale_x, 0, (scale_x - 1) / 2], [0, scale_y, (scale_y - 1) / 2]])
    return cv2.warpAffine(
        small, to_small, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
