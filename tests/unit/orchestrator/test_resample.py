"""Downscaling: as INTER_AREA where that is cheap, close to it elsewhere, never aliasing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from orchestrator.resample import shrink


def smooth_image(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (0, 0), 3)
    cv2.rectangle(image, (width // 5, height // 4), (width // 2, height // 2), (255, 0, 0), -1)
    return image


def test_a_whole_number_factor_is_exactly_area_averaging():
    image = smooth_image(1080, 1920)
    assert np.array_equal(shrink(image, (128, 72)), cv2.resize(image, (128, 72), interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize("size", [(1008, 567), (512, 288), (512, 512), (301, 177), (1919, 1079)])
def test_any_other_size_is_close_to_area_averaging(size):
    image = smooth_image(1080, 1920)
    out = shrink(image, size)
    assert out.shape == (size[1], size[0], 3)
    area = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - area).mean() < 1.5  # grey levels


def test_fine_detail_averages_out_instead_of_aliasing():
    checkerboard = (np.indices((720, 1280)).sum(axis=0) % 2 * 255).astype(np.uint8)
    out = shrink(checkerboard, (224, 126))  # 5.7x smaller
    assert np.abs(out.astype(int) - 127).max() <= 8  # plain bilinear shows stripes here
    bilinear = cv2.resize(checkerboard, (224, 126), interpolation=cv2.INTER_LINEAR)
    assert np.abs(bilinear.astype(int) - 127).max() > 64
