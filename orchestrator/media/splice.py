"""Edits written into the decoded samples: only the pixels an edit changed are converted back
from RGB; every other sample of the frame is written as decoded.

Going to RGB and back is exact only to rounding for 8-bit SDR, and for HDR it is the tone map's
way there and back (media.tonemap), which clips colours outside BT.709. So the saving pass keeps
the decoded (upright) 4:2:0 planes and overwrites, inside each edited box, the luma of each pixel
whose RGB the paste changed and the chroma of each 2x2 block holding one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..vision.crop import Box, region
from .colour import Colour


def even_box(box: Box) -> Box:
    """`box` grown to even edges, so it holds whole 4:2:0 chroma blocks (the frame is even-sized)."""
    x0, y0, x1, y1 = box
    return x0 - x0 % 2, y0 - y0 % 2, x1 + x1 % 2, y1 + y1 % 2


@dataclass(frozen=True)
class Before:
    """An edited box's RGB as decoded, kept before the edits are pasted into the frame."""

    box: Box  # even-edged
    pixels: np.ndarray

    @classmethod
    def of(cls, frame: np.ndarray, box: Box) -> Before:
        box = even_box(box)
        return cls(box, region(frame, box).copy())


def splice(samples: np.ndarray, frame: np.ndarray, boxes: list[Before], colour: Colour) -> np.ndarray:
    """Write into `samples` (stacked 4:2:0 planes, H*3/2 x W, as decoded and upright) the pixels of
    the RGB `frame` (the same frame with its edits pasted) that differ from `boxes`' RGB before the
    paste, converted in `colour` (HDR: through the tone map's inverse). Returns `samples`."""
    height, width = frame.shape[:2]
    luma = samples[:height]
    u, v = (c.reshape(height // 2, width // 2) for c in np.split(samples[height:].ravel(), 2))
    for before in boxes:
        x0, y0, x1, y1 = before.box
        after = region(frame, before.box)
        changed = (after != before.pixels).any(axis=2)
        if not changed.any():
            continue
        h, w = changed.shape
        new = colour.samples(after)
        new_u, new_v = (c.reshape(h // 2, w // 2) for c in np.split(new[h:].ravel(), 2))
        np.copyto(luma[y0:y1, x0:x1], new[:h], where=changed)
        blocks = changed.reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))
        for plane, values in ((u, new_u), (v, new_v)):
            np.copyto(plane[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], values, where=blocks)
    return samples
