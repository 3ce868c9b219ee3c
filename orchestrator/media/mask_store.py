"""Per-frame masks spooled to disk, one bit per pixel.

A 1080p mask is 2 MB as bools but 260 KB packed. Each frame's record sits at a fixed offset of a
file, read and written with pread/pwrite: the masks of a long video stay on disk (a memory map
would count every touched page in the process's memory), and any frame is one read away. Rows
are packed separately, so a box of a mask reads and unpacks only its own rows. Each frame's
bounding box also goes to an IndexLog beside the file, so a resumed job opens the store again
with the masks of the frames its checkpoint says are final (`resume_up_to`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..vision.crop import Box, mask_bbox
from .index_log import IndexLog

_NO_BOX = (-1, -1, -1, -1)


class MaskStore:
    def __init__(self, path: Path, count: int, height: int, width: int, resume_up_to: int = 0):
        """A store for `count` frames' masks; `resume_up_to` > 0: the one an earlier attempt wrote
        at `path`, keeping frames [0, resume_up_to) (ValueError when it lacks any of them)."""
        self.count, self.height, self.width = count, height, width
        self._row_bytes = (width + 7) // 8
        resume = resume_up_to > 0 and path.exists()
        self._file = open(path, "r+b" if resume else "w+b")  # closed by close(), or when the store is dropped
        self._file.truncate(count * height * self._row_bytes)  # sparse: unwritten frames read as empty
        self._boxes: list[Box | None] = [None] * count
        self._log = IndexLog(path.with_suffix(".boxes"), 5, resume)
        if resume_up_to > 0:
            self._restore(resume_up_to)

    def _restore(self, end: int) -> None:
        kept = [r for r in self._log.records() if r[0] < end]
        for index, *box in kept:
            self._boxes[index] = None if tuple(box) == _NO_BOX else (box[0], box[1], box[2], box[3])
        if len({r[0] for r in kept}) != end:
            self.close()
            raise ValueError(f"the mask store holds {len(kept)} of the {end} frames its checkpoint names")
        self._log.rewrite(kept)

    def put(self, index: int, mask: np.ndarray) -> None:
        os.pwrite(self._file.fileno(), np.packbits(mask, axis=1).tobytes(), self._offset(index, 0))
        box = mask_bbox(mask)
        self._boxes[index] = box
        self._log.append(index, *(box or _NO_BOX))

    def sync(self) -> None:
        """Make what was put durable (before a checkpoint says so)."""
        os.fdatasync(self._file.fileno())
        self._log.sync()

    def get(self, index: int) -> np.ndarray:
        return self.region(index, (0, 0, self.width, self.height))

    def region(self, index: int, box: Box) -> np.ndarray:
        """The frame's mask inside `box` (bool, box-sized)."""
        x0, y0, x1, y1 = box
        data = os.pread(self._file.fileno(), (y1 - y0) * self._row_bytes, self._offset(index, y0))
        packed = np.frombuffer(data, np.uint8).reshape(y1 - y0, self._row_bytes)
        rows = np.unpackbits(packed[:, x0 // 8 : (x1 + 7) // 8], axis=1)
        return rows[:, x0 % 8 : x0 % 8 + x1 - x0].astype(bool)

    def _offset(self, index: int, row: int) -> int:
        return (index * self.height + row) * self._row_bytes

    def boxes(self) -> list[Box | None]:
        """Bounding box of every frame's mask (None: empty)."""
        return list(self._boxes)

    def box(self, index: int) -> Box | None:
        """Bounding box of the frame's mask, None when the mask is empty."""
        return self._boxes[index]

    def frames_with_object(self) -> int:
        return sum(b is not None for b in self._boxes)

    def close(self) -> None:
        self._file.close()
        self._log.close()

    def __enter__(self) -> MaskStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
