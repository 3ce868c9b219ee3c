"""Object tracks across Segment chunks: id stitching, instance selection and gap filling.

SAM3 object ids are stable within one tracking session: over all the chunks of a persistent
tracker, or one Segment call otherwise. Where a new session starts, its first chunk overlaps the
frames before by a few frames; an object of the new chunk takes the id of the earlier object
its masks overlap most on those frames (IoU over the overlap, greedy, at least STITCH_IOU), or
a new id. The assembled tracks are written to the mask store a few frames late, so that an object
SAM3 misses for up to `max_gap` frames can be filled in from its last mask first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..models import Detection

STITCH_IOU = 0.3  # lowest overlap IoU at which two chunks' objects are the same object
_STRIDE = 2  # IoU on every 2nd pixel per axis: the same answer for object-sized masks, 4x cheaper

Objects = dict[int, np.ndarray]  # object id -> bool mask (H, W) of one frame


def frame_objects(detections: Sequence[Detection]) -> Objects:
    """One frame's detections by object id (several masks of one id are merged)."""
    objects: Objects = {}
    for det in detections:
        objects[det.object_id] = objects[det.object_id] | det.mask if det.object_id in objects else det.mask
    return objects


def frame_scores(detections: Sequence[Detection]) -> dict[int, float]:
    """One frame's detection scores by object id (the highest of one id's)."""
    scores: dict[int, float] = {}
    for det in detections:
        scores[det.object_id] = max(scores.get(det.object_id, det.score), det.score)
    return scores


def match_ids(previous: Sequence[Objects], current: Sequence[Objects]) -> dict[int, int]:
    """Map ids of `current` to ids of `previous`, given both chunks' objects on the same frames."""
    intersections: dict[tuple[int, int], int] = {}
    areas_prev: dict[int, int] = {}
    areas_cur: dict[int, int] = {}
    for prev_frame, cur_frame in zip(previous, current, strict=True):
        small_prev = {g: m[::_STRIDE, ::_STRIDE] for g, m in prev_frame.items()}
        small_cur = {i: m[::_STRIDE, ::_STRIDE] for i, m in cur_frame.items()}
        for g, m in small_prev.items():
            areas_prev[g] = areas_prev.get(g, 0) + int(m.sum())
        for i, m in small_cur.items():
            areas_cur[i] = areas_cur.get(i, 0) + int(m.sum())
            for g, pm in small_prev.items():
                intersections[i, g] = intersections.get((i, g), 0) + int(np.logical_and(m, pm).sum())
    ious = []
    for (i, g), inter in intersections.items():
        union = areas_cur[i] + areas_prev[g] - inter
        if union and inter / union >= STITCH_IOU:
            ious.append((inter / union, i, g))
    mapping: dict[int, int] = {}
    for _, i, g in sorted(ious, reverse=True):
        if i not in mapping and g not in mapping.values():
            mapping[i] = g
    return mapping


class IdStitcher:
    """Gives every object one id for the whole video.

    An object of the new chunk takes the id of the object it overlaps on the frames both chunks
    share. One the overlap frames missed (SAM3 lost it there, or found it only a few frames into
    the new chunk) is matched instead by its first mask in the new chunk against the last masks of
    the previous chunk's objects that nothing claimed: otherwise it would get a new id, and with
    `extra.instances` it would never be edited again.
    """

    def __init__(
        self, next_id: int = 0, last_masks: Objects | None = None, scores: Mapping[int, float] | None = None
    ) -> None:
        """A new stitcher, or (with `next_id`, `last_masks` and `scores`, what `state()` and
        `scores` gave) one carrying on from a checkpoint, whose next chunk opens a new session."""
        self._next_id = next_id
        self._last_masks: Objects = dict(last_masks or {})  # each object of the previous chunk: its last mask there
        self._mapping: dict[int, int] = {}  # the current session's ids -> video-wide ids
        self.scores: dict[int, float] = dict(scores or {})  # video-wide id -> its highest detection score

    def state(self) -> tuple[int, Objects]:
        """(next id, last masks): what a stitcher needs to carry on in a new session."""
        return self._next_id, dict(self._last_masks)

    def stitch(
        self,
        chunk: Sequence[Objects],
        overlap_before: Sequence[Objects] = (),
        continues: bool = False,
        scores: Sequence[Mapping[int, float]] = (),
    ) -> list[Objects]:
        """`chunk` (SAM3 ids) with video-wide ids. `continues`: the chunk carries on the previous
        chunk's session (same ids); otherwise its first frames repeat `overlap_before` (the
        previous chunk's last frames, already video-wide ids), if any. `scores`: the chunk's
        detection scores per frame (SAM3 ids), kept per object in `scores`."""
        if continues:
            mapping = dict(self._mapping)
        else:
            mapping = match_ids(overlap_before, chunk[: len(overlap_before)]) if overlap_before else {}
        present = {i for frame in chunk for i in frame}
        claimed = {mapping[i] for i in present if i in mapping}
        unclaimed = {g: m for g, m in self._last_masks.items() if g not in claimed}
        if unclaimed:
            first_masks: Objects = {}
            for frame in chunk:
                for i, m in frame.items():
                    if i not in mapping:
                        first_masks.setdefault(i, m)
            mapping.update(match_ids([unclaimed], [first_masks]))
        for local in sorted({i for frame in chunk for i in frame}):
            if local not in mapping:
                mapping[local] = self._next_id
                self._next_id += 1
            self._next_id = max(self._next_id, mapping[local] + 1)
        stitched = [{mapping[i]: m for i, m in frame.items()} for frame in chunk]
        for frame_scores_ in scores:
            for i, score in frame_scores_.items():
                if i in mapping:
                    self.scores[mapping[i]] = max(self.scores.get(mapping[i], score), score)
        self._last_masks = {g: m for frame in stitched for g, m in frame.items()}
        self._mapping = mapping
        return stitched


