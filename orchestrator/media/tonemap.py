"""The SDR picture the models see of an HDR source (PQ or HLG), and the exact way back.

The models (SAM3, InstructPix2Pix) know 8-bit BT.709 SDR. An HDR signal read as if it were SDR
looks flat and washed out, so they see a tone-mapped rendition instead, and what they paint is
mapped back through the inverse into the source's signal before encoding. Only edited pixels
take that way back: every other pixel is written as the decoded sample (pipeline.saving splices),
so this map never needs to round-trip the untouched picture.

The curve, per channel R, G, B of the BT.2020 non-linear signal E' (0..1):
1. To display light in cd/m2: PQ by the SMPTE ST 2084 EOTF; HLG by the BT.2100 inverse OETF and
   the OOTF's system gamma 1.2 of a 1000 cd/m2 display (applied per channel, not on luminance as
   BT.2100 does, so that each channel's curve stays a 1-D map and is inverted exactly).
2. Relative to HDR reference white, 203 cd/m2 (BT.2408; HLG's 75% signal): x = L / 203.
3. Extended Reinhard, T(x) = x (1 + x / w^2) / (1 + x), w = 1000 / 203: slope 1 at black, the
   1000 cd/m2 peak (PQ's usual mastering peak, HLG's nominal display) at SDR white, brighter PQ
   clipped there. Fixed rather than read from the mastering-display side data, which not every
   frame carries: every frame of a clip gets the same map.
Then the 3x3 BT.2020 -> BT.709 matrix on that (linear) light, clipped to 0..1 (colours outside
BT.709 are clipped, hence the edited pixels' way back only), and BT.709's BT.1886 display gamma
2.4 to 8-bit codes (a table over the square root of light).

Steps 1-3 are one LUT per channel over 16384 signal levels (16 per 10-bit sample); the
way back is BT.1886 (a 256-entry LUT), the inverse matrix (BT.709 lies inside BT.2020: its 0..1
light maps into 0..1) and the same LUT inverted numerically (it increases strictly), tabled over
65536 levels of the square root of light.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

PQ, HLG = 16, 18  # AVColorTransferCharacteristic: SMPTE ST 2084 and ARIB STD-B67
REFERENCE_WHITE = 203.0  # cd/m2: HDR reference (diffuse) white, BT.2408
PEAK = 1000.0  # cd/m2: mapped to SDR white
SDR_GAMMA = 2.4  # BT.1886
LEVELS = 16384  # signal levels of the per-channel LUT (16x the 10-bit samples)
# Levels of the tables over the square root of light (finer near black, where 8-bit SDR codes
# are: the first code, 1.7e-6 of white, is 85 levels up).
INVERSE_LEVELS = 65536

# Linear-light BT.2020 RGB -> BT.709 RGB (BT.2087).
BT2020_TO_BT709 = np.array(
    [
        [1.660491, -0.587641, -0.072850],
        [-0.124550, 1.132900, -0.008349],
        [-0.018151, -0.100579, 1.118730],
    ]
)

# SMPTE ST 2084 constants.
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# BT.2100 HLG constants and the OOTF's system gamma at a 1000 cd/m2 display.
_A, _B, _C = 0.17883277, 0.28466892, 0.55991073
HLG_GAMMA = 1.2


def pq_eotf(signal: np.ndarray) -> np.ndarray:
    """PQ signal 0..1 -> display light, cd/m2."""
    p = np.power(np.clip(signal, 0, 1), 1 / _M2)
    return 10000 * np.power(np.maximum(p - _C1, 0) / (_C2 - _C3 * p), 1 / _M1)


def hlg_display(signal: np.ndarray) -> np.ndarray:
    """HLG signal 0..1 -> display light of a 1000 cd/m2 display, cd/m2 (inverse OETF, then the
    OOTF's gamma per channel)."""
    e = np.clip(signal, 0, 1)
    scene = np.where(e <= 0.5, e * e / 3, (np.exp((e - _C) / _A) + _B) / 12)
    return PEAK * np.power(scene, HLG_GAMMA)


def reinhard(x: np.ndarray, white: float = PEAK / REFERENCE_WHITE) -> np.ndarray:
    """Extended Reinhard: slope 1 at 0, `white` -> 1, clipped above."""
    return np.minimum(x * (1 + x / (white * white)) / (1 + x), 1.0)


@dataclass(frozen=True)
class ToneMap:
    """One HDR transfer's map to SDR and back (see the module's docstring)."""

    transfer: int  # PQ or HLG
    curve: np.ndarray  # float64 LEVELS: signal level i/(LEVELS-1) -> tone-mapped BT.2020 light 0..1
    inverse: np.ndarray  # float32 INVERSE_LEVELS: sqrt(light) i/(INVERSE_LEVELS-1) -> signal 0..1

    @classmethod
    def of(cls, transfer: int) -> ToneMap:
        return _tone_map(transfer)

    @property
    def name(self) -> str:
        return {PQ: "PQ", HLG: "HLG"}[self.transfer]

    def describe(self) -> str:
        """The curve in a few words, for the log and the final status."""
        light = "PQ EOTF" if self.transfer == PQ else f"HLG OOTF {PEAK:g} cd/m2"
        return f"{light}, extended Reinhard to {PEAK:g} cd/m2, BT.2020 -> BT.709"

    def to_sdr(self, signal: np.ndarray) -> np.ndarray:
        """Non-linear BT.2020 RGB signal (float, 0..1, HxWx3) -> BT.709 SDR RGB uint8."""
        index = np.rint(np.clip(signal, 0, 1) * (LEVELS - 1)).astype(np.int32)
        light = self.curve.astype(np.float32)[index]
        light = np.clip(cv2.transform(light, _BT2020_TO_BT709), 0, 1)
        return _SDR_CODES[np.rint(cv2.sqrt(light) * (INVERSE_LEVELS - 1)).astype(np.int32)]

    def to_signal(self, sdr: np.ndarray) -> np.ndarray:
        """BT.709 SDR RGB uint8 (HxWx3) -> non-linear BT.2020 RGB signal (float32, 0..1) that
        to_sdr maps back to it (to rounding: the way edited pixels go back into the source)."""
        light = cv2.LUT(sdr, _SDR_LIGHT)  # float32 0..1
        light = np.clip(cv2.transform(light, _BT709_TO_BT2020), 0, 1)
        index = np.rint(cv2.sqrt(light) * (INVERSE_LEVELS - 1)).astype(np.int32)
        return self.inverse[index]


_SDR_LIGHT = np.power(np.arange(256) / 255, SDR_GAMMA).astype(np.float32)
# BT.1886's inverse as a table over the square root of light (a third of cv2.pow's time).
_SDR_CODES = np.rint(np.power(np.linspace(0, 1, INVERSE_LEVELS), 2 / SDR_GAMMA) * 255).astype(np.uint8)
_BT2020_TO_BT709 = BT2020_TO_BT709.astype(np.float32)
_BT709_TO_BT2020 = np.linalg.inv(BT2020_TO_BT709).astype(np.float32)


@cache
def _tone_map(transfer: int) -> ToneMap:
    signal = np.arange(LEVELS) / (LEVELS - 1)
    light = pq_eotf(signal) if transfer == PQ else hlg_display(signal) if transfer == HLG else None
    if light is None:
        raise ValueError(f"transfer {transfer} is not HDR (PQ {PQ}, HLG {HLG})")
    curve = reinhard(light / REFERENCE_WHITE)
    # Strictly increasing up to where it reaches 1 (PQ above the peak is clipped flat there; the
    # inverse stops at the first level that reaches it, the peak).
    assert (np.diff(curve[curve < 1]) > 0).all()
    top = int(np.argmax(curve >= 1)) if curve[-1] >= 1 else LEVELS - 1  # where it reaches 1
    roots = np.linspace(0, 1, INVERSE_LEVELS)
    inverse = np.interp(roots * roots, curve[: top + 1], signal[: top + 1]).astype(np.float32)
    return ToneMap(transfer, curve, inverse)
