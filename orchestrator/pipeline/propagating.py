"""Stage 3, propagating: track the objects through the whole video.

The tracker that found the objects (one SAM3 tracking session on one model-server replica)
carries on over the rest of the video, chunk by chunk: tracks, their memories and object ids
continue across chunks, so masks do not jump where chunks meet. Short gaps are filled, and the
per-frame union of the kept objects is spooled to a MaskStore. Frames before the sighting have
no object.

The next chunk is decoded and sent while the model server works on the current one (two Segment
calls in flight, each holding one chunk of frames: memory stays bounded; the server takes them
in order). When the session is lost (its replica died or restarted, or ended it for room),
tracking starts again in a new session from the frames before the lost chunk, whose objects'
ids carry over by mask overlap (vision.stitching); so does a model server without sessions, on
every chunk.

Editing can run behind it: each frame goes on to editing (TrackedFrames) with its pixels as soon
as its mask is final, so the model server edits while it tracks and no stage decodes the video
again for the crops.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import islice

import numpy as np

from ..errors import TrackingLost
from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..models import Segmentation
from ..vision.stitching import Objects, TrackAssembler, frame_objects
from .background import in_background
from .context import JobContext, Sighting, TrackedFrame, TrackedFrames

MAX_RESTARTS = 5  # new tracking sessions per job before the job fails with the last reason


@dataclass
class _Chunk:
    start: int  # video index of its first new frame
    frames: list[np.ndarray]  # the new frames
    before: list[np.ndarray]  # the (up to chunk_overlap) frames just before `start`
    opens: bool  # the first chunk of a session: its ids are matched to the objects on `lead`
    lead: list[np.ndarray]  # `before` when it opens one (sent ahead of the new frames), else []
    result: Future[Segmentation]


def mask_store(ctx: JobContext) -> MaskStore:
    """An empty store for the job's masks (propagate fills it)."""
    return MaskStore(ctx.workdir / "masks.bits", ctx.info.frame_count, ctx.info.height, ctx.info.width)


def propagate(ctx: JobContext, sighting: Sighting, store: MaskStore, tracked: TrackedFrames | None = None) -> None:
    """Write every frame's final mask into `store`, in order (a frame is written once no gap before
    a later frame can fill it any more). `tracked`: where each frame goes, with its pixels, once
    it is written (finished after the last one)."""
    info, opts = ctx.info, ctx.options
    tracks = TrackAssembler(store, opts.max_gap, sighting.keep)
    awaiting: deque[tuple[int, np.ndarray | None]] = deque()  # frames for `tracked`, their masks not final yet

    def add(index: int, objects: Objects, pixels: np.ndarray | None) -> None:
        tracks.add(index, objects)
        if tracked is not None:
            awaiting.append((index, pixels))
            hand_over()

    def hand_over() -> None:
        while awaiting and awaiting[0][0] < tracks.written:
            index, pixels = awaiting.popleft()
            box = store.box(index)
            tracked.put(TrackedFrame(index, box, pixels if box is not None else None), waiting=ctx.progress.checkpoint)

    for index in range(sighting.start):
        add(index, {}, None)
    for offset, objects in enumerate(sighting.objects):
        add(sighting.start + offset, objects, sighting.frames[offset])
    done = sighting.start + len(sighting.frames)
    ctx.progress.advance(done)

    overlap = min(opts.chunk_overlap, len(sighting.frames))
    decoded = read_frames(info, start=done, threads=ctx.threads)
    tracker, run_start = sighting.tracker, sighting.run_start
    recent = deque(sighting.frames[len(sighting.frames) - overlap:], maxlen=overlap)  # the last frames sent
    tail_objects = sighting.objects[len(sighting.objects) - overlap:]  # the last frames' objects
    sent = done  # frames handed to the tracker so far
    restarts = 0

    def send(start: int, frames: list[np.ndarray], before: list[np.ndarray], opens: bool) -> _Chunk:
        opens = opens or not tracker.persistent  # without sessions, every call is one
        lead = before if opens else []
        return _Chunk(start, frames, before, opens, lead, in_background(
            "segment", tracker.segment, lead + frames, start - len(lead) - run_start))

    def send_next() -> _Chunk | None:
        """Decode and send the next chunk; None at the end of the video."""
        nonlocal sent
        # chunk_size - overlap new frames: a chunk that has to open a session, with the frames
        # before it, still fits in chunk_size.
        frames = [frame for _, frame in islice(decoded, opts.chunk_size - overlap)]
        if not frames:
            return None
        chunk = send(sent, frames, list(recent), opens=False)
        sent += len(frames)
        recent.extend(frames)
        return chunk

    in_flight: deque[_Chunk] = deque()
    try:
        while True:
            while len(in_flight) < 2 and (chunk := send_next()) is not None:
                in_flight.append(chunk)  # the second one is decoded while the server tracks the first
            if not in_flight:
                break
            chunk = in_flight[0]
            try:
                segmentation = chunk.result.result()
            except TrackingLost as err:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise
                ctx.log.warning("propagating: %s; tracking starts again in a new session at frame %d "
                                "(restart %d of at most %d)", err, chunk.start - len(chunk.before), restarts,
                                MAX_RESTARTS)
                tracker.close()
                tracker = ctx.models.track(ctx.request.mask_prompt)
                # Send the chunks in flight again, the first with the frames before it: the new
                # session's ids are matched to the objects there.
                run_start = chunk.start - len(chunk.before)
                in_flight = deque(send(c.start, c.frames, c.before, opens=i == 0) for i, c in enumerate(in_flight))
                continue
            in_flight.popleft()
            lead_count = len(chunk.lead)
            objects = sighting.stitcher.stitch([frame_objects(d) for d in segmentation.frames],
                                               overlap_before=tail_objects[len(tail_objects) - lead_count:]
                                               if lead_count else (), continues=not chunk.opens)
            for offset, on_frame in enumerate(objects[lead_count:]):
                add(chunk.start + offset, on_frame, chunk.frames[offset])
            done = chunk.start + len(chunk.frames)
            tail_objects = (tail_objects + objects[lead_count:])[-overlap:] if overlap else []
            ctx.progress.advance(done, f"tracked {done}/{info.frame_count} frames")
    finally:
        tracker.close()
    tracks.finish()
    if tracked is not None:
        hand_over()
        tracked.finish()
    ctx.log.info("propagating: objects on %d of %d frames (%d object-frames filled in gaps%s)",
                 store.frames_with_object(), info.frame_count, tracks.filled,
                 f", {restarts} tracking restart(s)" if restarts else "")

