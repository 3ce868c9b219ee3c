"""Object tracks across Segment chunks: id stitching, instance selection and gap filling.

One session tracks every prompt of a job (its targets: the objects of the request, each with its
own instruction); each object is kept with the prompt that found it, and each target's kept objects
go to a mask store of its own, apart from the others' (where two overlap, the earlier target keeps
the pixels).

SAM3 object ids are stable within one tracking session: over all the chunks of a persistent
tracker, or one Segment call otherwise. Where a new session starts, its first chunk overlaps the
frames before by a few frames; an object of the new chunk takes the id of the earlier object
its masks overlap most on those frames (IoU over the overlap, greedy, at least STITCH_IOU), or
a new id. The assembled tracks are written to the mask store a few frames late, so that an object
SAM3 misses for up to `max_gap` frames can be filled in from its last mask first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..models import Detection
from .prompts import PROMPTED_ID_BASE

STITCH_IOU = 0.3  # lowest overlap IoU at which two chunks' objects are the same object
_STRIDE = 2  # IoU on every 2nd pixel per axis: the same answer for object-sized masks, 4x cheaper

Objects = dict[int, np.ndarray]  # object id -> bool mask (H, W) of one frame
Keep = tuple[frozenset[int] | None, ...]  # per target: ids it edits (None: all its objects, also later ones)


def frame_objects(detections: Sequence[Detection]) -> Objects:
    """One frame's detections by object id (several masks of one id are merged)."""
    objects: Objects = {}
    for det in detections:
        objects[det.object_id] = objects[det.object_id] | det.mask if det.object_id in objects else det.mask
    return objects


def frame_prompts(detections: Sequence[Detection]) -> dict[int, str]:
    """One frame's prompts by object id (the one that found it)."""
    return {det.object_id: det.prompt for det in detections}


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
        self,
        next_id: int = 0,
        last_masks: Objects | None = None,
        scores: Mapping[int, float] | None = None,
        prompts: Mapping[int, str] | None = None,
    ) -> None:
        """A new stitcher, or (with `next_id`, `last_masks`, `scores` and `prompts`, what `state()`,
        `scores` and `prompts` gave) one carrying on from a checkpoint, whose next chunk opens a new
        session."""
        self._next_id = next_id
        self._last_masks: Objects = dict(last_masks or {})  # each object of the previous chunk: its last mask there
        self._mapping: dict[int, int] = {}  # the current session's ids -> video-wide ids
        self.scores: dict[int, float] = dict(scores or {})  # video-wide id -> its highest detection score
        self.prompts: dict[int, str] = dict(prompts or {})  # video-wide id -> the prompt that first found it

    def session_id(self, video_id: int) -> int | None:
        """The current session's id of object `video_id`, None when it has none (for a click's
        object: vision.prompts)."""
        return next((local for local, g in self._mapping.items() if g == video_id), None)

    def state(self) -> tuple[int, Objects]:
        """(next id, last masks): what a stitcher needs to carry on in a new session."""
        return self._next_id, dict(self._last_masks)

    def stitch(
        self,
        chunk: Sequence[Objects],
        overlap_before: Sequence[Objects] = (),
        continues: bool = False,
        scores: Sequence[Mapping[int, float]] = (),
        prompts: Sequence[Mapping[int, str]] = (),
    ) -> list[Objects]:
        """`chunk` (SAM3 ids) with video-wide ids. `continues`: the chunk carries on the previous
        chunk's session (same ids); otherwise its first frames repeat `overlap_before` (the
        previous chunk's last frames, already video-wide ids), if any. `scores` and `prompts`: the
        chunk's detection scores and prompts per frame (SAM3 ids), kept per object in `scores`
        (the highest) and `prompts` (the first: an object keeps its target)."""
        if continues:
            mapping = dict(self._mapping)
        else:
            mapping = match_ids(overlap_before, chunk[: len(overlap_before)]) if overlap_before else {}
        present = {i for frame in chunk for i in frame}
        # Objects asked for by a click carry their video-wide id (vision.prompts).
        mapping |= {i: i - PROMPTED_ID_BASE for i in present if i >= PROMPTED_ID_BASE}
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
        for on_frame in prompts:
            for i, prompt in on_frame.items():
                if i in mapping:
                    self.prompts.setdefault(mapping[i], prompt)
        self._last_masks = {g: m for frame in stitched for g, m in frame.items()}
        self._mapping = mapping
        return stitched


