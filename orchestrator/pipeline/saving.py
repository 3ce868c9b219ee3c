"""Stage 6, saving: one pass that decodes the source, pastes the edited boxes of each target (a
Layer each, in target order) through its eroded, feathered mask (with the source's fine detail
put back when `extra.detail=source`, see vision.detail; smoothing them on the way, see
smoothing.Smoother) and encodes the H.264 mp4 (source fps and audio); then the mask video. In
single-frame mode, two PNGs.

The mask output shows where the edit was pasted (white): the eroded paste mask, not the raw
SAM3 mask. It is computed inside each frame's mask box only. With several targets it is labelled:
target k of n (1-based) at grey level round(255 * (n - k + 1) / n), so one target is white.

It can run behind the editing stages: each layer's `ready` says how far its boxes are final.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import av
import cv2
import numpy as np

from ..media.colour import Colour
from ..media.crop_spool import CropSpool
from ..media.decode import decoded_frames, encodes_as_decoded, output_samples, upright_rgb
from ..media.encode import MASK_X264_OPTIONS, encode_h264
from ..media.mask_store import MaskStore
from ..media.splice import Before, splice
from ..vision.compositing import box_paste_mask, paste, paste_mask
from ..vision.crop import Box, region
from .concurrency import FrameWatermark
from .context import FrameFilter, JobContext, OutputPaths, Pasted


@dataclass(frozen=True)
class Layer:
    """One target's part of the output video: its masks, its edited boxes, how far they are final
    (None: all of them), and what finishes each pasted box (its smoothing; None: written as is)."""

    masks: MaskStore
    edits: CropSpool
    ready: FrameWatermark | None = None
    place: FrameFilter | None = None


def save_video(ctx: JobContext, layers: Sequence[Layer], paths: OutputPaths) -> None:
    """Encode the source with each layer's boxes pasted in through its masks' paste weights (each
    once its `ready` says it is final, in layer order), finished by its `place` when given
    (smoothing); progress counts its frames."""
    info = ctx.info
    count = encode_h264(
        paths.video,
        output_frames(ctx, layers),
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


def save_mask_video(ctx: JobContext, masks: Sequence[MaskStore], paths: OutputPaths) -> None:
    """Encode each target's paste masks, labelled (they are final once propagating ends, so this
    can run any time after it); progress counts its frames."""
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


def output_frames(ctx: JobContext, layers: Sequence[Layer]) -> Iterator[np.ndarray | av.VideoFrame]:
    """The output video's frames, in order: each decoded source frame with every layer's edit
    pasted. A frame with none that encodes as it is (media.decode.encodes_as_decoded) goes as
    decoded; the others as their samples in the output's layout, upright (media.decode.
    output_samples), with only the pixels the edits changed converted back from RGB (media.splice:
    an HDR source's untouched pixels never take the tone map's way there and back); odd-sized
    frames as RGB."""
    colour = ctx.info.output_colour
    for index, decoded in decoded_frames(ctx.info, threads=ctx.threads):
        for layer in layers:
            if layer.ready is not None:
                layer.ready.wait(index)
        edits = [layer.edits.get(index) for layer in layers]
        if all(edit is None for edit in edits) and encodes_as_decoded(decoded):
            for layer in layers:
                if layer.place is not None:
                    layer.place(index, None, None)
            yield decoded
            continue
        frame = upright_rgb(decoded)
        samples = output_samples(decoded, colour)
        before = [Before.of(frame, edit[0]) for edit in edits if edit is not None] if samples is not None else []
        for layer, edit in zip(layers, edits, strict=True):
            pasted = None if edit is None else _pasted(ctx, frame, index, layer.masks, *edit)
            if layer.place is not None:
                layer.place(index, frame, pasted)
            elif pasted is not None:
                region(frame, pasted.box)[:] = pasted.pixels
        yield frame if samples is None else colour.frame(splice(samples, frame, before, colour))


def _pasted(ctx: JobContext, frame: np.ndarray, index: int, masks: MaskStore, box: Box, pixels: np.ndarray) -> Pasted:
    """Frame `index`'s edit `pixels` of `box` pasted through its masks' paste weight."""
    info = ctx.info
    return Pasted(
        box,
        *paste(
            region(frame, box),
            pixels,
            lambda b: masks.region(index, b),
            box,
            info.width,
            info.height,
            ctx.request.erode_kernel,
            ctx.options.detail_size,
        ),
    )


def mask_levels(targets: int) -> list[int]:
    """The grey level of each target in the mask video: round(255 * (n - k + 1) / n) for target
    k of n (1-based), so one target is white and each is told apart from the others."""
    return [round(255 * (targets - k) / targets) for k in range(targets)]


def _mattes(ctx: JobContext, masks: Sequence[MaskStore]) -> Iterator[np.ndarray]:
    """Grey frames: each target's level where its edit was pasted (an earlier target's over a later
    one's). One buffer, cleared box by box."""
    info, erode = ctx.info, ctx.request.erode_kernel
    matte = np.zeros((info.height, info.width), np.uint8)
    levels = mask_levels(len(masks))
    for index in range(info.frame_count):
        boxes = [store.box(index) for store in masks]
        for store, box, level in zip(masks, boxes, levels, strict=True):
            if box is not None:
                pasted = box_paste_mask(lambda b: store.region(index, b), box, info.width, info.height, erode)
                np.maximum(region(matte, box), pasted * np.uint8(level), out=region(matte, box))
        yield matte
        for box in boxes:
            if box is not None:
                region(matte, box)[:] = 0


def save_stills(ctx: JobContext, frame: np.ndarray, mask: np.ndarray, paths: OutputPaths) -> None:
    """Single-frame mode: the edited frame and its paste mask as PNGs."""
    cv2.imwrite(str(paths.video), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths.mask), paste_mask(mask, ctx.request.erode_kernel) * 255)
    ctx.log.info("saving: wrote %s and %s", paths.video.name, paths.mask.name)
