"""Decoding with PyAV: probe a video (size, fps, codec, audio, rotation) and read its frames.

Frames are never held all at once: `read_frames` re-decodes the file from
the start whenever a stage needs the frames again (decoding is about
1000 fps at 640x360, far cheaper than the models), so memory does not grow
with the length of the video.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import InvalidArgument

MIN_SIDE = 16  # smaller frames hold no object SAM3 could find or a crop could edit
MAX_SIDE = 8192  # 8K UHD (7680x4320) fits; larger frames would need GBs per frame in the pipeline


FULL_RANGE = 2  # AVColorRange AVCOL_RANGE_JPEG: 0-255 samples (phones' and MJPEG's yuvj420p)


@dataclass(frozen=True)
class FrameTimes:
    """When each frame is shown: its presentation time in `time_base` units, as decoded. A phone's
    variable frame rate stays variable in the output, and the audio keeps its place against the
    first frame (`start`)."""

    pts: np.ndarray  # int64, one per frame, increasing
    time_base: Fraction

    @property
    def start(self) -> Fraction:
        """The first frame's time, seconds, on the container's clock (the audio's too)."""
        return int(self.pts[0]) * self.time_base

    def end(self, fps: Fraction) -> Fraction:
        """When the last frame stops being shown, seconds (it lasts as long as the one before it)."""
        last = int(self.pts[-1] - self.pts[-2]) if len(self.pts) > 1 else round(1 / (fps * self.time_base))
        return (int(self.pts[-1]) + last) * self.time_base

    def variable(self) -> bool:
        """Frame intervals differ by more than a tick of rounding: a variable frame rate."""
        intervals = np.diff(self.pts)
        return len(intervals) > 1 and int(intervals.max() - intervals.min()) > 1

    @classmethod
    def constant(cls, count: int, fps: Fraction) -> FrameTimes:
        """Frame i at i / fps (when the source's own times cannot be trusted)."""
        return cls(np.arange(count, dtype=np.int64), 1 / Fraction(fps))


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int  # frames that will be processed (after max_frames)
    codec: str
    has_audio: bool
    rotation: int = 0  # display rotation, degrees counterclockwise; frames are served upright
    times: FrameTimes | None = None  # None: frame i at i / fps

    def frame_times(self) -> FrameTimes:
        return self.times if self.times is not None else FrameTimes.constant(self.frame_count, self.fps)


def probe(
    path: Path, max_frames: int | None, on_frame: Callable[[int], None] | None = None, threads: int = 0
) -> VideoInfo:
    """Open the video and decode it once to count (and check) its frames.

    Container frame counts are missing or wrong for many files, so we count by
    decoding; `on_frame(n)` is called as frames are counted, for progress. `threads`: decoder
    threads (0: FFmpeg picks, one per core).
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InvalidArgument("input_video_path", f"{path.name} has no video stream")
            stream = _video_stream(container, threads)
            # Counting needs every frame decoded, not deblocked: skipping H.264's loop filter (the
            # pixels are not used) saves a fifth of the pass; bitstream errors still show.
            stream.codec_context.options = {"skip_loop_filter": "all"}
            fps = stream.average_rate or stream.guessed_rate or Fraction(25)
            time_base = stream.time_base
            codec = stream.codec_context.name
            has_audio = bool(container.streams.audio)
            count = rotation = 0
            width = height = 0
            pts: list[int | None] = []
            for frame in container.decode(stream):
                pts.append(frame.pts)
                if count == 0:
                    width, height, rotation = frame.width, frame.height, _quarter_turns(frame) * 90
                    _check_size(path, width, height)
                elif (frame.width, frame.height) != (width, height):
                    raise InvalidArgument(
                        "input_video_path",
                        f"{path.name} changes size mid-stream: frame {count} "
                        f"is {frame.width}x{frame.height}, the first was {width}x{height}",
                    )
                count += 1
                if on_frame and count % 25 == 0:
                    on_frame(count)
                if max_frames and count >= max_frames:
                    break
    except av.FFmpegError as err:
        raise InvalidArgument("input_video_path", f"{path.name} is not a readable video: {err}") from err
    if count == 0:
        raise InvalidArgument("input_video_path", f"{path.name} contains no decodable video frames")
    if rotation % 180:  # phone videos: stored landscape, shown portrait
        width, height = height, width
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=Fraction(fps),
        frame_count=count,
        codec=codec,
        has_audio=has_audio,
        rotation=rotation,
        times=_times(pts, time_base),
    )


def _times(pts: list[int | None], time_base: Fraction | None) -> FrameTimes | None:
    """The decoded frames' times, when every frame has one and they increase (None: a file
    whose times are missing or out of order is timed by its frame rate instead)."""
    if time_base is None or any(p is None for p in pts):
        return None
    times = np.array(pts, dtype=np.int64)
    return FrameTimes(times, Fraction(time_base)) if (np.diff(times) > 0).all() else None


def _check_size(path: Path, width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_SIDE:
        raise InvalidArgument(
            "input_video_path",
            f"{path.name} has {width}x{height} frames; sides from {MIN_SIDE} to {MAX_SIDE} pixels are supported",
        )


def read_frames(
    info: VideoInfo, start: int = 0, wanted: Callable[[int], bool] | None = None, threads: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, RGB uint8 HxWx3) for frames start..frame_count-1, or only those `wanted`
    (the others are decoded, as the codec needs, but never converted to RGB)."""
    for index, frame in decoded_frames(info, threads):
        if index >= start and (wanted is None or wanted(index)):
            yield index, upright_rgb(frame)


def decoded_frames(info: VideoInfo, threads: int = 0) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield (index, frame as decoded) for frames 0..frame_count-1."""
    with av.open(str(info.path)) as container:
        stream = _video_stream(container, threads)
        for index, frame in enumerate(container.decode(stream)):
            if index >= info.frame_count:
                break
            yield index, frame


def upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The decoded frame as RGB uint8 HxWx3, turned upright."""
    # Contiguous copy: rot90 returns a strided view that cv2 and PyAV reject.
    return np.ascontiguousarray(np.rot90(rgb_of(frame), _quarter_turns(frame)))


def encodes_as_decoded(frame: av.VideoFrame) -> bool:
    """The frame can go to media.encode as it was decoded: upright, and in the 4:2:0 that rgb_of
    converts exactly (converting it to RGB and back would give the same samples, at a cost)."""
    return _exact_420(frame) and _quarter_turns(frame) == 0


def rgb_of(frame: av.VideoFrame) -> np.ndarray:
    """The decoded frame as RGB uint8 HxWx3, as stored (not turned upright).

    Limited-range 4:2:0 (nearly all video) is converted by OpenCV's BT.601, which is exact to
    rounding and the inverse of media.encode's: pixels no stage touched go back to the encoder as
    the very YUV samples they were decoded from. FFmpeg's default (swscale) conversion makes every
    pixel about one grey level darker, the output one level darker again, and costs more. Other
    formats (full range, 4:4:4, 10 bits, odd sizes) go through swscale.
    """
    if _exact_420(frame):
        return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


def _exact_420(frame: av.VideoFrame) -> bool:
    return (
        frame.format.name == "yuv420p" and frame.color_range != FULL_RANGE and not (frame.width % 2 or frame.height % 2)
    )


def _video_stream(container: av.container.InputContainer, threads: int) -> av.video.stream.VideoStream:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads, whichever the codec has
    stream.codec_context.thread_count = threads
    return stream


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counterclockwise quarter turns that show the frame upright (its display matrix)."""
    return round((frame.rotation or 0) / 90) % 4
