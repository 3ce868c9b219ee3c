"""Fine detail the model never saw: the crop goes to InstructPix2Pix at `edit_size`, so an object
larger than that comes back blurred (and an HD object always is), and the blur differs from frame
to frame as the crop box moves over it.

`restore_detail` puts the source's own detail back, transformed the way the edit transformed
colours there: at the model's size, each edited pixel is fitted as a local linear function of
what the model saw (a gain: the guided filter's regression on luminance over a small window); the
source's luminance detail (the source minus its round trip through the model's size) is added
with that gain. A recolouring keeps the texture at full resolution (an inversion gets it
inverted, gain -1); where the edit made something new that does not follow the source, the gain
is ~0 and nothing of the source shows through.

The model's crop is spooled resized to its box, so what the model made is shrunk back here (a
second resample of it, cheap at the model's size).
"""

from __future__ import annotations

import cv2
import numpy as np

from .crop import cut_crop

RADIUS = 3  # window of the local fit, pixels at the model's size
# Regularisation (grey levels squared): flat windows get gain ~0, textured ones their slope.
EPS = 10.0**2
MAX_GAIN = 2.0


def restore_detail(source: np.ndarray, edited: np.ndarray, edit_size: int) -> np.ndarray:
    """`edited` (uint8, box-sized: the model's crop resized back) with `source`'s (the same box)
    detail added through the edit's local gain."""
    height, width = source.shape[:2]
    box = (0, 0, width, height)
    # The guide is luminance, where texture lives: one regression per output channel, cheap.
    seen = _luma(cut_crop(source, box, edit_size))  # what the model was given
    result = cut_crop(edited, box, edit_size).astype(np.float32)  # what it made of it
    window = (2 * RADIUS + 1,) * 2
    mean_seen, mean_result = cv2.blur(seen, window), cv2.blur(result, window)
    variance = cv2.blur(seen * seen, window) - mean_seen * mean_seen
    covariance = cv2.blur(seen[..., None] * result, window) - mean_seen[..., None] * mean_result
    gain = np.clip(covariance / (variance[..., None] + EPS), -MAX_GAIN, MAX_GAIN)
    back = cv2.resize(seen, (width, height), interpolation=cv2.INTER_CUBIC)  # the source, as blurred as the edit
    detail = _luma(source) - back
    out = cv2.resize(gain, (width, height), interpolation=cv2.INTER_LINEAR) * detail[..., None]
    out += edited
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
