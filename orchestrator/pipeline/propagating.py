"""Stage 3, propagating: track the objects through the whole video.

The tracker that found the objects (one SAM3 tracking session on one model-server replica)
carries on over the rest of the video, chunk by chunk: tracks, their memories and object ids
continue across chunks, so masks do not jump where chunks meet. Short gaps are filled, and the
per-frame union of each target's kept objects is spooled to that target's MaskStore. Frames
before the sighting have no object.

The next chunk is decoded and sent while the model server works on the current one (two Segment
calls in flight, each holding one chunk of frames: memory stays bounded; the server takes them
in order). When the session is lost (its replica died or restarted, or ended it for room),
tracking starts again in a new session from the frames before the lost chunk, whose objects'
ids carry over by mask overlap (vision.stitching); so does a model server without sessions, on
every chunk.

Editing can run behind it: each frame goes on to each target's editing (concurrency.TrackedFrames)
with its pixels as soon as its mask is final, so the model server edits while it tracks and no stage
decodes the video again for the crops.

Its state lives in two small objects: a `_TrackingRun` (the tracker, the chunks in flight,
`restart()` in a new session) and a `_FinalMasks` (tracks assembled into the store, each frame
handed on once its mask is final).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import islice

import numpy as np

from ..errors import TrackingLost
from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..media.object_masks import ObjectMasks
from ..models import Segmentation, Tracker
from ..vision.prompts import prompts_for_call
from ..vision.stitching import (
    Found,
    IdStitcher,
    Objects,
    Targets,
    TrackAssembler,
    frame_objects,
    frame_prompts,
    frame_scores,
)
from .checkpoint import TrackingCheckpoint
from .concurrency import TrackedFrame, TrackedFrames
from .context import JobContext, Sighting

MAX_RESTARTS = 5  # new tracking sessions per job before the job fails with the last reason
CHUNKS_IN_FLIGHT = 2  # the second one is decoded and sent while the server tracks the first


@dataclass
class _Chunk:
    start: int  # video index of its first new frame
    frames: list[np.ndarray]  # the new frames
    before: list[np.ndarray]  # the (up to chunk_overlap) frames just before `start`
    opens: bool  # the first chunk of a session: its ids are matched to the objects on `lead`
    lead: list[np.ndarray]  # `before` when it opens one (sent ahead of the new frames), else []
    result: Future[Segmentation]

    @property
    def end(self) -> int:
        return self.start + len(self.frames)


def mask_store(ctx: JobContext, target: int, resume_up_to: int = 0) -> MaskStore:
    """An empty store for the masks of the job's target `target` (propagate fills it), or the one
    an earlier attempt filled up to `resume_up_to` (resume_propagating carries on)."""
    info = ctx.info
    return MaskStore(ctx.workdir / f"masks-{target}.bits", info.frame_count, info.height, info.width, resume_up_to)


def object_masks(ctx: JobContext, resume_up_to: int = 0) -> ObjectMasks:
    """Every object's masks kept apart (propagate fills it beside the store), empty or carried on
    like mask_store's."""
    return ObjectMasks(ctx.workdir / "objects.masks", ctx.info.height, ctx.info.width, resume_up_to)


def propagate(
    ctx: JobContext,
    sighting: Sighting,
    stores: Sequence[MaskStore],
    objects: ObjectMasks,
    tracked: Sequence[TrackedFrames] = (),
) -> Found:
    """Write every frame's final masks into `stores` (each target's kept objects' union) and
    `objects` (every object apart), in order (a frame is written once no gap before a later frame
    can fill it any more). `tracked`: where each frame goes, with its pixels, once it is written
    (one per target; finished after the last frame). Returns each object's highest detection score
    and prompt."""
    stitcher = sighting.stitcher
    assembler = TrackAssembler(stores, ctx.options.max_gap, sighting.targets, stitcher.prompts, objects=objects)
    masks = _FinalMasks(ctx, assembler, stores, objects, tracked)
    _before(ctx, masks, sighting)
    for offset, objects in enumerate(sighting.objects):
        masks.add(sighting.start + offset, objects, sighting.frames[offset])
    received = sighting.start + len(sighting.frames)
    ctx.progress.advance(received)
    overlap = min(ctx.options.chunk_overlap, len(sighting.frames))
    run = _TrackingRun(
        ctx,
        _Lead(sighting.frames[len(sighting.frames) - overlap :], sighting.objects[len(sighting.objects) - overlap :]),
        received,
        stitcher,
        sighting.targets,
        (sighting.tracker, sighting.run_start),
    )
    return _track(ctx, masks, run)


