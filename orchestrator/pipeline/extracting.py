"""Stage 1, extracting: probe the input and count its frames by decoding it once.

Frames are not kept: later stages decode the file again when they need them (media.decode).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..media.decode import VideoInfo, probe
from ..media.summary import MediaSummary
from .context import Progress


def extract(path: Path, max_frames: int | None, progress: Progress, log: logging.Logger, threads: int = 0) -> VideoInfo:
    info = probe(path, max_frames, on_frame=progress.advance, threads=threads)
    log.info(
        "extracting: %s %dx%d, %s fps, %d frames, codec %s, audio %s",
        path,
        info.width,
        info.height,
        info.fps,
        info.frame_count,
        info.codec,
        info.has_audio,
    )
    media = MediaSummary.of(info)
    log.info("extracting: %s%s", media.summary, _plan(info))
    progress.probed(media.to_dict())
    return info


def _plan(info: VideoInfo) -> str:
    """What the job does with the source's colour, depth and geometry, for the log."""
    colour, notes = info.output_colour, []
    if colour.hdr:
        notes.append(f"{colour.hdr.upper()} source: the models see its signal as SDR (no tone map yet)")
    notes.append(f"written as {colour.describe()}")
    if info.sample_aspect_ratio != 1:
        notes.append("the models see the stored (non-square) pixels; the output keeps the sample aspect ratio")
    if info.interlaced:
        notes.append("interlaced: not deinterlaced yet, written progressive")
    return "; " + "; ".join(notes)
