"""Crop geometry: crops contain the object, stay in the frame, and do not jitter."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.media.mask_store import MaskStore
from orchestrator.vision.crop import CropStabiliser, crop_box, stabilised_crops


@pytest.mark.parametrize(
    "box, size",
    [
        ((10, 20, 50, 40), (320, 240)),
        ((0, 0, 300, 50), (320, 240)),
        ((300, 200, 320, 240), (320, 240)),
        ((5, 5, 6, 6), (20, 20)),
    ],
)
def test_crop_box_contains_the_object_and_stays_in_the_frame(box, size):
    width, height = size
    x0, y0, x1, y1 = crop_box(box, width, height, margin=0.15)
    assert 0 <= x0 <= box[0] and 0 <= y0 <= box[1] and box[2] <= x1 <= width and box[3] <= y1 <= height


def test_crop_box_is_square_when_the_frame_allows():
    x0, y0, x1, y1 = crop_box((100, 100, 140, 120), 320, 240, margin=0.25)
    assert x1 - x0 == y1 - y0 == 60


def test_stabilised_crops_jitter_less_and_still_contain_the_object(tmp_path):
    rng = np.random.default_rng(3)
    store = MaskStore(tmp_path / "masks.npy", 40, 240, 320)
    raw = []
    for i in range(40):
        if 20 <= i < 23:  # the object leaves the frame for a moment
            store.put(i, np.zeros((240, 320), bool))
            continue
        x, y = 60 + 3 * i + rng.integers(-6, 7), 100 + rng.integers(-6, 7)  # steady motion + wobble
        w, h = 50 + rng.integers(-8, 9), 40 + rng.integers(-8, 9)
        mask = np.zeros((240, 320), bool)
        mask[y : y + h, x : x + w] = True
        store.put(i, mask)
        raw.append(crop_box(store.box(i), 320, 240, 0.15))
    crops = stabilised_crops(store.boxes(), 320, 240, 0.15)
    assert [c is None for c in crops] == [store.box(i) is None for i in range(40)]
    for i, crop in enumerate(crops):
        if crop is not None:
            x0, y0, x1, y1 = store.box(i)
            assert crop[0] <= x0 and crop[1] <= y0 and x1 <= crop[2] and y1 <= crop[3]
            assert 0 <= crop[0] and 0 <= crop[1] and crop[2] <= 320 and crop[3] <= 240

    def jitter(boxes):  # mean frame-to-frame change of the crop centre, second difference
        centers = np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in boxes])
        return np.abs(np.diff(centers, n=2, axis=0)).mean()

    steady = [c for c in crops[:20] if c is not None]
    assert jitter(steady) < 0.5 * jitter(raw[:20])


def reference_crops(boxes, width, height, margin, window):
    """The stabilised crops by their definition, all boxes known: centre and side averaged over
    the frame's stretch of consecutive boxes within the centred window."""
    half, crops = window // 2, []
    for i, box in enumerate(boxes):
        if box is None:
            crops.append(None)
            continue
        lo, hi = i, i
        while lo > max(0, i - half) and boxes[lo - 1] is not None:
            lo -= 1
        while hi < min(len(boxes) - 1, i + half) and boxes[hi + 1] is not None:
            hi += 1
        stretch = boxes[lo : hi + 1]
        center = tuple(np.array([((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in stretch]).mean(axis=0))
        side = max(max(b[2] - b[0], b[3] - b[1], 16) * (1 + 2 * margin) for b in stretch)
        crops.append(crop_box(box, width, height, margin, center=center, side=float(side)))
    return crops


@pytest.mark.parametrize("seed", range(20))
def test_crop_stabiliser_gives_each_crop_once_its_window_is_known_and_as_if_all_were(seed):
    """Tracking hands boxes over frame by frame: a crop comes out once the boxes half a window past
    it are known, or its stretch of the object ended, never later, and equal to the crop computed
    with every box known."""
    rng = np.random.default_rng(seed)
    window, margin = int(rng.choice([1, 3, 9])), float(rng.choice([0.0, 0.15]))
    boxes = []
    for _ in range(int(rng.integers(1, 60))):
        if rng.random() < 0.2:
            boxes.append(None)
            continue
        x, y = int(rng.integers(0, 280)), int(rng.integers(0, 200))
        boxes.append((x, y, x + int(rng.integers(1, 40)), y + int(rng.integers(1, 40))))
    stabiliser = CropStabiliser(320, 240, margin, window)
    crops, released_after = [None] * len(boxes), {}
    for added, box in enumerate(boxes):
        for index, crop, item in stabiliser.add(box, f"frame {added}"):
            assert item == f"frame {index}" and index not in released_after
            crops[index], released_after[index] = crop, added
    for index, crop, _ in stabiliser.finish():
        crops[index], released_after[index] = crop, len(boxes)
    assert crops == reference_crops(boxes, 320, 240, margin, window)
    assert list(released_after) == sorted(released_after)  # in frame order
    for index, added in released_after.items():
        stretch_end = next((j for j in range(index + 1, len(boxes)) if boxes[j] is None), len(boxes))
        assert added == min(index + window // 2, stretch_end, len(boxes))
