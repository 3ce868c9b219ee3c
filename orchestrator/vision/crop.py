"""Crop geometry: bounding boxes of masks, and the square crops InstructPix2Pix edits.

A crop is the mask's bounding box grown by a margin, made square and kept inside the frame,
then resized to the model's working size; over a video, crop centres and sizes are averaged
over a few frames so the model does not see a shaking image.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

import cv2
import numpy as np

from ..resample import shrink

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
T = TypeVar("T")

# Frames the crop box is averaged over (centred), against jitter.
CROP_WINDOW = 9


def stretches(boxes: Sequence[object | None]) -> list[tuple[int, int]]:
    """(first, last) frame of each run of consecutive frames with a box (anything but None)."""
    runs, start = [], None
    for index, box in enumerate(boxes):
        if box is not None and start is None:
            start = index
        elif box is None and start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(boxes) - 1))
    return runs


def mask_bbox(mask: np.ndarray) -> Box | None:
    """Bounding box of a bool mask, None when it is empty."""
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1) if len(ys) else None


def crop_box(
    box: Box,
    width: int,
    height: int,
    margin: float,
    center: tuple[float, float] | None = None,
    side: float | None = None,
    sar: float = 1.0,
) -> Box:
    """A crop around `box` grown by `margin` per side, square on screen, kept inside the frame.

    `center`/`side` (from `stabilised_crops`) override the box's own, but the
    crop always grows to contain the whole box. Where the frame is too small
    for the square, the crop is cut to the frame on that axis. `side` is in rows; with a sample
    aspect ratio `sar` != 1 (anamorphic) the crop is side / sar stored pixels wide, so resized to
    the model's square working size it shows square pixels."""
    x0, y0, x1, y1 = box
    cx, cy = center or ((x0 + x1) / 2, (y0 + y1) / 2)
    if side is None:
        side = max((x1 - x0) * sar, y1 - y0, 16) * (1 + 2 * margin)
    # The crop must contain the box even when its centre was moved.
    side = max(side, 2 * max(cx - x0, x1 - cx) * sar, 2 * max(cy - y0, y1 - cy))
    crop_w, crop_h = int(np.ceil(min(side / sar, width))), int(np.ceil(min(side, height)))
    left = int(np.clip(np.floor(cx - crop_w / 2), 0, width - crop_w))
    top = int(np.clip(np.floor(cy - crop_h / 2), 0, height - crop_h))
    # Clamping to the frame can shift the crop off the box by a pixel of rounding: pull it back.
    left, top = min(left, x0), min(top, y0)
    left, top = max(left, x1 - crop_w), max(top, y1 - crop_h)
    return left, top, left + crop_w, top + crop_h


def stabilised_crops(
    boxes: Sequence[Box | None], width: int, height: int, margin: float, window: int = CROP_WINDOW, sar: float = 1.0
) -> list[Box | None]:
    """Crop boxes for every frame (from its mask's bounding box, None: no object), smoothed over
    time so the crop does not jitter (CropStabiliser, all boxes known)."""
    stabiliser: CropStabiliser[None] = CropStabiliser(width, height, margin, window, sar)
    crops: list[Box | None] = [None] * len(boxes)
    for box in boxes:
        for index, crop, _ in stabiliser.add(box, None):
            crops[index] = crop
    for index, crop, _ in stabiliser.finish():
        crops[index] = crop
    return crops


class CropStabiliser(Generic[T]):
    """Crop boxes smoothed over time, for boxes that arrive frame by frame (as tracking makes them
    final).

    SAM3's mask edges wobble from frame to frame; a crop that follows them exactly makes
    InstructPix2Pix see a shaking image and flicker. Centre and size are averaged over `window`
    frames of the same visible stretch of the object, centred: a frame's crop is final once the
    boxes `window // 2` frames past it are known, or its stretch ended before. What a frame
    carries along (its pixels) comes out with its crop; nothing older than half a window is kept.
    """

    def __init__(self, width: int, height: int, margin: float, window: int = CROP_WINDOW, sar: float = 1.0) -> None:
        self._width, self._height, self._margin, self._half = width, height, margin, window // 2
        self._sar = sar  # sample aspect ratio: crops are square on screen (crop_box)
        self._boxes: deque[Box | None] = deque()  # boxes of frames [self._first, self._first + len)
        self._first = 0
        self._waiting: deque[tuple[int, T]] = deque()  # frames with a box whose crop is not final yet

    def add(self, box: Box | None, item: T) -> list[tuple[int, Box, T]]:
        """The next frame's mask box (None: no object) and what it carries; returns (index, crop,
        item) of the frames whose crop is now final, in order."""
        index = self._first + len(self._boxes)
        self._boxes.append(box)
        if box is not None:
            self._waiting.append((index, item))
        return self._release(ended=False)

    def finish(self) -> list[tuple[int, Box, T]]:
        """The video ended: the crops still waiting."""
        return self._release(ended=True)

    def _box(self, index: int) -> Box | None:
        return self._boxes[index - self._first]

    def _release(self, ended: bool) -> list[tuple[int, Box, T]]:
        released = []
        known = self._first + len(self._boxes)  # frames [0, known) have their box
        while self._waiting:
            index, item = self._waiting[0]
            lo, hi = index, index  # the stretch of consecutive frames with the object, within the window
            while lo > max(0, index - self._half) and self._box(lo - 1) is not None:
                lo -= 1
            while hi < min(known - 1, index + self._half) and self._box(hi + 1) is not None:
                hi += 1
            if not ended and hi == known - 1 and hi < index + self._half:
                break  # the stretch may go on in frames not known yet
            released.append((index, self._crop(index, lo, hi), item))
            self._waiting.popleft()
        keep_from = (self._waiting[0][0] if self._waiting else known) - self._half
        while self._first < keep_from:
            self._boxes.popleft()
            self._first += 1
        return released

    def _crop(self, index: int, lo: int, hi: int) -> Box:
        stretch = [self._box(i) for i in range(lo, hi + 1)]
        center = tuple(np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in stretch]).mean(axis=0))
        side = max(max((b[2] - b[0]) * self._sar, b[3] - b[1], 16) * (1 + 2 * self._margin) for b in stretch)
        box = self._box(index)
        assert box is not None
        return crop_box(box, self._width, self._height, self._margin, center=center, side=float(side), sar=self._sar)


def grow(box: Box, by: int, width: int, height: int) -> Box:
    """`box` grown by `by` pixels per side, cut to the frame."""
    x0, y0, x1, y1 = box
    return max(0, x0 - by), max(0, y0 - by), min(width, x1 + by), min(height, y1 + by)


def region(frame: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of `frame` inside `box` (a view)."""
    return frame[box[1] : box[3], box[0] : box[2]]


def cut_crop(frame: np.ndarray, box: Box, size: int) -> np.ndarray:
    """The crop `box` of `frame`, resized to `size` x `size` (what the model edits)."""
    pixels = region(frame, box)
    if min(pixels.shape[:2]) > size:
        return shrink(pixels, (size, size))
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)
