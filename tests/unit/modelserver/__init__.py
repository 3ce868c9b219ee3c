"""Model-server tests; `moving_rectangle` is the clip the SAM3 backend tests track."""

import numpy as np


def moving_rectangle(n: int, h: int = 96, w: int = 128) -> list[np.ndarray]:
    """`n` frames of a red rectangle moving right by 6 pixels a frame on a grey background."""
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 40, np.uint8)
        x = 10 + 6 * i
        f[30:60, x : x + 30] = (200, 30, 30)
        frames.append(f)
    return frames
