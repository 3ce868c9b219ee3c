"""Stage 6, saving: the edited H.264 mp4 (source fps and audio) and the mask video; in
single-frame mode, two PNGs.

The mask output shows where the edit was pasted (white): the eroded paste mask, not the raw
SAM3 mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..media.encode import encode_h264
from ..media.frame_spool import read_spool
from ..media.mask_store import MaskStore
from ..vision.compositing import paste_mask
from .context import JobContext


@dataclass(frozen=True)
class OutputPaths:
    video: Path  # {job_id}_output.mp4 (.png in single-frame mode)
    mask: Path  # {job_id}_mask.mp4 (.png)


def save_video(ctx: JobContext, frames: Path, masks: MaskStore, paths: OutputPaths) -> None:
    """Encode the spooled frames and the paste masks; the progress total is 2 x frame count."""
    info = ctx.info
    count = encode_h264(paths.video, read_spool(frames), info, audio_from=info.path if info.has_audio else None,
                        on_frame=ctx.progress.advance)
    mattes = (paste_mask(masks.get(i), ctx.request.erode_kernel) * 255 for i in range(info.frame_count))
    encode_h264(paths.mask, (np.repeat(m[..., None], 3, axis=2) for m in mattes), info, audio_from=None,
                on_frame=lambda n: ctx.progress.advance(count + n))
    ctx.log.info("saving: wrote %s (%d frames at %s fps%s) and %s", paths.video.name, count, info.fps,
                 ", audio" if info.has_audio else "", paths.mask.name)


def save_stills(ctx: JobContext, frame: np.ndarray, mask: np.ndarray, paths: OutputPaths) -> None:
    """Single-frame mode: the edited frame and its paste mask as PNGs."""
    cv2.imwrite(str(paths.video), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(paths.mask), paste_mask(mask, ctx.request.erode_kernel) * 255)
    ctx.log.info("saving: wrote %s and %s", paths.video.name, paths.mask.name)
