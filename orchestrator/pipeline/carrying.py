"""Part of stage 4, editing, with keyframes (`extra.keyframe_interval` > 1 or
`extra.keyframes=adaptive`): which frames the model edits, and the edit carried from those
keyframes to the frames between them along the source's optical flow (vision.keyframes).

`plan_keyframes` picks the keyframes: every k-th frame of each stretch where the object is
visible, plus its first and last frame; or, adaptively, a new keyframe wherever the edit carried
from the last one is no longer trustworthy (too few of the object's pixels can be followed back
to the keyframe's object with a consistent source), at most k frames apart. `carry_edits` fills
the other frames' boxes into the same CropSpool the model's edits went to, so the saving pass
(and smoothing in it) sees every frame edited.

Memory: per keyframe gap, the frames' flow maps (working size, float16, ~0.5 MB) and grey
frames; the source boxes wait in a scratch spool on disk.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..media.crop_spool import CropSpool
from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..request import Keyframes
from ..vision.crop import Box, region, stabilised_crops, stretches
from ..vision.keyframes import (
    TRUST_GREY,
    FlowMap,
    Keyframe,
    carried,
    gap_area,
    interval_keyframes,
    positions,
)
from ..vision.optical_flow import FlowArea
from .concurrency import FrameWatermark, KeyframePlan
from .context import JobContext

# Adaptive keyframes: a new one where less than this share of the object's pixels can be carried
# from the last keyframe (followed to its object, the source consistent along the way).
ADAPTIVE_MIN_CARRIED = 0.75


def crop_boxes(ctx: JobContext, masks: MaskStore) -> list[Box | None]:
    """Every frame's crop box (None: no object), as the editing stage cuts them."""
    return stabilised_crops(masks.boxes(), ctx.info.width, ctx.info.height, ctx.options.crop_margin, sar=ctx.sar)


def plan_keyframes(ctx: JobContext, masks: MaskStore, boxes: list[Box | None], plan: KeyframePlan) -> None:
    """Decide which frames the model edits into `plan`, front to back (adaptive keyframes: a
    pass over the video, which editing and carrying follow as it goes)."""
    opts = ctx.options
    if opts.keyframes != Keyframes.ADAPTIVE:
        for index, key in enumerate(interval_keyframes(boxes, opts.keyframe_interval)):
            if key:
                plan.mark(index)
        plan.decided.finish()
        return
    ends = {last for _, last in stretches(boxes)}
    reference: tuple[int, FlowMap, np.ndarray, np.ndarray] | None = None  # index, map, source, mask
    for index, frame in read_frames(ctx.info, wanted=lambda i: boxes[i] is not None, threads=ctx.threads):
        box = boxes[index]
        assert box is not None
        if reference is not None:
            key_index, flow_map, key_source, key_mask = reference
            xs, ys = positions(flow_map.step(flow_map.area.gray(frame)), box, flow_map.area)
            far = index - key_index >= opts.keyframe_interval
            if (
                far
                or _carried_share(frame, box, masks.region(index, box), key_source, key_mask, xs, ys)
                < ADAPTIVE_MIN_CARRIED
            ):
                reference = None
        if reference is None:
            plan.mark(index)
            full = (0, 0, ctx.info.width, ctx.info.height)
            area = gap_area(boxes, index, index + opts.keyframe_interval, ctx.info.width, ctx.info.height)
            reference = (index, FlowMap(frame, area), frame, masks.region(index, full))
        if index in ends:
            plan.mark(index)
            reference = None
        plan.decided.advance(index + 1)
    plan.decided.finish()


def _carried_share(
    frame: np.ndarray,
    box: Box,
    mask: np.ndarray,
    key_source: np.ndarray,
    key_mask: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
) -> float:
    """Share of the mask's pixels whose position in the keyframe lands on its object with a
    consistent source."""
    if not mask.any():
        return 1.0
    seen = _sample(key_source, xs, ys).astype(np.float32)
    consistent = np.abs(seen - region(frame, box)).mean(axis=2) <= TRUST_GREY
    on_object = _sample(key_mask.astype(np.uint8), xs, ys) > 0
    return float((consistent & on_object)[mask].mean())


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    return cv2.remap(image, xs, ys, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)


