"""Compositing: the paste weight stays inside the eroded mask, the background stays bit-exact."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.vision.compositing import blend, box_paste_mask, box_weight, fit_crop, paste_mask, paste_weight
from orchestrator.vision.crop import crop_box, grow, mask_bbox, region


def test_paste_weight_is_zero_outside_the_eroded_mask():
    mask = np.zeros((100, 100), bool)
    mask[20:80, 30:70] = True
    weight = paste_weight(mask, erode_kernel=10)
    assert weight[~mask].max() == 0
    assert weight[50, 50] == 255
    assert weight[20:25, 30:70].max() == 0  # eroded away at the edge
    column = weight[20:50, 50]
    assert ((column > 0) & (column < 255)).sum() >= 2  # feathered: a ramp, not a hard step


def test_paste_keeps_every_pixel_outside_the_weight_bit_exact():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[30:90, 40:110] = True
    box = crop_box((40, 30, 110, 90), 160, 120, 0.15)
    edited = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    weight = box_weight(lambda b: region(mask, b), box, 160, 120, erode_kernel=6)
    source = region(frame, box)
    out = blend(source, fit_crop(edited, source.shape[1::-1]), weight)
    assert np.array_equal(out[weight == 0], source[weight == 0])
    assert not np.array_equal(out[weight == 255], source[weight == 255])


@pytest.mark.parametrize("seed", range(20))
def test_weights_computed_in_a_box_equal_the_full_frame_ones(seed):
    """Working in the crop box only must not change a single weight: not at the box's edges,
    not where the box meets the frame's edge, for any erode_kernel."""
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(24, 90, 2))
    x0, y0 = int(rng.integers(0, width - 4)), int(rng.integers(0, height - 4))
    x1, y1 = int(rng.integers(x0 + 1, width + 1)), int(rng.integers(y0 + 1, height + 1))
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) > 0.2
    erode = int(rng.integers(0, 16))
    box = grow(mask_bbox(mask) or (x0, y0, x1, y1), int(rng.integers(0, 4)), width, height)
    full_weight, full_mask = paste_weight(mask, erode), paste_mask(mask, erode)
    assert np.array_equal(box_weight(lambda b: region(mask, b), box, width, height, erode), region(full_weight, box))
    assert np.array_equal(box_paste_mask(lambda b: region(mask, b), box, width, height, erode), region(full_mask, box))
    outside = np.ones_like(mask)
    region(outside, box)[:] = False
    assert full_weight[outside].max(initial=0) == 0  # nothing to paste outside the box
