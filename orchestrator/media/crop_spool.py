"""Edited regions of frames spooled to disk: for each frame that has one, a box and its pixels.

What the edit changed lies inside the crop box, so stages hand on only those boxes (raw,
lossless) instead of re-encoding whole frames; the saving pass pastes them into the decoded
source. Memory holds one small index entry per frame, never pixels. Stages on different threads
may put into one spool (keyframe edits and the edits carried from them). Each put also goes to
an IndexLog beside the spool, so a resumed job opens it again with the edits of the frames its
checkpoint says are final (`resume_up_to`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from ..vision.crop import Box, stretches
from .index_log import IndexLog


class CropSpool:
    def __init__(self, path: Path, count: int, resume_up_to: int = 0):
        """A spool for `count` frames' edits; `resume_up_to` > 0: the one an earlier attempt wrote
        at `path`, keeping the edits of frames [0, resume_up_to)."""
        self.path, self.count = path, count
        resume = resume_up_to > 0 and path.exists()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | (0 if resume else os.O_TRUNC), 0o600)
        self._end = 0
        self._end_lock = threading.Lock()
        self._index: list[tuple[Box, int] | None] = [None] * count  # box, byte offset
        self._log = IndexLog(path.with_suffix(".index"), 6, resume)
        if resume:
            self._restore(resume_up_to)

    def _restore(self, end: int) -> None:
        size = os.fstat(self._fd).st_size
        kept = []
        for index, x0, y0, x1, y1, offset in self._log.records():
            length = (y1 - y0) * (x1 - x0) * 3
            if index < end and offset + length <= size:
                self._index[index] = ((x0, y0, x1, y1), offset)
                self._end = max(self._end, offset + length)
                kept.append((index, x0, y0, x1, y1, offset))
        self._log.rewrite(kept)

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
        self._log.append(index, *box, offset)

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

    def stretches(self) -> list[tuple[int, int]]:
        """The runs of consecutive frames that have a region: (first, last) each, in order."""
        return stretches(self._index)

    def sync(self) -> None:
        """Make what was put durable (before a checkpoint says so)."""
        os.fdatasync(self._fd)
        self._log.sync()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._log.close()

    def __enter__(self) -> CropSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
