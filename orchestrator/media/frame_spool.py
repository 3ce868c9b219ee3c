"""Lossless frame spool between stages (FFV1 in Matroska, 32-bit BGR0).

Editing and smoothing each produce a full video of frames; keeping them in
RAM would grow with the video, and a lossy codec would change background
pixels. FFV1 is lossless, fast, and decodes back to the exact RGB values.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np


class SpoolWriter:
    def __init__(self, path: Path, width: int, height: int, fps: Fraction):
        self.path = path
        self._container = av.open(str(path), "w", format="matroska")
        self._stream = self._container.add_stream("ffv1", rate=fps)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "bgr0"

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> "SpoolWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_spool(path: Path) -> Iterator[np.ndarray]:
    """Yield the spooled RGB frames in order."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")
