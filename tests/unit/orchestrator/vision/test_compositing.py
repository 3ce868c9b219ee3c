"""Compositing: the paste weight stays inside the eroded mask, the background stays bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.vision.compositing import paste, paste_weight
from orchestrator.vision.crop import crop_box


def test_paste_weight_is_zero_outside_the_eroded_mask():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 30:70] = True
    weight = paste_weight(mask, erode_kernel=10)
    assert weight[~mask].max() == 0
    assert weight[50, 50] == pytest.approx(1.0)
    assert weight[20:25, 30:70].max() == 0  # eroded away at the edge
    column = weight[20:50, 50]
    assert ((column > 0) & (column < 1)).sum() >= 2  # feathered: a ramp, not a hard step


def test_paste_keeps_every_pixel_outside_the_weight_bit_exact():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:110] = True
    box = crop_box((40, 30, 110, 90), 160, 120, 0.15)
    edited = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    weight = paste_weight(mask, erode_kernel=6)
    out = paste(frame, edited, box, weight)
    assert np.array_equal(out[weight == 0], frame[weight == 0])
    assert not np.array_equal(out[weight > 0.99], frame[weight > 0.99])
