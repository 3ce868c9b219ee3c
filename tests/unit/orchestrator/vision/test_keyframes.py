"""Keyframes and the flow they carry edits along: which frames are keyframes, where a pixel of
a frame lies in a keyframe, and how carried values are trusted and blended."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from orchestrator.vision.crop import stretches
from orchestrator.vision.keyframes import FlowMap, Keyframe, carried, gap_area, interval_keyframes, positions
from orchestrator.vision.optical_flow import FlowArea

H, W = 96, 160


def textured(shift: float) -> np.ndarray:
    """A smooth random texture moved right by `shift` pixels (sub-pixel by interpolation)."""
    rng = np.random.default_rng(4)
    coarse = rng.integers(40, 220, (H // 8 + 2, W // 8 + 4), dtype=np.uint8).astype(np.float32)
    big = np.kron(coarse, np.ones((8, 8), np.float32))
    big = cv2.GaussianBlur(big, (0, 0), 3)
    xs = np.arange(W, dtype=np.float32) - shift + 8
    rows = np.stack([np.interp(xs, np.arange(big.shape[1]), big[y]) for y in range(H)])
    return np.repeat(np.clip(rows, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_stretches_and_interval_keyframes_include_each_stretchs_ends():
    boxes = [None, (0, 0, 1, 1), (0, 0, 1, 1), (0, 0, 1, 1), (0, 0, 1, 1), (0, 0, 1, 1), None, (0, 0, 1, 1)]
    assert stretches(boxes) == [(1, 5), (7, 7)]
    keys = interval_keyframes(boxes, 3)
    assert [i for i, k in enumerate(keys) if k] == [1, 4, 5, 7]
    assert interval_keyframes(boxes, 1) == [b is not None for b in boxes]


def test_positions_follow_the_motion_back_to_the_keyframe():
    """The picture moves 1.5 px per frame: after 4 frames a pixel was 6 px to the left."""
    box = (40, 20, 120, 76)
    flow_map = FlowMap(textured(0), FlowArea.around(box, W, H))
    for t in range(1, 5):
        found = flow_map.step(flow_map.area.gray(textured(1.5 * t)))
    xs, ys = positions(found, box, flow_map.area)
    expected_x = np.arange(40, 120, dtype=np.float32)[None, :] - 6.0
    assert np.median(np.abs(xs - expected_x)) < 0.35
    assert np.median(np.abs(ys - np.arange(20, 76)[:, None])) < 0.2


def test_a_small_object_in_a_full_hd_frame_is_followed_back_to_its_keyframe():
    """Flow on the gap's area keeps a 72 px object at full resolution (whole-frame flow at 480 px
    shrinks it to 18 px: 1.7 px short per frame, 5.9 px after 3)."""
    height, width, side, speed = 1080, 1920, 72, 3
    rng = np.random.default_rng(3)
    background = cv2.GaussianBlur(rng.integers(0, 255, (height, width, 3), dtype=np.uint8), (0, 0), 2)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (side, side, 3), dtype=np.uint8), (0, 0), 1.5)

    def frame(t: int) -> np.ndarray:
        image = background.copy()
        image[500 : 500 + side, 900 + speed * t : 900 + speed * t + side] = texture
        return image

    boxes = [(880 + speed * t, 480, 992 + speed * t, 592) for t in range(4)]
    flow_map = FlowMap(frame(0), gap_area(boxes, 0, 3, width, height))
    for t in range(1, 4):
        found = flow_map.step(flow_map.area.gray(frame(t)))
    inner = (900 + 3 * speed + 12, 512, 900 + 3 * speed + side - 12, 500 + side - 12)
    xs, _ = positions(found, inner, flow_map.area)
    expected_x = np.arange(inner[0], inner[2], dtype=np.float32)[None, :] - 3 * speed
    assert np.abs(xs - expected_x).mean() < 0.5


def test_carried_values_are_trusted_where_the_source_agrees_and_blended_by_distance():
    source = np.full((4, 4, 3), 100, np.uint8)
    same = Keyframe(source=np.full((10, 10, 3), 100, np.uint8), edited=np.full((10, 10, 3), 200, np.uint8))
    other = Keyframe(source=np.full((10, 10, 3), 100, np.uint8), edited=np.full((10, 10, 3), 40, np.uint8))
    xs, ys = np.meshgrid(np.arange(4, dtype=np.float32), np.arange(4, dtype=np.float32))
    pixels, covered = carried(source, [(same, (xs, ys), 0.75), (other, (xs, ys), 0.25)])
    assert covered.all() and pixels == pytest.approx(0.75 * 200 + 0.25 * 40)
    occluded = Keyframe(source=np.full((10, 10, 3), 250, np.uint8), edited=np.full((10, 10, 3), 40, np.uint8))
    pixels, covered = carried(source, [(same, (xs, ys), 0.25), (occluded, (xs, ys), 0.75)])
    assert covered.all() and pixels == pytest.approx(200)  # only the keyframe whose source agrees
    outside = (xs + 100, ys)
    pixels, covered = carried(source, [(occluded, (xs, ys), 0.5), (same, outside, 0.5)])
    assert not covered.any() and (pixels == 100).all()  # nobody trusted: the source, unedited