def reassemble(
    ctx: JobContext,
    targets: Targets,
    found: Found,
    stores: Sequence[MaskStore],
    objects: ObjectMasks,
    tracked: Sequence[TrackedFrames] = (),
) -> None:
    """Write every frame's masks into `stores` again from the objects tracked (kept apart in
    `objects`, gaps filled), each target keeping what `targets` says now (its objects picked by
    clicks once tracking passed them); with `tracked`, each frame goes on to editing, as propagate's."""
    info = ctx.info
    objects.sync()
    assembler = TrackAssembler(stores, 0, targets, found.prompts)
    masks = _FinalMasks(ctx, assembler, stores, None, tracked)
    with ObjectMasks.open(objects.path, info.height, info.width) as tracked_objects:
        records = tracked_objects.by_frame()
        frames = read_frames(info, 0, threads=ctx.threads) if tracked else enumerate([None] * info.frame_count)
        for index, pixels in frames:
            on_frame = records[index] if index < len(records) else []
            masks.add(index, {r.object_id: tracked_objects.union([r]) for r in on_frame}, pixels)
    masks.finish()


def _before(ctx: JobContext, masks: _FinalMasks, sighting: Sighting) -> None:
    """Frames [0, sighting.start) into `masks`: without objects, or those tracked back from it."""
    if sighting.behind is None:
        for index in range(sighting.start):
            masks.add(index, {}, None)
        return
    info = ctx.info
    with ObjectMasks.open(sighting.behind, info.height, info.width) as behind:
        records = behind.by_frame()
        for index, pixels in islice(read_frames(info, 0, threads=ctx.threads), sighting.start):
            on_frame = records[index] if index < len(records) else []
            masks.add(index, {r.object_id: behind.union([r]) for r in on_frame}, pixels)


def resume_propagating(
    ctx: JobContext,
    saved: TrackingCheckpoint,
    stores: Sequence[MaskStore],
    objects: ObjectMasks,
    tracked: Sequence[TrackedFrames] = (),
    edited_up_to: int = 0,
) -> Found:
    """propagate, carrying on from an earlier attempt's checkpoint: `stores` hold the final masks
    up to it; tracking opens a new session at the checkpoint, led by the frames before it (their
    objects' ids carry over, as after a lost session). With `tracked`, editing gets the frames
    from `edited_up_to` on (those before are edited already), decoded here."""
    info, received = ctx.info, saved.received
    stitcher = IdStitcher(saved.next_id, saved.last_masks, saved.scores, saved.prompts)
    targets = ctx.tracking(saved.keep)
    assembler = TrackAssembler(stores, ctx.options.max_gap, targets, stitcher.prompts, saved.assembly, objects)
    masks = _FinalMasks(ctx, assembler, stores, objects, tracked)
    overlap = len(saved.tail)
    first = min(edited_up_to, received - overlap) if tracked else received - overlap
    lead: list[np.ndarray] = []
    for index, frame in read_frames(info, start=first, threads=ctx.threads):
        if index >= received:
            break
        if index >= received - overlap:
            lead.append(frame)
        masks.resumed(index, frame, edited=index < edited_up_to)
    ctx.progress.advance(received)
    run = _TrackingRun(ctx, _Lead(lead, saved.tail), received, stitcher, targets, None)
    run.restarts = saved.restarts
    return _track(ctx, masks, run)


