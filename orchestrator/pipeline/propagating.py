"""Stage 3, propagating: track the objects through the whole video.

Frames go to `Segment` in chunks (each chunk is a SAM3 tracking window). Each chunk starts with
the last `chunk_overlap` frames of the previous one, so object ids can be stitched across chunks
(vision.stitching); short gaps are filled, and the per-frame union of the kept objects is spooled
to a MaskStore. Frames before the sighting have no object.

The next chunk is decoded and sent while the model server works on the current one (two Segment
calls in flight, each holding one chunk of frames: memory stays bounded).
"""

from __future__ import annotations

from concurrent.futures import Future
from itertools import islice

from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..vision.stitching import TrackAssembler, frame_objects
from .background import in_background
from .context import JobContext, Sighting


def propagate(ctx: JobContext, sighting: Sighting) -> MaskStore:
    info, opts = ctx.info, ctx.options
    store = MaskStore(ctx.workdir / "masks.bits", info.frame_count, info.height, info.width)
    tracks = TrackAssembler(store, opts.max_gap, sighting.keep)
    for index in range(sighting.start):
        tracks.add(index, {})
    for offset, objects in enumerate(sighting.objects):
        tracks.add(sighting.start + offset, objects)
    done = sighting.start + len(sighting.frames)
    ctx.progress.advance(done)

    overlap = min(opts.chunk_overlap, len(sighting.frames))
    frames = read_frames(info, start=done, threads=ctx.threads)
    tail_objects = _last(sighting.objects, overlap)

    def send(previous: list) -> tuple[list, Future] | None:
        """Decode the next chunk (it starts with the last `overlap` frames of `previous`) and
        send it; None at the end of the video."""
        new = [frame for _, frame in islice(frames, opts.chunk_size - overlap)]
        if not new:
            return None
        chunk = _last(previous, overlap) + new
        return chunk, in_background("segment", ctx.models.segment, chunk, ctx.request.mask_prompt)

    current = send(sighting.frames)
    while current is not None:
        chunk, detections = current
        following = send(chunk)  # decoded while the model server segments `chunk`
        objects = sighting.stitcher.stitch([frame_objects(d) for d in detections.result().frames],
                                           overlap_before=tail_objects)
        for offset, on_frame in enumerate(objects[overlap:]):
            tracks.add(done + offset, on_frame)
        done += len(chunk) - overlap
        tail_objects = _last(objects, overlap)
        ctx.progress.advance(done, f"tracked {done}/{info.frame_count} frames")
        current = following
    tracks.finish()
    ctx.log.info("propagating: objects on %d of %d frames (%d object-frames filled in gaps)",
                 store.frames_with_object(), info.frame_count, tracks.filled)
    return store


def _last(items: list, count: int) -> list:
    return items[len(items) - count:]
