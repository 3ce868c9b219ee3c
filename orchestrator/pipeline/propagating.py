"""Stage 3, propagating: track the objects through the whole video.

Frames go to `Segment` in chunks (each chunk is a SAM3 tracking window). Each chunk starts with
the last `chunk_overlap` frames of the previous one, so object ids can be stitched across chunks
(vision.stitching); short gaps are filled, and the per-frame union of the kept objects is spooled
to a MaskStore. Frames before the sighting have no object.
"""

from __future__ import annotations

from itertools import islice

from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..vision.stitching import TrackAssembler, frame_objects
from .context import JobContext, Sighting


def propagate(ctx: JobContext, sighting: Sighting) -> MaskStore:
    info, opts = ctx.info, ctx.options
    store = MaskStore(ctx.workdir / "masks.npy", info.frame_count, info.height, info.width)
    tracks = TrackAssembler(store, opts.max_gap, sighting.keep)
    for index in range(sighting.start):
        tracks.add(index, {})
    for offset, objects in enumerate(sighting.objects):
        tracks.add(sighting.start + offset, objects)
    done = sighting.start + len(sighting.frames)
    ctx.progress.advance(done)

    overlap = min(opts.chunk_overlap, len(sighting.frames))
    tail_frames, tail_objects = _last(sighting.frames, overlap), _last(sighting.objects, overlap)
    frames = read_frames(info, start=done)
    while done < info.frame_count:
        new = [frame for _, frame in islice(frames, opts.chunk_size - overlap)]
        chunk = tail_frames + new
        detections = ctx.models.segment(chunk, ctx.request.mask_prompt)
        objects = sighting.stitcher.stitch([frame_objects(d) for d in detections], overlap_before=tail_objects)
        for offset, on_frame in enumerate(objects[overlap:]):
            tracks.add(done + offset, on_frame)
        done += len(new)
        tail_frames, tail_objects = _last(chunk, overlap), _last(objects, overlap)
        ctx.progress.advance(done, f"tracked {done}/{info.frame_count} frames")
    tracks.finish()
    ctx.log.info("propagating: objects on %d of %d frames (%d object-frames filled in gaps)",
                 store.frames_with_object(), info.frame_count, tracks.filled)
    return store


def _last(items: list, count: int) -> list:
    return items[len(items) - count:]