def _track(ctx: JobContext, masks: _FinalMasks, run: _TrackingRun) -> Found:
    """Carry `run` on to the end of the video, each chunk's objects into `masks` (checkpointed
    after each chunk); returns each object's highest detection score and prompt."""
    try:
        run.checkpoint(masks)
        for chunk, objects in run.results():
            for offset, on_frame in enumerate(objects):
                masks.add(chunk.start + offset, on_frame, chunk.frames[offset])
            run.checkpoint(masks)
            ctx.progress.advance(chunk.end, f"tracked {chunk.end}/{ctx.info.frame_count} frames")
    finally:
        run.close()
    masks.finish()
    ctx.log.info(
        "propagating: objects on %s of %d frames (%d object-frames filled in gaps%s)",
        " / ".join(str(store.frames_with_object()) for store in masks.stores),
        ctx.info.frame_count,
        masks.tracks.filled,
        f", {run.restarts} tracking restart(s)" if run.restarts else "",
    )
    return Found(dict(run.stitcher.scores), dict(run.stitcher.prompts))


class _FinalMasks:
    """Each frame's objects, assembled into tracks (short gaps filled) and written to the stores;
    frames whose masks are final go on to each target's editing (`tracked`), in order."""

    def __init__(
        self,
        ctx: JobContext,
        tracks: TrackAssembler,
        stores: Sequence[MaskStore],
        objects: ObjectMasks | None,  # None: written already (reassemble)
        tracked: Sequence[TrackedFrames],
    ) -> None:
        self.tracks = tracks
        self.stores, self.objects = stores, objects
        self._tracked = tracked
        self._awaiting: deque[tuple[int, np.ndarray | None]] = deque()  # for `tracked`, masks not final yet

    def add(self, index: int, objects: Objects, pixels: np.ndarray | None) -> None:
        self.tracks.add(index, objects)
        if self._tracked:
            self._awaiting.append((index, pixels))
            self._hand_over()

    def resumed(self, index: int, pixels: np.ndarray, edited: bool) -> None:
        """A frame an earlier attempt tracked (its mask final, or held by the restored assembler):
        handed on to editing with its pixels, unless it is `edited` already."""
        if self._tracked and not edited:
            self._awaiting.append((index, pixels))
            self._hand_over()

    def finish(self) -> None:
        self.tracks.finish()
        self._hand_over()
        for tracked in self._tracked:
            tracked.finish()

    def _hand_over(self) -> None:
        while self._awaiting and self._awaiting[0][0] < self.tracks.written:
            index, pixels = self._awaiting.popleft()
            for store, tracked in zip(self.stores, self._tracked, strict=True):
                box = store.box(index)
                tracked.put(TrackedFrame(index, box, pixels if box is not None else None))


@dataclass
class _Lead:
    """The last chunk_overlap frames tracked, and their objects: what a new session is led by."""

    frames: list[np.ndarray]
    objects: list[Objects]


