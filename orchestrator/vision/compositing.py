"""Compositing: paste an edited crop back into its frame inside the eroded, feathered mask.

The mask is eroded by the request's `erode_kernel` (the region the edit may touch) and
feathered inward, so no seam shows and nothing outside the mask changes: where the weight is
0 the source bytes are kept exactly, so the background stays bit-exact.

Everything works on the crop box only, never the full frame: `box_weight` computes the weight
on the box grown by the weight's reach, so inside the box it equals the full-frame weight.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from .crop import Box, grow
from .detail import restore_detail

# Feathering: the paste weight ramps from 0 at the eroded mask's edge to 1
# this many pixels inside it.
FEATHER_PX = 4

MaskOf = Callable[[Box], np.ndarray]  # box -> the frame's bool mask inside it


def paste_mask(mask: np.ndarray, erode_kernel: int) -> np.ndarray:
    """Uint8 0/1: the mask eroded by `erode_kernel`, the region the edit may touch."""
    m = mask.astype(np.uint8)
    if erode_kernel > 0:
        m = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (erode_kernel, erode_kernel)))
    return m


def paste_weight(mask: np.ndarray, erode_kernel: int) -> np.ndarray:
    """Uint8 alpha, 0..255 (255: the edit wholly): 0 everywhere outside the paste mask.

    The paste mask is eroded by FEATHER_PX more and blurred with a kernel that
    reaches FEATHER_PX, so the blur never spreads past the paste mask: the
    background stays bit-exact. Uint8 because OpenCV blurs it in fixed point, several times
    faster than float32, and 1/255 steps are far below what a feather shows.
    """
    m = paste_mask(mask, erode_kernel)
    inner = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * FEATHER_PX + 1,) * 2))
    weight = cv2.GaussianBlur(inner * np.uint8(255), (2 * FEATHER_PX + 1,) * 2, 0)
    weight *= m  # exact zero outside the paste mask
    return weight


def reach(erode_kernel: int) -> int:
    """How far (pixels) the mask around a pixel can change its paste weight."""
    return erode_kernel + 2 * FEATHER_PX + 2


def box_weight(mask_of: MaskOf, box: Box, width: int, height: int, erode_kernel: int) -> np.ndarray:
    """paste_weight inside `box` of a `width` x `height` frame, equal to the full-frame one there."""
    return _in_box(paste_weight, mask_of, box, width, height, erode_kernel)


def box_paste_mask(mask_of: MaskOf, box: Box, width: int, height: int, erode_kernel: int) -> np.ndarray:
    """paste_mask inside `box`, equal to the full-frame one there."""
    return _in_box(paste_mask, mask_of, box, width, height, erode_kernel)


def _in_box(
    compute: Callable[[np.ndarray, int], np.ndarray],
    mask_of: MaskOf,
    box: Box,
    width: int,
    height: int,
    erode_kernel: int,
) -> np.ndarray:
    # Erosion and blur see only pixels within `reach` of the box, and at the frame's edge the
    # grown box stops where the frame does, so both borders behave as in the full frame.
    grown = grow(box, reach(erode_kernel), width, height)
    result = compute(mask_of(grown), erode_kernel)
    return result[box[1] - grown[1] : box[3] - grown[1], box[0] - grown[0] : box[2] - grown[0]]


def blend(source: np.ndarray, other: np.ndarray, weight: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """`source` (uint8 HxWx3) moved towards `other` (same size and type) by `weight` (HxW uint8
    alpha from paste_weight) x `scale`; where the weight is 0 the source bytes are kept exactly."""
    # One SIMD pass in OpenCV instead of numpy's six (this runs on every edited box):
    # (source * (1 - w) + other * w) / (1 + 1e-5) rounded: where w == 0 that is the source value
    # exactly (the 1e-5 moves 255 by 0.003, well inside the rounding).
    w = weight.astype(np.float32)
    w *= scale / 255
    return cv2.blendLinear(source, other, 1 - w, w)


def paste(
    source: np.ndarray,
    edit: np.ndarray,
    mask_of: MaskOf,
    box: Box,
    width: int,
    height: int,
    erode_kernel: int,
    detail_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`edit` (box-sized) pasted onto `source` (the frame inside `box`) through the box's paste
    weight: (the pasted box, the weight). With `detail_size` (extra.detail=source: the model's
    working size), the source's fine detail is put back into the edit first (vision.detail)."""
    if detail_size is not None:
        edit = restore_detail(source, edit, detail_size)
    weight = box_weight(mask_of, box, width, height, erode_kernel)
    return blend(source, edit, weight), weight


def fit_crop(edited_crop: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The model's `edited_crop` (any size) resized to its box's `size` (width, height)."""
    return cv2.resize(edited_crop, size, interpolation=cv2.INTER_CUBIC)
