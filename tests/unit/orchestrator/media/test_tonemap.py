"""The tone map an HDR source is edited through (media.tonemap): its curves' known points, and its
inverse, which takes an edit's SDR pixels back into the source's signal."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.media.tonemap import HLG, PQ, REFERENCE_WHITE, ToneMap, hlg_display, pq_eotf

GREYS = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1).reshape(16, 16, 3)
COLOURS = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)


def ten_bit(signal: np.ndarray) -> np.ndarray:
    """The signal as a 10-bit sample holds it."""
    return np.rint(signal * 1023) / 1023


def test_the_curves_pass_through_their_standards_points():
    assert pq_eotf(np.array([0.0, 1.0])) == pytest.approx([0, 10000])
    assert pq_eotf(np.array([0.5081])) == pytest.approx([100], rel=0.01)  # PQ's 100 cd/m2
    # HLG's 75% signal is the BT.2408 reference white (203 cd/m2) on a 1000 cd/m2 display.
    assert hlg_display(np.array([0.75])) == pytest.approx([REFERENCE_WHITE], rel=0.01)
    assert hlg_display(np.array([1.0])) == pytest.approx([1000])
    hlg = ToneMap.of(HLG)
    grey = np.full((1, 1, 3), 0.75, np.float32)
    assert hlg.to_sdr(grey)[0, 0].tolist() == [194] * 3  # reference white at SDR linear 0.52
    assert hlg.to_sdr(np.ones((1, 1, 3), np.float32))[0, 0].tolist() == [255] * 3  # the peak at SDR white
    for tone_map in (hlg, ToneMap.of(PQ)):
        assert (np.diff(tone_map.curve[tone_map.curve < 1]) > 0).all(), "strictly increasing: invertible"


@pytest.mark.parametrize("transfer", [PQ, HLG])
def test_sdr_to_hdr_to_sdr_comes_back(transfer):
    tone_map = ToneMap.of(transfer)
    # Greys: exact, even with the signal rounded to 10-bit samples.
    assert np.array_equal(tone_map.to_sdr(ten_bit(tone_map.to_signal(GREYS))), GREYS)
    # Colours (all inside BT.709, so inside BT.2020): within a level, but for dark channels next to
    # bright ones, where the 16384-level LUT is coarser than the gamma's steep start.
    back = tone_map.to_sdr(tone_map.to_signal(COLOURS)).astype(int)
    error = np.abs(back - COLOURS)
    assert error[COLOURS.min(axis=2) >= 32].max() <= 1
    assert (error.max(axis=2) <= 1).mean() > 0.98 and error.mean() < 0.05
    # Rounded to 10-bit samples: a 10-bit BT.2020 step is coarser than 8-bit BT.709 near black
    # once the gamut is converted, so dark saturated colours move a few levels; on average little.
    rounded = np.abs(tone_map.to_sdr(ten_bit(tone_map.to_signal(COLOURS))).astype(int) - COLOURS)
    assert rounded.mean() < 0.3
    assert rounded[COLOURS.min(axis=2) >= 64].max() <= 3


def test_colours_outside_bt709_are_clipped_on_the_way_to_sdr():
    pure_red = np.array([[[1.0, 0.0, 0.0]]], np.float32)  # BT.2020's red primary, at the peak
    assert ToneMap.of(HLG).to_sdr(pure_red)[0, 0].tolist() == [255, 0, 0]
