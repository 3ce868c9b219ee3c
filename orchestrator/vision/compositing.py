"""Compositing: paste an edited crop back into its frame inside the eroded, feathered mask.

The mask is eroded by the request's `erode_kernel` (the region the edit may touch) and
feathered inward, so no seam shows and nothing outside the mask changes: where the weight is
0 the source bytes are kept exactly, so the background stays bit-exact.
"""

from __future__ import annotations

import cv2
import numpy as np

from .crop import Box

# Feathering: the paste weight ramps from 0 at the eroded mask's edge to 1
# this many pixels inside it.
FEATHER_PX = 4


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
