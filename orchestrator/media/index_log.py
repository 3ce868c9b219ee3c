"""An append-only log of fixed-size integer records beside a spool: what a spool's in-memory index
holds (a frame's box, where its bytes are), made durable so an interrupted job can open the
spool again and find what it wrote.

Records are appended as they are made (one pwrite each, at the offset reserved for it); a record
cut short by a crash is ignored on reading, and readers keep only the frames their checkpoint
says are final.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np


class IndexLog:
    def __init__(self, path: Path, fields: int, resume: bool = False):
        """`fields` int64 values per record. `resume`: keep the records already there (else start empty)."""
        self._record = fields * 8
        flags = os.O_RDWR | os.O_CREAT | (0 if resume else os.O_TRUNC)
        self._fd = os.open(path, flags, 0o600)
        size = os.fstat(self._fd).st_size
        self._end = size - size % self._record  # a torn last record is written over
        self._lock = threading.Lock()

    def append(self, *values: int) -> None:
        data = np.array(values, np.int64).tobytes()
        with self._lock:
            offset = self._end
            self._end += self._record
        os.pwrite(self._fd, data, offset)

    def records(self) -> Iterator[tuple[int, ...]]:
        """Every whole record, oldest first."""
        data = os.pread(self._fd, self._end, 0)
        rows = np.frombuffer(data, np.int64).reshape(-1, self._record // 8)
        for row in rows:
            yield tuple(int(v) for v in row)

    def rewrite(self, records: list[tuple[int, ...]]) -> None:
        """Keep only `records` (what a resumed spool kept), so later appends follow them."""
        data = np.array(records, np.int64).reshape(-1, self._record // 8).tobytes()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))
        self._end = len(data)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
