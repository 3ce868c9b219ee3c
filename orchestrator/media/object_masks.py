"""Every tracked object's mask on every frame it is on, in one append-only file: what a masks job
leaves for later edit jobs to reuse (`extra.masks_from`, the mask cache), and what a job's
`{job_id}_objects.json` and previews are made from.

The pipeline's MaskStore holds only the union of the objects a job edits; this file keeps the
objects apart. Each record is one object on one frame: a header of int32s (frame, object id,
area in pixels, box x0 y0 x1 y1) and the mask inside its box, rows packed to bits. Records are
appended in frame order (the track assembler writes frames in order), so the file describes
itself: a reader scans the headers once for an index; a record cut short by a crash is where a
resumed job's writer carries on (`resume_up_to` keeps the frames before it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..vision.crop import Box, mask_bbox

_HEADER = np.dtype([("frame", "<i4"), ("object", "<i4"), ("area", "<i4"), ("box", "<i4", (4,))])


@dataclass(frozen=True)
class ObjectRecord:
    """One object on one frame, where its mask lies in the file."""

    frame: int
    object_id: int
    area: int  # mask pixels
    box: Box
    offset: int  # of the packed rows

    @property
    def size(self) -> int:
        x0, y0, x1, y1 = self.box
        return (y1 - y0) * ((x1 - x0 + 7) // 8)


class ObjectMasks:
    def __init__(self, path: Path, height: int, width: int, resume_up_to: int = 0):
        """A new file at `path` for frames of `height` x `width` (any file there is replaced), or
        with `resume_up_to` > 0 the one an earlier attempt wrote, keeping frames [0, resume_up_to)."""
        self.path, self.height, self.width = path, height, width
        resume = resume_up_to > 0 and path.exists()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | (0 if resume else os.O_TRUNC), 0o600)
        self.records: list[ObjectRecord] = []
        if resume:
            self.records = [r for r in _scan(self._fd) if r.frame < resume_up_to]
            os.ftruncate(self._fd, self.records[-1].offset + self.records[-1].size if self.records else 0)
        self._end = os.fstat(self._fd).st_size

    @classmethod
    def open(cls, path: Path, height: int, width: int) -> ObjectMasks:
        """A finished file, to read (every whole record)."""
        masks = cls.__new__(cls)
        masks.path, masks.height, masks.width = path, height, width
        masks._fd = os.open(path, os.O_RDONLY)
        masks.records = list(_scan(masks._fd))
        masks._end = os.fstat(masks._fd).st_size
        return masks

    def put(self, index: int, objects: Mapping[int, np.ndarray]) -> None:
        """Frame `index`'s objects (id -> bool mask at the frame's size); frames in order (a
        resumed file is cut after its last frame kept), or any order in a file never resumed."""
        parts = []
        for object_id in sorted(objects):
            mask = objects[object_id]
            box = mask_bbox(mask)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            area = int(np.count_nonzero(mask[y0:y1, x0:x1]))
            header = np.array([(index, object_id, area, box)], _HEADER).tobytes()
            packed = np.packbits(mask[y0:y1, x0:x1], axis=1).tobytes()
            self.records.append(ObjectRecord(index, object_id, area, box, self._end + len(header)))
            parts.append(header + packed)
            self._end += len(header) + len(packed)
        if parts:  # at the end it tracks (a resumed file's fd is at 0)
            data = b"".join(parts)
            os.pwrite(self._fd, data, self._end - len(data))

    def sync(self) -> None:
        """Make what was put durable (before a checkpoint says so)."""
        os.fdatasync(self._fd)

    def mask(self, record: ObjectRecord) -> np.ndarray:
        """The object's mask inside its box (bool, box-sized)."""
        x0, y0, x1, y1 = record.box
        data = os.pread(self._fd, record.size, record.offset)
        rows = np.unpackbits(np.frombuffer(data, np.uint8).reshape(y1 - y0, -1), axis=1)
        return rows[:, : x1 - x0].astype(bool)

    def by_frame(self, ids: Iterable[int] | None = None) -> list[list[ObjectRecord]]:
        """Per frame (as many as the last frame with a record), the records of objects `ids`
        (None: all)."""
        wanted = None if ids is None else set(ids)
        last = max((r.frame for r in self.records), default=-1)  # written in any order (tracking back)
        frames: list[list[ObjectRecord]] = [[] for _ in range(last + 1)]
        for record in self.records:
            if wanted is None or record.object_id in wanted:
                frames[record.frame].append(record)
        return frames

    def union(self, records: Iterable[ObjectRecord]) -> np.ndarray:
        """The union of these records' masks (one frame's) at the frame's size."""
        mask = np.zeros((self.height, self.width), bool)
        for record in records:
            x0, y0, x1, y1 = record.box
            mask[y0:y1, x0:x1] |= self.mask(record)
        return mask

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ObjectMasks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _scan(fd: int) -> Iterable[ObjectRecord]:
    """Every whole record of the file, in order."""
    size, offset = os.fstat(fd).st_size, 0
    while offset + _HEADER.itemsize <= size:
        header = np.frombuffer(os.pread(fd, _HEADER.itemsize, offset), _HEADER)[0]
        x0, y0, x1, y1 = (int(v) for v in header["box"])
        record = ObjectRecord(
            int(header["frame"]),
            int(header["object"]),
            int(header["area"]),
            (x0, y0, x1, y1),
            offset + _HEADER.itemsize,
        )
        if record.offset + record.size > size:
            return  # cut short
        yield record
        offset = record.offset + record.size