def union_mask(objects: Objects, keep: frozenset[int] | None, height: int, width: int) -> np.ndarray:
    """The kept objects (None: all) of one frame as one mask."""
    mask = np.zeros((height, width), dtype=bool)
    for g, m in objects.items():
        if keep is None or g in keep:
            mask |= m
    return mask


def largest(objects_per_frame: Sequence[Objects], count: int) -> frozenset[int]:
    """Ids of the `count` objects with the largest mean area over the frames they appear on."""
    areas: dict[int, list[int]] = {}
    for frame in objects_per_frame:
        for g, m in frame.items():
            areas.setdefault(g, []).append(int(m.sum()))
    ranked = sorted(areas, key=lambda g: (-np.mean(areas[g]), g))
    return frozenset(ranked[:count])


class MaskSink(Protocol):
    """Where assembled per-frame masks go (media.mask_store.MaskStore)."""

    height: int
    width: int

    def put(self, index: int, mask: np.ndarray) -> None: ...


class ObjectSink(Protocol):
    """Where assembled per-frame objects go, kept apart (media.object_masks.ObjectMasks)."""

    def put(self, index: int, objects: Mapping[int, np.ndarray]) -> None: ...


@dataclass
class AssemblyState:
    """A TrackAssembler's state, to carry on from (pipeline.checkpoint keeps it)."""

    written: int = 0
    filled: int = 0
    held: list[tuple[int, Objects]] = field(default_factory=list)  # frames not written yet, in order
    last_seen: dict[int, int] = field(default_factory=dict)  # object id -> the last frame it was on


class TrackAssembler:
    """Receives every frame's objects in order; writes the union of the kept ones to `store`, and
    every object apart to `objects` when given.

    Frames are held back `max_gap + 1` frames: when an object reappears after missing at most
    `max_gap` frames, those frames get its last mask (SAM3 drops an object for a frame or two
    under blur or occlusion; an unedited frame in the middle of an edit is a visible flash).
    """

    def __init__(
        self,
        store: MaskSink,
        max_gap: int,
        keep: frozenset[int] | None = None,
        state: AssemblyState | None = None,
        objects: ObjectSink | None = None,
    ):
        """`state`: carry on from a checkpoint (what `state()` gave) instead of from frame 0."""
        self.store, self.max_gap, self.keep, self.objects = store, max_gap, keep, objects
        state = state or AssemblyState()
        self.filled = state.filled  # frames x objects filled in
        self.written = state.written  # frames [0, written) are in the store: final
        self._held: deque[tuple[int, Objects]] = deque(state.held)
        self._last_seen: dict[int, int] = dict(state.last_seen)

    def state(self) -> AssemblyState:
        """What the assembler holds: the frames not written yet and where each object was last seen."""
        return AssemblyState(self.written, self.filled, [(i, dict(o)) for i, o in self._held], dict(self._last_seen))

    def add(self, index: int, objects: Mapping[int, np.ndarray]) -> None:
        """Frame `index`'s objects (every one is assembled: `keep` picks the ones in `store`)."""
        tracked = dict(objects)
        for g in tracked:
            last = self._last_seen.get(g)
            if last is not None and 1 < index - last <= self.max_gap + 1:
                held = dict(self._held)
                for missing in range(last + 1, index):
                    held[missing][g] = held[last][g]
                    self.filled += 1
            self._last_seen[g] = index
        self._held.append((index, tracked))
        while len(self._held) > self.max_gap + 1:
            self._write(*self._held.popleft())

    def finish(self) -> None:
        while self._held:
            self._write(*self._held.popleft())

    def _write(self, index: int, objects: Objects) -> None:
        self.store.put(index, union_mask(objects, self.keep, self.store.height, self.store.width))
        if self.objects is not None:
            self.objects.put(index, objects)
        self.written = index + 1
