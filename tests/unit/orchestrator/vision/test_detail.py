"""Putting back the detail the model's working size lost: through the edit's local gain, so a
recolouring keeps its texture, an inversion gets it inverted, and an unrelated edit none of it."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.errors import InvalidArgument
from orchestrator.jobs.validation import parse_extra
from orchestrator.vision.compositing import fit_crop
from orchestrator.vision.crop import cut_crop
from orchestrator.vision.detail import restore_detail

EDIT_SIZE = 128


def textured_box(side: int) -> np.ndarray:
    """A red object with a fine texture (in every channel, as natural texture is mostly luminance)."""
    yy, xx = np.mgrid[0:side, 0:side]
    pattern = np.sin(xx / 2.1) * np.cos(yy / 1.7)
    return np.stack([150 + 60 * pattern, 60 + 30 * pattern, 50 + 25 * pattern], axis=2).astype(np.uint8)


def edited_by(edit, source: np.ndarray) -> np.ndarray:
    """What the pipeline gets back: the edit of the crop at the model's size, resized to the box."""
    side = source.shape[0]
    return fit_crop(edit(cut_crop(source, (0, 0, side, side), EDIT_SIZE)), (side, side))


def error(image: np.ndarray, target: np.ndarray) -> float:
    return float(np.abs(image.astype(int) - target).mean())


@pytest.mark.parametrize("edit", [lambda c: c[..., ::-1].copy(), lambda c: 255 - c], ids=["red to blue", "inversion"])
def test_a_recolouring_of_a_box_larger_than_the_model_keeps_the_texture(edit):
    source = textured_box(300)  # 2.3x the model's side: its fine texture is lost on the way
    plain = edited_by(edit, source)
    restored = restore_detail(source, plain, EDIT_SIZE)
    target = edit(source)
    assert error(plain, target) > 3.0
    assert error(restored, target) < 0.5 * error(plain, target)


def test_an_edit_that_does_not_follow_the_source_lets_none_of_it_through():
    source = textured_box(300)
    rng = np.random.default_rng(0)
    plain = edited_by(lambda c: rng.integers(0, 256, c.shape).astype(np.uint8), source)
    assert error(restore_detail(source, plain, EDIT_SIZE), plain) < 1.5  # grey levels, of a ~60-level texture


def test_a_box_the_model_sees_whole_loses_little_and_gets_no_worse():
    source = textured_box(100)  # smaller than the model's side: only the resampling round trip
    plain = edited_by(lambda c: 255 - c, source)
    restored = restore_detail(source, plain, EDIT_SIZE)
    assert error(restored, 255 - source) <= error(plain, 255 - source) < 3.0


def test_detail_is_an_extra_option_with_two_values():
    assert parse_extra({}).detail == "model"
    assert parse_extra({"detail": "source"}).detail == "source"
    with pytest.raises(InvalidArgument) as caught:
        parse_extra({"detail": "sharp"})
    assert caught.value.field == "extra[detail]"
