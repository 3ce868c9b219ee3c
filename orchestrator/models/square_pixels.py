"""Anamorphic video (sample aspect ratio != 1, e.g. DV's 40:33) shown to SAM3 in square pixels.

A player stretches each stored pixel `sar` times as wide as tall; SAM3 should see the shapes the
viewer sees (a round wheel, not an oval one). The tracker's frames are resampled to square pixels
(widened when sar > 1, made taller when sar < 1, so no detail is dropped) and what it finds is
mapped back to the stored pixels: boxes scaled, masks resized (linear, cut at one half, as
grpc_client scales masks up). The editor's crops get the same through their geometry
(vision.crop: a crop square on screen, resized to the square working size).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import cv2
import numpy as np

from videoedit.v1.contract import FramePrompt

from .base import Detection, Segmentation, Tracker


def square_size(width: int, height: int, sar: Fraction) -> tuple[int, int]:
    """(width, height) of a frame stored at width x height, in square pixels."""
    if sar >= 1:
        return max(1, round(width * sar)), height
    return width, max(1, round(height / sar))


class SquarePixelTracker:
    """A Tracker that is handed stored (anamorphic) frames and gives its own tracker square ones."""

    def __init__(self, tracker: Tracker, sar: Fraction) -> None:
        self._tracker, self._sar = tracker, sar
        self.persistent = tracker.persistent

    def segment(
        self, frames: Sequence[np.ndarray], first_frame: int, visual: Sequence[FramePrompt] = ()
    ) -> Segmentation:
        height, width = frames[0].shape[:2]
        size = square_size(width, height, self._sar)
        square = [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames]
        sx, sy = size[0] / width, size[1] / height
        found = self._tracker.segment(square, first_frame, [p.scaled(sx, sy) for p in visual])
        return Segmentation(
            [[_stored(d, width, height, sx, sy) for d in detections] for detections in found.frames], found.prompts
        )

    def close(self) -> None:
        self._tracker.close()


def _stored(detection: Detection, width: int, height: int, sx: float, sy: float) -> Detection:
    x0, y0, x1, y1 = detection.box
    mask = cv2.resize(detection.mask.view(np.uint8) * np.uint8(255), (width, height), interpolation=cv2.INTER_LINEAR)
    return Detection(
        detection.object_id, detection.prompt, detection.score, (x0 / sx, y0 / sy, x1 / sx, y1 / sy), mask >= 128
    )


def square_pixels(tracker: Tracker, sar: Fraction) -> Tracker:
    """`tracker` as is for square pixels, else wrapped to see them square."""
    return tracker if sar == 1 else SquarePixelTracker(tracker, sar)
