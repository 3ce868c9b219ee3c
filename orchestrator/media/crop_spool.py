"""Edited regions of frames spooled to disk: for each frame that has one, a box and its pixels.

What the edit changed lies inside the crop box, so stages hand on only those boxes (raw,
lossless) instead of re-encoding whole frames; the saving pass pastes them into the decoded
source. Memory holds one small index entry per frame, never pixels. Stages on different threads
may put into one spool (keyframe edits and the edits carried from them).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..vision.crop import Box


class CropSpool:
    def __init__(self, path: Path, count: int):
        self.path, self.count = path, count
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._end = 0
        self._end_lock = threading.Lock()
        self._index: list[tuple[Box, int] | None] = [None] * count  # box, byte offset

    def put(self, index: int, box: Box, pixels: np.ndarray) -> None:
        """Store the region `box` of frame `index` (uint8, box-sized, 3 channels)."""
        x0, y0, x1, y1 = box
        if pixels.shape != (y1 - y0, x1 - x0, 3) or pixels.dtype != np.uint8:
            raise ValueError(f"frame {index}: {pixels.shape} {pixels.dtype} pixels for box {box}")
        data = np.ascontiguousarray(pixels).tobytes()
        with self._end_lock:  # reserve the bytes; writers then write their own ranges
            offset = self._end
            self._end += len(data)
        os.pwrite(self._fd, data, offset)
        self._index[index] = (box, offset)

    def get(self, index: int) -> tuple[Box, np.ndarray] | None:
        """(box, pixels) of frame `index` (read-only), or None when it has no region."""
        entry = self._index[index]
        if entry is None:
            return None
        (x0, y0, x1, y1), offset = entry
        shape = (y1 - y0, x1 - x0, 3)
        data = os.pread(self._fd, shape[0] * shape[1] * 3, offset)
        return entry[0], np.frombuffer(data, np.uint8).reshape(shape)

    def has(self, index: int) -> bool:
        """Frame `index` has a region (False past the last frame)."""
        return 0 <= index < self.count and self._index[index] is not None

    def frames(self) -> int:
        return sum(e is not None for e in self._index)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> CropSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
