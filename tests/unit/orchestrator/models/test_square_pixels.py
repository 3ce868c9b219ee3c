"""Anamorphic frames (SAR 40:33) reach SAM3 in square pixels: a disc stored as an upright ellipse
is seen round, and what the tracker finds comes back in stored pixels."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from orchestrator.models.fake import FakeModels, red_regions
from orchestrator.models.square_pixels import square_pixels
from orchestrator.vision.crop import crop_box, cut_crop, mask_bbox

SAR = Fraction(40, 33)
W, H, D = 352, 240, 96  # a DV-like frame; the disc's diameter on screen, in rows


def anamorphic_disc(width: int = W, height: int = H, cx: int = 150) -> np.ndarray:
    """A red disc as an anamorphic frame stores it: D / SAR pixels wide, D tall."""
    frame = np.full((height, width, 3), 90, np.uint8)
    axes = (round(D / 2 / SAR), D // 2)
    cv2.ellipse(frame, (cx, height // 2), axes, 0, 0, 360, (210, 30, 40), -1)
    return frame


def extent(mask: np.ndarray) -> tuple[int, int]:
    x0, y0, x1, y1 = mask_bbox(mask)
    return x1 - x0, y1 - y0


def test_the_tracker_sees_square_pixels_and_answers_in_stored_ones():
    seen: list[np.ndarray] = []

    def find(rgb: np.ndarray) -> np.ndarray:
        seen.append(rgb)
        return red_regions(rgb)

    frame = anamorphic_disc()
    stored_w, stored_h = extent(red_regions(frame))
    assert stored_w < 0.85 * stored_h  # squeezed as stored
    tracker = square_pixels(FakeModels(find=find).track(["car"]), SAR)
    [[found]] = tracker.segment([frame], 0).frames
    assert seen[0].shape == (H, round(W * SAR), 3)
    seen_w, seen_h = extent(red_regions(seen[0]))
    assert abs(seen_w - seen_h) <= 2, f"the model saw {seen_w}x{seen_h}: not round"
    truth = red_regions(frame)
    assert found.mask.shape == (H, W)
    assert (found.mask & truth).sum() / (found.mask | truth).sum() > 0.97
    assert np.allclose(found.box, mask_bbox(truth), atol=1.5)
    assert square_pixels(tracker, Fraction(1)) is tracker  # square pixels: as it was


def test_the_editors_crop_is_square_on_screen():
    frame = anamorphic_disc()
    box = crop_box(mask_bbox(red_regions(frame)), W, H, margin=0.2, sar=float(SAR))
    crop_w, crop_h = box[2] - box[0], box[3] - box[1]
    assert abs(crop_w * SAR - crop_h) <= 2, "as wide on screen as tall"
    crop = cut_crop(frame, box, 128)
    seen_w, seen_h = extent(red_regions(crop))
    assert abs(seen_w - seen_h) <= 2, f"the editor saw {seen_w}x{seen_h}: not round"