def union_mask(objects: Objects, keep: Callable[[int], bool], height: int, width: int) -> np.ndarray:
    """The objects of one frame that `keep` picks as one mask."""
    mask = np.zeros((height, width), dtype=bool)
    for g, m in objects.items():
        if keep(g):
            mask |= m
    return mask


@dataclass(frozen=True)
class Targets:
    """The targets of one job (its objects, each with its own prompt and instruction, in request
    order) and which tracked objects each edits."""

    prompts: tuple[str, ...]  # each target's mask prompt, as requested ("": clicks alone define it)
    keep: Keep  # each target's kept ids

    @property
    def texts(self) -> list[str]:
        """The text prompts a tracking session looks for (a target of clicks alone has none)."""
        return [p for p in self.prompts if p.strip()]

    def of(self, prompt: str | None) -> int | None:
        """The target whose prompt found an object (`prompt`: as the segmenter read it, which may
        be cut to its text window: then the target whose prompt starts with it); None: no target's.
        With one target, every object is its: the one-object form never depended on the prompt."""
        if len(self.prompts) == 1:
            return 0
        if prompt is None:
            return None
        read = " ".join(prompt.split())
        asked = [" ".join(p.split()) for p in self.prompts]
        if read in asked:
            return asked.index(read)
        return next((k for k, p in enumerate(asked) if p.startswith(read)), None)

    def editing(self, object_id: int, prompt: str | None) -> int | None:
        """The target that edits object `object_id`, found by `prompt` (None: none does)."""
        k = self.of(prompt)
        return k if k is not None and (self.keep[k] is None or object_id in self.keep[k]) else None

    def of_frame(self, objects: Objects, found: Mapping[int, str], k: int) -> Objects:
        """The objects of one frame that target `k`'s prompt found (`found`: id -> prompt)."""
        return {g: m for g, m in objects.items() if self.of(found.get(g)) == k}


@dataclass(frozen=True)
class Found:
    """What tracking learnt of each object (video-wide ids): its best score and its prompt."""

    scores: dict[int, float] = field(default_factory=dict)
    prompts: dict[int, str] = field(default_factory=dict)


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
    """Receives every frame's objects in order; writes the union of each target's kept ones to its
    store in `stores` (less the pixels of earlier targets: the earlier keeps an overlap), and every
    object apart to `objects` when given.

    Frames are held back `max_gap + 1` frames: when an object reappears after missing at most
    `max_gap` frames, those frames get its last mask (SAM3 drops an object for a frame or two
    under blur or occlusion; an unedited frame in the middle of an edit is a visible flash).
    """

    def __init__(
        self,
        stores: Sequence[MaskSink],
        max_gap: int,
        targets: Targets,
        found: Mapping[int, str],
        state: AssemblyState | None = None,
        objects: ObjectSink | None = None,
    ):
        """`found`: each object's prompt (IdStitcher.prompts, filled as tracking goes). `state`:
        carry on from a checkpoint (what `state()` gave) instead of from frame 0."""
        self.stores, self.max_gap, self.targets, self.found = stores, max_gap, targets, found
        self.objects = objects
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
        editing = {g: self.targets.editing(g, self.found.get(g)) for g in objects}
        taken = None  # pixels of earlier targets
        for k, store in enumerate(self.stores):
            mask = union_mask(objects, lambda g, k=k: editing[g] == k, store.height, store.width)
            if taken is not None:
                mask &= ~taken
                taken |= mask
            elif len(self.stores) > 1:
                taken = mask.copy()
            store.put(index, mask)
        if self.objects is not None:
            self.objects.put(index, objects)
        self.written = index + 1