class _TrackingRun:
    """Tracking carried on over the rest of the video chunk by chunk, CHUNKS_IN_FLIGHT Segment
    calls at a time, from frame `received`: by the tracker that found the objects (`session`: it
    and its first frame), or by a new session led by `lead` (a resumed job); when its session is
    lost, `restart` opens another."""

    def __init__(
        self,
        ctx: JobContext,
        lead: _Lead,
        received: int,
        stitcher: IdStitcher,
        targets: Targets,
        session: tuple[Tracker, int] | None,
    ) -> None:
        self.ctx, self.stitcher, self.targets = ctx, stitcher, targets
        self.overlap = len(lead.frames)
        self.recent = deque(lead.frames, maxlen=self.overlap)  # the last frames sent
        self.tail_objects = list(lead.objects)  # the objects on them
        self.sent = received  # frames handed to the tracker so far
        self.in_flight: deque[_Chunk] = deque()
        self.restarts = 0
        if session is None:  # a new session: its first chunk is led by the frames before
            self.tracker, self.run_start = ctx.track(targets.texts), received - self.overlap
        else:
            self.tracker, self.run_start = session
        self._opening = session is None
        self._decoded = read_frames(ctx.info, start=self.sent, threads=ctx.threads)

    def results(self) -> Iterator[tuple[_Chunk, list[Objects]]]:
        """Each chunk with its objects (video-wide ids), in order, until the end of the video."""
        while True:
            while len(self.in_flight) < CHUNKS_IN_FLIGHT and (chunk := self._send_next()) is not None:
                self.in_flight.append(chunk)
            if not self.in_flight:
                return
            chunk = self.in_flight[0]
            try:
                segmentation = self.ctx.stop.result(chunk.result)
            except TrackingLost as err:
                self.restart(chunk, err)
                continue
            self.in_flight.popleft()
            yield chunk, self._stitch(chunk, segmentation)

    def restart(self, lost: _Chunk, why: TrackingLost) -> None:
        """Track again in a new session from the frames before `lost` (the oldest chunk in flight):
        the chunks in flight are sent again, the first with the frames before it, whose objects
        the new session's ids are matched to."""
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise why
        self.run_start = lost.start - len(lost.before)
        self.ctx.log.warning(
            "propagating: %s; tracking starts again in a new session at frame %d (restart %d of at most %d)",
            why,
            self.run_start,
            self.restarts,
            MAX_RESTARTS,
        )
        self.tracker.close()
        self.tracker = self.ctx.track(self.targets.texts)
        self.in_flight = deque(
            self._send(c.start, c.frames, c.before, opens=i == 0) for i, c in enumerate(self.in_flight)
        )

    def close(self) -> None:
        self.tracker.close()

    def checkpoint(self, masks: _FinalMasks) -> None:
        """Record how far tracking got (every frame received so far), for a resumed attempt."""
        if self.ctx.checkpoints is None:
            return
        for store in masks.stores:
            store.sync()
        assert masks.objects is not None
        masks.objects.sync()
        next_id, last_masks = self.stitcher.state()
        received = self.sent - sum(len(c.frames) for c in self.in_flight)
        self.ctx.checkpoints.save_tracking(
            TrackingCheckpoint(
                received,
                self.restarts,
                self.targets.keep,
                next_id,
                last_masks,
                masks.tracks.state(),
                list(self.tail_objects),
                dict(self.stitcher.scores),
                dict(self.stitcher.prompts),
            )
        )

    def _send_next(self) -> _Chunk | None:
        """Decode and send the next chunk; None at the end of the video."""
        # chunk_size - overlap new frames: a chunk that has to open a session, with the frames
        # before it, still fits in chunk_size.
        frames = [frame for _, frame in islice(self._decoded, self.ctx.options.chunk_size - self.overlap)]
        if not frames:
            return None
        chunk = self._send(self.sent, frames, list(self.recent), opens=self._opening)
        self._opening = False
        self.sent += len(frames)
        self.recent.extend(frames)
        return chunk

    def _send(self, start: int, frames: list[np.ndarray], before: list[np.ndarray], opens: bool) -> _Chunk:
        opens = opens or not self.tracker.persistent  # without sessions, every call is one
        lead = before if opens else []
        first = start - len(lead)
        # A new session tracks no object yet: a click's object is asked for afresh in it.
        session_id = self.stitcher.session_id if not opens else lambda _: None
        visual = prompts_for_call(self.ctx.model_prompts, first, len(lead) + len(frames), self.run_start, session_id)
        call = self.ctx.models.calls.submit(
            "segment", self.tracker.segment, lead + frames, first - self.run_start, visual
        )
        return _Chunk(start, frames, before, opens, lead, call)

    def _stitch(self, chunk: _Chunk, segmentation: Segmentation) -> list[Objects]:
        """The chunk's new frames' objects, with video-wide ids (matched on the lead when it opened
        a session, carried on otherwise)."""
        lead = len(chunk.lead)
        objects = self.stitcher.stitch(
            [frame_objects(d) for d in segmentation.frames],
            overlap_before=self.tail_objects[len(self.tail_objects) - lead :] if lead else (),
            continues=not chunk.opens,
            scores=[frame_scores(d) for d in segmentation.frames],
            prompts=[frame_prompts(d) for d in segmentation.frames],
        )
        new = objects[lead:]
        self.tail_objects = (self.tail_objects + new)[-self.overlap :] if self.overlap else []
        return new
