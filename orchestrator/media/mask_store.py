"""Per-frame masks spooled to disk, one bit per pixel.

A 1080p mask is 2 MB as bools but 260 KB packed; a memory-mapped file keeps
the masks of a long video out of RAM while any frame stays one slice away.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..vision.crop import Box, mask_bbox


class MaskStore:
    def __init__(self, path: Path, count: int, height: int, width: int):
        self.count, self.height, self.width = count, height, width
        self._row_bytes = (height * width + 7) // 8
        self._data = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, self._row_bytes))
        self._boxes: list[Optional[Box]] = [None] * count

    def put(self, index: int, mask: np.ndarray) -> None:
        self._data[index] = np.packbits(mask.ravel())
        self._boxes[index] = mask_bbox(mask)

    def get(self, index: int) -> np.ndarray:
        bits = np.unpackbits(self._data[index], count=self.height * self.width)
        return bits.reshape(self.height, self.width).astype(bool)

    def boxes(self) -> list[Optional[Box]]:
        """Bounding box of every frame's mask (None: empty)."""
        return list(self._boxes)

    def box(self, index: int) -> Optional[Box]:
        """Bounding box of the frame's mask, None when the mask is empty."""
        return self._boxes[index]

    def frames_with_object(self) -> int:
        return sum(b is not None for b in self._boxes)
