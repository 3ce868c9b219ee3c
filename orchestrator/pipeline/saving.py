"""Stage 6, saving: one pass that decodes the source, pastes the edited boxes through the eroded,
feathered mask (with the source's fine detail put back when `extra.detail=source`, see
vision.detail; smoothing them on the way, see smoothing.Smoother) and encodes the H.264 mp4
(source fps and audio); then the mask video. In single-frame mode, two PNGs.

The mask output shows where the edit was pasted (white): the eroded paste mask, not the raw
SAM3 mask. It is computed inside each frame's mask box only.

It can run behind the editing stage: `ready` says how far the boxes are final.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import cv2
import numpy as np

from ..media.colour import Colour
from ..media.crop_spool import CropSpool
from ..media.decode import decoded_frames, encodes_as_decoded, upright_rgb
from ..media.encode import MASK_X264_OPTIONS, encode_h264
from ..media.mask_store import MaskStore
from ..vision.compositing import box_paste_mask, paste, paste_mask
from ..vision.crop import region
from .concurrency import FrameWatermark
from .context import FrameFilter, JobContext, OutputPaths, Pasted


def save_video(
    ctx: JobContext,
    masks: MaskStore,
    edits: CropSpool,
    paths: OutputPaths,
    ready: FrameWatermark | None = None,
    place: FrameFilter | None = None,
) -> None:
    """Encode the source with the boxes of `edits` pasted in through their masks' paste weights
    (each once `ready` says it is final), finished by `place` when given (smoothing); progress
    counts its frames."""
    info = ctx.info
    count = encode_h264(
        paths.video,
        output_frames(ctx, masks, edits, ready, place),
        info,
        audio_from=info.path if info.has_audio else None,
        on_frame=ctx.progress.advance,
        threads=ctx.threads,
        log=ctx.log,
    )
    ctx.log.info(
        "saving: wrote %s (%d frames at %s fps%s)",
        paths.video.name,
        count,
        info.fps,
        ", audio" if info.has_audio else "",
    )


def save_mask_video(ctx: JobContext, masks: MaskStore, paths: OutputPaths) -> None:
    """Encode the paste masks (they are final once propagating ends, so this can run any time
    after it); progress counts its frames."""
    count = encode_h264(
        paths.mask,
        _mattes(ctx, masks),
        ctx.info,
        audio_from=None,
        on_frame=ctx.progress.advance,
        options=MASK_X264_OPTIONS,
        threads=ctx.threads,
        colour=Colour.sdr(ctx.info.width, ctx.info.height),  # a matte: plain SDR whatever the source
    )
    ctx.log.info("saving: wrote %s (%d frames)", paths.mask.name, count)


def output_frames(
    ctx: JobContext,
    masks: MaskStore,
    edits: CropSpool,
    ready: FrameWatermark | None = None,
    place: FrameFilter | None = None,
) -> Iterator[np.ndarray | av.VideoFrame]:
    """The output video's frames, in order: each decoded source frame with its edit pasted (RGB),
    or as decoded when it has no edit and encodes as it is (media.decode.encodes_as_decoded)."""
    info, erode = ctx.info, ctx.request.erode_kernel
    for index, decoded in decoded_frames(info, threads=ctx.threads):
        if ready is not None:
            ready.wait(index)
        edit = edits.get(index)
        if edit is None and encodes_as_decoded(decoded):
            if place is not None:
                place(index, None, None)
            yield decoded
            continue
        frame, pasted = upright_rgb(decoded), None
        if edit is not None:
            box, pixels = edit
            pasted = Pasted(
                box,
                *paste(
                    region(frame, box),
                    pixels,
                    lambda b: masks.region(index, b),
                    box,
                    info.width,
                    info.height,
                    erode,
                    ctx.options.detail_size,
                ),
            )
        if place is not None:
            place(index, frame, pasted)
        elif pasted is not None:
            region(frame, pasted.box)[:] = pasted.pixels
        yield frame


def _mattes(ctx: JobContext, masks: MaskStore) -> Iterator[np.ndarray]:
    """Grey frames: 255 where the edit was pasted. One buffer, cleared box by box."""
    info, erode = ctx.info, ctx.request.erode_kernel
    matte = np.zeros((info.height, info.width), np.uint8)
    for index in range(info.frame_count):
        box = masks.box(index)
        if box is not None:
            region(matte, box)[:] = (
                box_paste_mask(lambda b: masks.region(index, b), box, info.width, info.height, erode) * 255
            )
        yield matte
        if box is not None:
            region(matte, box)[:] = 0


def save_stills(ctx: JobContext, frame: np.ndarray, mask: np.ndarray, paths: OutputPaths) -> None:
    """Single-frame mode: the edited frame and its paste mask as PNGs."""
    cv2.imwrite(str(paths.video), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths.mask), paste_mask(mask, ctx.request.erode_kernel) * 255)
    ctx.log.info("saving: wrote %s and %s", paths.video.name, paths.mask.name)
