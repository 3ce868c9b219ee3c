"""Keyframes and carrying edits between them along the optical flow of the source.

Editing every frame with its own diffusion run costs one model call per frame and flickers. With
a keyframe interval k, only every k-th frame of each stretch where the object is visible (plus
the stretch's first and last frame) is edited by the model; each frame in between takes the edit
from the two keyframes around it, followed along the motion of the *source* video (the edit
changes colours, not motion):

    position of a pixel of frame t in keyframe a: flows t -> t-1 -> ... -> a, composed
    position of a pixel of frame t in keyframe b: flows t -> t+1 -> ... -> b, composed

Both carried values are blended by distance (the nearer keyframe weighs more). A carried value
is trusted only where the source agrees with itself along the flow (the keyframe's source pixel
at that position looks like frame t's, within TRUST_GREY): occluded and disoccluded pixels fall
back to the other keyframe, or, if neither is trusted, to the source (no edit there). The
result is pasted through frame t's own eroded, feathered mask, so the background never changes.

Flows are computed on the area around the gap's boxes (optical_flow.FlowArea: at most as many
pixels as a whole frame at FLOW_SIDE, so a small object in an HD frame keeps its resolution) and
composed there: a map per frame of where each working-size pixel lies in the keyframe, one remap
per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .crop import Box, stretches
from .optical_flow import FlowArea

# A carried pixel is trusted where the keyframe's source, at the carried position, is within this
# many grey levels (mean over RGB) of frame t's source.
TRUST_GREY = 24.0


def interval_keyframes(boxes: Sequence[Box | None], interval: int) -> list[bool]:
    """Every `interval`-th frame of each stretch, and its first and last frame."""
    keys = [False] * len(boxes)
    for first, last in stretches(boxes):
        for index in range(first, last + 1, interval):
            keys[index] = True
        keys[last] = True
    return keys


class FlowMap:
    """Where each working-size pixel of the newest frame's FlowArea lies in a reference frame's
    (working-size coordinates), composed frame by frame along DIS flow. One area serves a whole
    gap between keyframes (gap_area), so the maps of its frames compose."""

    def __init__(self, reference_rgb: np.ndarray, area: FlowArea) -> None:
        # MEDIUM, not FAST: errors compound over the steps to a keyframe (FAST under-estimates the
        # motion of finely textured objects by a third).
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.area = area
        self._gray = area.gray(reference_rgb)
        width, height = area.size
        self._grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        self.map = np.stack(self._grid, axis=2)  # identity: the reference frame itself

    def step(self, gray: np.ndarray) -> np.ndarray:
        """Move on to the next frame (next in whichever direction this map runs), given as
        `area.gray(frame)`; returns its map."""
        flow = self._dis.calc(gray, self._gray, None)  # pixel x of the new frame was at x + flow(x)
        self.map = cv2.remap(
            self.map,
            self._grid[0] + flow[..., 0],
            self._grid[1] + flow[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        self._gray = gray
        return self.map


def gap_area(boxes: Sequence[Box | None], first: int, last: int, width: int, height: int) -> FlowArea:
    """The FlowArea of a gap between keyframes: around the union of the boxes of frames first..last
    (up to where the object leaves)."""
    inside: list[Box] = []
    for box in boxes[first : last + 1]:
        if box is None:
            break
        inside.append(box)
    union = (min(b[0] for b in inside), min(b[1] for b in inside), max(b[2] for b in inside), max(b[3] for b in inside))
    return FlowArea.around(union, width, height)


def positions(flow_map: np.ndarray, box: Box, area: FlowArea) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution (x, y) in the reference frame of each pixel of `box` (box-sized float32), from
    a map of `area`."""
    x0, y0, x1, y1 = box
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    found = cv2.remap(flow_map, *area.to_working(xs, ys), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return area.from_working(found[..., 0], found[..., 1])


@dataclass(frozen=True)
class Keyframe:
    """A keyframe's source frame and its edited frame (the edit pasted in), full size."""

    source: np.ndarray
    edited: np.ndarray


def carried(
    source_box: np.ndarray,
    keys: Sequence[tuple[Keyframe, tuple[np.ndarray, np.ndarray], float]],
) -> tuple[np.ndarray, np.ndarray]:
    """The edit carried into a box of frame t from keyframes: each (keyframe, positions of the box's
    pixels in it, distance weight). Returns (pixels, trusted) - float32 box pixels (the source
    where no keyframe is trusted) and the bool map of pixels some keyframe covered."""
    total = np.zeros(source_box.shape[:2], np.float32)
    mixed = np.zeros(source_box.shape, np.float32)
    for key, (xs, ys), weight in keys:
        height, width = key.source.shape[:2]
        inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
        seen = cv2.remap(key.source, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        error = np.abs(seen.astype(np.float32) - source_box).mean(axis=2)
        trust = (inside & (error <= TRUST_GREY)).astype(np.float32) * weight
        edit = cv2.remap(key.edited, xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mixed += edit.astype(np.float32) * trust[..., None]
        total += trust
    covered = total > 0
    pixels = source_box.astype(np.float32)
    pixels[covered] = mixed[covered] / total[covered][:, None]
    return pixels, covered
