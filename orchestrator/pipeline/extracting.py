"""Stage 1, extracting: probe the input and count its frames by decoding it once.

Frames are not kept: later stages decode the file again when they need them (media.decode).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..media.decode import VideoInfo, probe
from ..media.summary import MediaSummary, plan
from .context import Progress


def extract(path: Path, max_frames: int | None, progress: Progress, log: logging.Logger, threads: int = 0) -> VideoInfo:
    info = probe(path, max_frames, on_frame=progress.advance, threads=threads)
    times = info.frame_times()
    log.info(
        "extracting: %s %dx%d, %s fps%s, %d frames from %.3f s, codec %s, audio %s",
        path,
        info.width,
        info.height,
        info.fps,
        " on average, variable frame rate (kept)" if times.variable() else "",
        info.frame_count,
        float(times.start),
        info.codec,
        info.has_audio,
    )
    media = MediaSummary.of(info)
    log.info("extracting: %s; %s", media.summary, plan(info))
    progress.probed(media.to_dict())
    return info
