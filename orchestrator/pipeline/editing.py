"""Stage 4, editing: crop around the object, edit the crop, paste it back.

Only a crop around the mask goes to InstructPix2Pix, resized to the working size it is good at
(512 by default); the edit is pasted back through the mask, eroded by `erode_kernel` and
feathered inward, so nothing outside the mask changes and no seam shows (vision.crop,
vision.compositing). Frames whose mask is empty are never sent to the model server.

The output is each frame's edited crop, resized back to its box (a CropSpool), never whole
frames: the saving pass, which decodes the source anyway, pastes the boxes into it through the
mask's paste weight, so nothing here holds source pixels or weights while the model works. Up to
EDITS_IN_FLIGHT Edit calls run at once, so the next batch is cropped, and the last one spooled,
while the model server works.

By default editing runs behind propagating (edit_tracked): it crops the frames tracking decoded,
as their masks become final, so the model server edits while it still tracks. With keyframes,
which need every mask first, it runs after it and decodes the video again (edit_frames).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from videoedit.v1.contract import EditParams

from ..media.crop_spool import CropSpool
from ..media.decode import read_frames
from ..media.mask_store import MaskStore
from ..request import Consistency, SeedMode
from ..vision.compositing import fit_crop, paste
from ..vision.crop import Box, CropStabiliser, crop_box, cut_crop, mask_bbox, region, stabilised_crops
from .checkpoint import EditingCheckpoint
from .concurrency import FrameWatermark, KeyframePlan, TrackedFrames
from .context import JobContext

# Edit calls of one job in flight at once: one running on the GPU, one queued behind it.
EDITS_IN_FLIGHT = 2


@dataclass(frozen=True)
class EditTarget:
    """One frame to edit: its crop box and what the model sees of it."""

    index: int
    box: Box  # the crop
    crop: np.ndarray  # RGB uint8: the box resized to the model's working size


def frame_seed(job_seed: int, index: int, mode: SeedMode) -> int:
    """The diffusion seed of frame `index`. "shared" (default): the job seed on every frame, so
    every frame starts from the same noise and the edit's texture does not flicker; "per_frame":
    job seed + frame index, independent noise per frame. Either way a frame's result depends only
    on the job seed and its index, never on how frames were batched."""
    return job_seed if mode == SeedMode.SHARED else (job_seed + index) % 2**63


def edit_target(ctx: JobContext, index: int, frame: np.ndarray, box: Box) -> EditTarget:
    """Cut frame `index`'s crop `box`."""
    return EditTarget(index, box, cut_crop(frame, box, ctx.options.edit_size))


def submit_edit(
    ctx: JobContext,
    targets: Sequence[EditTarget],
    anchor: np.ndarray | None = None,
) -> list[np.ndarray]:
    """One Edit call for `targets`: the edited crops, in order. `anchor`: the crop they attend to
    (cross-frame consistency)."""
    req, opts = ctx.request, ctx.options
    params = EditParams(req.image_guidance_scale, req.guidance_scale, req.num_inference_steps, opts.scheduler)
    seeds = [frame_seed(req.seed, t.index, opts.seed_mode) for t in targets]
    return ctx.models.edit([t.crop for t in targets], req.edit_prompt, params, seeds=seeds, anchor=anchor)


