"""Is this file a video? The one check every way in shares: a job's input (validation), an upload
before it is kept, the input artifact before it is served.

Cheap: FFmpeg opens the container and reads its headers (and what it needs to find the streams),
nothing is decoded. Decoding problems further in are the extracting stage's to find and report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

# Demuxers that make a "video stream" out of what is not a video: one still image (PNG, SVG,
# XPM... : image2 and the *_pipe family) or text art (tty shows a .ans text file as frames). SVG,
# XPM and text are documents a browser may run; no video input needs them.
STILL_OR_TEXT_DEMUXERS = frozenset({"image2", "image2pipe", "tty", "bintext", "xbin", "adf", "idf"})
VIDEO_PIPE_DEMUXERS = frozenset({"yuv4mpegpipe"})  # a *_pipe name that is a real video format


class NotAVideo(ValueError):
    """The file is not a video FFmpeg can read; the message says what FFmpeg found."""


@dataclass(frozen=True)
class VideoProbe:
    """What the container says about its first video stream (sizes as stored, before rotation)."""

    container: str  # the demuxer's names, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str
    width: int
    height: int
    seconds: float | None = None  # how long it runs, as the container says (None: it does not say)
    fps: float | None = None  # frames per second, as the container says

    def processed_seconds(self, max_frames: int | None) -> float | None:
        """How much of it a job with `max_frames` processes (None: not known from the headers)."""
        if max_frames is None or not self.fps:
            return self.seconds
        limited = max_frames / self.fps
        return limited if self.seconds is None else min(self.seconds, limited)


def probe_video(path: Path) -> VideoProbe:
    """The container at `path` and its first video stream; NotAVideo when FFmpeg cannot open it as
    media, it has no video stream, or the stream's codec or frame size is unknown."""
    try:
        with av.open(str(path)) as container:
            formats = set(container.format.name.split(","))
            if formats & STILL_OR_TEXT_DEMUXERS or any(
                f.endswith("_pipe") and f not in VIDEO_PIPE_DEMUXERS for f in formats
            ):
                raise NotAVideo(f"a still image or text ({container.format.name}), not a video")
            if not container.streams.video:
                found = ", ".join(s.type for s in container.streams) or "none"
                raise NotAVideo(f"no video stream (streams: {found})")
            stream = container.streams.video[0]
            codec = stream.codec_context
            if codec is None:
                raise NotAVideo(f"its video codec ({stream.codec_tag or 'unknown'}) cannot be decoded here")
            if not (codec.width > 0 and codec.height > 0):
                raise NotAVideo(f"its {codec.name} video stream has no known frame size")
            rate = stream.average_rate or stream.guessed_rate
            return VideoProbe(
                container.format.name,
                codec.name,
                codec.width,
                codec.height,
                _seconds(container, stream),
                float(rate) if rate else None,
            )
    except av.FFmpegError as err:
        raise NotAVideo(f"not a media file FFmpeg can read ({err.strerror or err})") from err


def _seconds(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """The stream's duration, else the container's (headers only: either may be missing)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None
