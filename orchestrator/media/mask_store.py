"""Per-frame masks spooled to disk, one bit per pixel.

A 1080p mask is 2 MB as bools but 260 KB packed; a memory-mapped file keeps
the masks of a long video out of RAM while any frame stays one slice away.
Rows are packed separately, so a box of a mask unpacks only its own rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..vision.crop import Box, mask_bbox


class MaskStore:
    def __init__(self, path: Path, count: int, height: int, width: int):
        self.count, self.height, self.width = count, height, width
        self._data = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, height, (width + 7) // 8))
        self._boxes: list[Optional[Box]] = [None] * count

    def put(self, index: int, mask: np.ndarray) -> None:
        self._data[index] = np.packbits(mask, axis=1)
        self._boxes[index] = mask_bbox(mask)

    def get(self, index: int) -> np.ndarray:
        return self.region(index, (0, 0, self.width, self.height))

    def region(self, index: int, box: Box) -> np.ndarray:
        """The frame's mask inside `box` (bool, box-sized)."""
        x0, y0, x1, y1 = box
        rows = np.unpackbits(self._data[index, y0:y1, x0 // 8:(x1 + 7) // 8], axis=1)
        return rows[:, x0 % 8:x0 % 8 + x1 - x0].astype(bool)

    def boxes(self) -> list[Optional[Box]]:
        """Bounding box of every frame's mask (None: empty)."""
        return list(self._boxes)

    def box(self, index: int) -> Optional[Box]:
        """Bounding box of the frame's mask, None when the mask is empty."""
        return self._boxes[index]

    def frames_with_object(self) -> int:
        return sum(b is not None for b in self._boxes)