def edit_frame(ctx: JobContext, index: int, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Single-frame mode: `frame` with the object of `mask` edited, by the same crop -> edit ->
    paste path as a video's frames (one Edit call)."""
    info = ctx.info
    bbox = mask_bbox(mask)
    assert bbox is not None  # masking found the object on this frame
    box = crop_box(bbox, info.width, info.height, ctx.options.crop_margin, sar=ctx.sar)
    [crop] = submit_edit(ctx, [edit_target(ctx, index, frame, box)])
    edited = frame.copy()
    region(edited, box)[:], _ = paste(
        region(frame, box),
        fit_crop(crop, (box[2] - box[0], box[3] - box[1])),
        lambda b: region(mask, b),
        box,
        info.width,
        info.height,
        ctx.request.erode_kernel,
        ctx.options.detail_size,
    )
    return edited


def edit_frames(
    ctx: JobContext,
    masks: MaskStore,
    out: CropSpool,
    keys: KeyframePlan | None = None,
    ready: FrameWatermark | None = None,
) -> int:
    """Edit every frame that has an object (or, with `keys`, only the keyframes) into `out` (the
    model's whole edited crop, resized to its box), decoding the video for the crops; returns the
    Edit calls made. `ready` learns how far `out` is final, for stages running behind this one."""
    boxes = stabilised_crops(masks.boxes(), ctx.info.width, ctx.info.height, ctx.options.crop_margin, sar=ctx.sar)

    def wanted(index: int) -> bool:  # asked in frame order: an adaptive plan is followed as it is made
        return boxes[index] is not None and (keys is None or keys[index])

    crops = ((index, frame, boxes[index]) for index, frame in read_frames(ctx.info, wanted=wanted, threads=ctx.threads))
    return _edit(ctx, crops, out, ready)


def edit_tracked(
    ctx: JobContext,
    tracked: TrackedFrames,
    out: CropSpool,
    ready: FrameWatermark | None = None,
    resumed: ResumedEdits | None = None,
) -> int:
    """edit_frames for the frames propagating hands over as it tracks (running behind it): each
    frame's crop box is stabilised as soon as the masks half a window past it are final. How far
    the edits are final is checkpointed; `resumed`: an earlier attempt's edits to carry on from
    (`tracked` then starts at its first frame not edited)."""
    crops = _tracked_crops(ctx, tracked, resumed.boxes if resumed is not None else [])
    return _edit(ctx, crops, out, ready, resumed.checkpoint if resumed is not None else None, checkpointed=True)


@dataclass(frozen=True)
class ResumedEdits:
    """An earlier attempt's editing to carry on from: how far it got, and the mask boxes of the
    frames before that (the crops after it are stabilised over them too)."""

    checkpoint: EditingCheckpoint
    boxes: list[Box | None]  # of frames [0, checkpoint.final)


def _tracked_crops(
    ctx: JobContext, tracked: TrackedFrames, boxes_before: list[Box | None]
) -> Iterator[tuple[int, np.ndarray | None, Box | None]]:
    """(index, frame, crop box) of the frames with an object, in order, and (index, None, None) for
    each frame without one: every crop before it has come out (the object's stretch ended).
    `boxes_before`: the mask boxes of the frames before the first one `tracked` hands over
    (edited already): the stabiliser sees them, their crops are not edited again."""
    stabiliser: CropStabiliser[np.ndarray | None] = CropStabiliser(
        ctx.info.width, ctx.info.height, ctx.options.crop_margin, sar=ctx.sar
    )
    first = len(boxes_before)
    for box in boxes_before:
        stabiliser.add(box, None)
    for frame in tracked:
        for index, box, pixels in stabiliser.add(frame.box, frame.pixels):
            if index >= first:
                yield index, pixels, box
        if frame.box is None:
            yield frame.index, None, None
    for index, box, pixels in stabiliser.finish():
        if index >= first:
            yield index, pixels, box


def _edit(
    ctx: JobContext,
    crops: Iterable[tuple[int, np.ndarray | None, Box | None]],
    out: CropSpool,
    ready: FrameWatermark | None,
    resumed: EditingCheckpoint | None = None,
    checkpointed: bool = False,
) -> int:
    """Edit the frames of `crops` ((index, frame, crop box), in order; (index, None, None): a frame
    without an edit) into `out`, in batches of up to edit_batch_size crops; returns the Edit calls
    made. `checkpointed`: how far `out` is final goes to the job's checkpoints; `resumed`: what an
    earlier attempt left (the frames before `resumed.final` are in `out`)."""
    calls = _EditCalls(ctx, out, ready, resumed, checkpointed)
    batch: list[EditTarget] = []
    for index, frame, box in crops:
        if frame is None or box is None:  # the object's stretch ended
            if batch:  # its last crops are not held back until the next stretch
                calls.send(batch)
                batch = []
            calls.without_edit(index)
            continue
        batch.append(edit_target(ctx, index, frame, box))
        if len(batch) == calls.batch_size:
            calls.send(batch)
            batch = []
    if batch:
        calls.send(batch)
    calls.collect_all()
    ctx.progress.advance(ctx.info.frame_count)
    ctx.log.info(
        "editing: %d frames edited by the model of %d, in %d Edit calls of up to %d crops (%d in flight)",
        out.frames(),
        ctx.info.frame_count,
        calls.sent,
        calls.batch_size,
        EDITS_IN_FLIGHT,
    )
    return calls.sent


@dataclass(frozen=True)
class _Batch:
    """One Edit call in flight: its frames and the answer to come."""

    targets: list[EditTarget]
    edited: Future[list[np.ndarray]]

    @property
    def first(self) -> int:
        return self.targets[0].index

    @property
    def end(self) -> int:
        return self.targets[-1].index + 1


class _EditCalls:
    """The job's Edit calls, EDITS_IN_FLIGHT at a time, collected oldest first into `out`: how far
    `out` is final goes to `ready` and to the progress as the answers come."""

    def __init__(
        self,
        ctx: JobContext,
        out: CropSpool,
        ready: FrameWatermark | None,
        resumed: EditingCheckpoint | None,
        checkpointed: bool,
    ) -> None:
        self.batch_size = min(ctx.options.edit_batch_size, ctx.models.info().max_edit_batch)
        self.sent = 0
        self._ctx, self._out, self._ready = ctx, out, ready
        self._checkpoints = ctx.checkpoints if checkpointed else None
        self._in_flight: deque[_Batch] = deque()
        # Cross-frame consistency: the job's first crop, in every call (a resumed job's, from its checkpoint).
        self._anchor: np.ndarray | None = resumed.anchor if resumed is not None else None
        if resumed is not None:
            self._final_up_to(resumed.final)

    def send(self, targets: list[EditTarget]) -> None:
        if self._ctx.options.consistency == Consistency.CROSS_FRAME and self._anchor is None:
            self._anchor = targets[0].crop
        self._collect_answered()
        if len(self._in_flight) == EDITS_IN_FLIGHT:
            self._collect_oldest()  # the model server has the next batch already; spool this one meanwhile
        edited = self._ctx.models.calls.submit("edit", submit_edit, self._ctx, targets, self._anchor)
        self._in_flight.append(_Batch(targets, edited))
        self.sent += 1
        self._final_up_to(self._in_flight[0].first, report=False)  # the frames before it have no edit to wait for

    def without_edit(self, index: int) -> None:
        """Frame `index` has no edit: with nothing in flight, every frame up to it is final."""
        self._collect_answered()
        if not self._in_flight:
            self._final_up_to(index + 1)

    def collect_all(self) -> None:
        while self._in_flight:
            self._collect_oldest()

    def _collect_answered(self) -> None:
        """Spool (and checkpoint) the oldest calls already answered, not only when a slot is
        needed: behind tracking the next batch may wait long for its masks, and an answer left
        uncollected meanwhile would be lost, and its crops edited again, if the job died."""
        while self._in_flight and self._in_flight[0].edited.done():
            self._collect_oldest()

    def _collect_oldest(self) -> None:
        batch = self._in_flight.popleft()
        answer = self._ctx.stop.result(batch.edited)  # raises at once when the job stops meanwhile
        for target, crop in zip(batch.targets, answer, strict=True):
            x0, y0, x1, y1 = target.box
            self._out.put(target.index, target.box, fit_crop(crop, (x1 - x0, y1 - y0)))
        # Every frame before the oldest batch still in flight is final: spooled, or without an edit.
        done = self._in_flight[0].first if self._in_flight else batch.end
        self._final_up_to(done, f"edited {done}/{self._ctx.info.frame_count} frames")
        if self._checkpoints is not None:
            self._out.sync()
            self._checkpoints.save_editing(EditingCheckpoint(done, self._anchor))

    def _final_up_to(self, end: int, message: str | None = None, report: bool = True) -> None:
        if self._ready is not None:
            self._ready.advance(end)
        if report:
            self._ctx.progress.advance(end, message)