def carry_edits(
    ctx: JobContext,
    boxes: list[Box | None],
    keys: KeyframePlan,
    edits: CropSpool,
    progress_offset: int,
    ready: FrameWatermark | None = None,
    keys_ready: FrameWatermark | None = None,
) -> int:
    """Fill the boxes of the frames between keyframes into `edits`, carrying the keyframes' whole
    edited crops (as editing left them in `edits`: not pasted, so the saving pass feathers every
    frame once, with its own mask); returns how many. Progress goes on from `progress_offset`.

    With `keys_ready` (how far editing has spooled the keyframes), this runs beside the editing
    stage: each gap is filled as soon as its closing keyframe is edited, while the model server
    works on the next ones; `ready` tells the saving pass how far the frames are final."""
    info = ctx.info
    carried_count = 0
    ctx.progress.advance(progress_offset)
    with CropSpool(ctx.workdir / "between.crops", info.frame_count) as sources:
        start: tuple[int, Keyframe, FlowMap] | None = None  # the gap's first keyframe
        between: list[tuple[int, np.ndarray, np.ndarray]] = []  # index, flow map to start (float16), grey
        for index, frame in read_frames(info, wanted=lambda i: boxes[i] is not None, threads=ctx.threads):
            box = boxes[index]
            assert box is not None
            if not keys[index]:
                assert start is not None  # every stretch starts with a keyframe
                gray = start[2].area.gray(frame)
                between.append((index, start[2].step(gray).astype(np.float16), gray))
                sources.put(index, box, region(frame, box))
                continue
            if keys_ready is not None:
                keys_ready.wait(index)
            key = _keyframe(frame, edits, index)
            if between:
                assert start is not None
                carried_count += _fill_gap(
                    start[0], start[1], index, key, start[2].area, between, boxes, sources, edits
                )
                ctx.progress.advance(progress_offset + index, f"carried the edit to {carried_count} frames")
            between = []
            following = next((i for i in range(index + 1, info.frame_count) if boxes[i] is not None and keys[i]), index)
            start = (index, key, FlowMap(frame, gap_area(boxes, index, following, info.width, info.height)))
            if ready is not None:
                ready.advance(index + 1)  # everything up to this keyframe is final
    ctx.progress.advance(progress_offset + info.frame_count)
    return carried_count


def _keyframe(frame: np.ndarray, edits: CropSpool, index: int) -> Keyframe:
    stored = edits.get(index)
    assert stored is not None  # the model edited every keyframe
    box, pixels = stored
    edited = frame.copy()
    region(edited, box)[:] = pixels
    return Keyframe(source=frame, edited=edited)


def _fill_gap(
    first: int,
    first_key: Keyframe,
    last: int,
    last_key: Keyframe,
    area: FlowArea,
    between: list[tuple[int, np.ndarray, np.ndarray]],
    boxes: list[Box | None],
    sources: CropSpool,
    edits: CropSpool,
) -> int:
    """Carry the two keyframes' edits into the frames between them (walked backwards, so the
    flow map towards `last` is composed step by step, on the same `area` as the one from `first`)."""
    towards_last = FlowMap(last_key.source, area)
    span = last - first
    for index, to_first, gray in reversed(between):
        box = boxes[index]
        assert box is not None
        _, source_box = sources.get(index)  # type: ignore[misc]
        to_last = towards_last.step(gray)
        keys = [
            (first_key, positions(to_first.astype(np.float32), box, area), (last - index) / span),
            (last_key, positions(to_last, box, area), (index - first) / span),
        ]
        pixels, _ = carried(source_box, keys)
        edits.put(index, box, np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    return len(between)
