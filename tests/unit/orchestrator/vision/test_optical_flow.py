"""FlowTrail: where the pixels of an edited box were on earlier frames."""

from __future__ import annotations

import cv2
import numpy as np

from orchestrator.vision.optical_flow import FlowTrail

H, W, SIDE, SPEED = 1080, 1920, 72, 3


def frame_with_object_at(x: int, background: np.ndarray, texture: np.ndarray) -> np.ndarray:
    frame = background.copy()
    frame[500 : 500 + SIDE, x : x + SIDE] = texture
    return frame


def test_the_trail_follows_a_small_object_in_a_full_hd_frame_to_a_fraction_of_a_pixel():
    """Flow is computed around the box at up to FLOW_SIDE pixels: a 72 px object in a 1080p frame
    is followed at full resolution (a whole frame at FLOW_SIDE would shrink it to 18 px)."""
    rng = np.random.default_rng(3)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (0, 0), 2)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (SIDE, SIDE, 3), dtype=np.uint8), (0, 0), 1.5)
    trail = FlowTrail(3)
    for i in range(4):
        x = 900 + SPEED * i
        trail.add(
            frame_with_object_at(x, background, texture), (x - 20, 480, x + SIDE + 20, 592), follows_previous=i > 0
        )
    x = 900 + SPEED * 3
    inner = (x + 12, 512, x + SIDE - 12, 500 + SIDE - 12)  # away from the object's edge (motion boundary)
    xs0, ys0 = np.meshgrid(
        np.arange(inner[0], inner[2], dtype=np.float32), np.arange(inner[1], inner[3], dtype=np.float32)
    )
    steps = list(trail.positions(inner))
    assert len(steps) == 3
    for back, (xs, ys) in enumerate(steps, start=1):
        assert np.abs(xs - (xs0 - SPEED * back)).mean() < 0.25, back
        assert np.abs(ys - ys0).mean() < 0.25, back
