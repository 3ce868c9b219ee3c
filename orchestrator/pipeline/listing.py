"""Stage 6 too, listing the objects: once tracking has ended, `{job_id}_objects.json` (every object
with its frames, boxes, areas and score: media.object_list), a preview per object (its best frame,
the mask outlined) and every object's masks (media.object_masks), in `{job_id}_objects/`, for a
person to check and pick objects by id, and for later jobs to edit without tracking again.

A masks job ends with this; a video job lists its objects beside editing (on a thread behind).
"""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np

from ..media.decode import read_frames
from ..media.mask_cache import link
from ..media.object_list import ObjectList, summarize
from ..media.object_masks import ObjectMasks
from .context import JobContext, OutputPaths, ReusedMasks

PREVIEW_WIDTH = 640  # previews are at most this wide: enough to tell objects apart
# Outline colours, one per object in turn (RGB): apart from each other and from most scenes.
PALETTE = [(255, 64, 64), (64, 160, 255), (255, 200, 0), (0, 220, 120), (220, 80, 255), (255, 140, 40)]


def save_objects(
    ctx: JobContext, objects: ObjectMasks, scores: dict[int, float], keep: frozenset[int] | None, paths: OutputPaths
) -> ObjectList:
    """Write the list, the previews and the masks of every object `objects` holds (tracking has
    ended); `scores` and `keep` (None: all) by tracker id."""
    assert paths.objects is not None and paths.object_files is not None and ctx.checkpoints is not None
    info, fingerprint = ctx.info, ctx.checkpoints.fingerprint
    summaries = summarize(objects, scores)
    listed = ObjectList(
        job_id=ctx.request.job_id,
        mask_prompt=ctx.request.mask_prompt,
        input_sha256=fingerprint.input_sha256,
        segmenter=fingerprint.models,
        frames=info.frame_count,
        width=info.width,
        height=info.height,
        edited=[o.id for o in summaries if keep is None or o.id - 1 in keep],
        objects=summaries,
    )
    shutil.rmtree(paths.object_files, ignore_errors=True)  # an earlier attempt's, unfinished
    paths.object_files.mkdir(parents=True)
    _link_or_copy(objects, paths.object_masks)
    _write_previews(ctx, objects, listed, paths)
    listed.write(paths.objects)
    ctx.log.info(
        "listing: %d object(s) (ids %s; %s edited) in %s",
        len(summaries),
        ", ".join(str(i) for i in listed.ids) or "none",
        ", ".join(str(i) for i in listed.edited) or "none",
        paths.objects.name,
    )
    return listed


def copy_objects(ctx: JobContext, source: OutputPaths, paths: OutputPaths) -> None:
    """The objects of `source` (their list, previews and masks) as this job's (files linked, not
    copied, where the volume allows)."""
    assert source.objects is not None and source.object_files is not None
    assert paths.objects is not None and paths.object_files is not None
    shutil.rmtree(paths.object_files, ignore_errors=True)
    paths.objects.unlink(missing_ok=True)
    shutil.copytree(source.object_files, paths.object_files, copy_function=link)
    link(source.objects, paths.objects)


def listed_again(ctx: JobContext, reused: ReusedMasks, paths: OutputPaths) -> ObjectList:
    """A job on reused masks lists the same objects as the job that tracked them."""
    if reused.paths != paths:  # not linked in already (a mask cache entry is)
        copy_objects(ctx, reused.paths, paths)
    return reused.listing


def _link_or_copy(objects: ObjectMasks, target: os.PathLike) -> None:
    objects.sync()
    link(objects.path, target)


def _write_previews(ctx: JobContext, objects: ObjectMasks, listed: ObjectList, paths: OutputPaths) -> None:
    """Each object's best frame with its mask outlined, one decode pass up to the last of them."""
    assert paths.object_files is not None
    wanted: dict[int, list[int]] = {}
    for o in listed.objects:
        wanted.setdefault(o.best_frame, []).append(o.id)
    if not wanted:
        return
    records = {(r.frame, r.object_id + 1): r for r in objects.records if r.frame in wanted}
    for index, frame in read_frames(ctx.info, 0, threads=ctx.threads):
        if index in wanted:
            for object_id in wanted.pop(index):
                record = records[index, object_id]
                image = _outlined(frame, objects.union([record]), PALETTE[(object_id - 1) % len(PALETTE)])
                cv2.imwrite(str(paths.preview(object_id)), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not wanted:
            return
        ctx.stop.raise_if_stopped()


def _outlined(frame: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """The frame (RGB) at most PREVIEW_WIDTH wide with the mask's outline drawn on it."""
    scale = min(1.0, PREVIEW_WIDTH / frame.shape[1])
    size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
    image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale < 1 else frame.copy()
    small = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, colour, max(2, size[0] // 200), cv2.LINE_AA)
    return image
