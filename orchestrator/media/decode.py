"""Decoding with PyAV: probe a video (size, fps, codec, audio, rotation) and read its frames.

Frames are never held all at once: `read_frames` re-decodes the file from
the start whenever a stage needs the frames again (decoding is about
1000 fps at 640x360, far cheaper than the models), so memory does not grow
with the length of the video.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from pathlib import Path

import av
import numpy as np
from av.sidedata.sidedata import Type

from ..errors import InvalidArgument
from .colour import Colour
from .hdr_side_data import HdrSideData

MIN_SIDE = 16  # smaller frames hold no object SAM3 could find or a crop could edit
MAX_SIDE = 8192  # 8K UHD (7680x4320) fits; larger frames would need GBs per frame in the pipeline


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
    audio_tracks: int = 0

    def frame_times(self) -> FrameTimes:
        return self.times if self.times is not None else FrameTimes.constant(self.frame_count, self.fps)

    colour: Colour | None = None  # the source's (None: plain SDR of its size, see Colour.sdr)
    sample_aspect_ratio: Fraction = Fraction(1)  # of the upright frames, which the output keeps
    interlaced: bool = False  # the first frame is interlaced (fields, not a progressive picture)
    mirrored: bool = False  # the display matrix mirrors the picture (after its rotation); served unmirrored
    hdr_side_data: HdrSideData | None = None  # mastering display, content light level: the output keeps them

    @property
    def output_colour(self) -> Colour:
        return self.colour or Colour.sdr(self.width, self.height)


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
            audio_tracks = len(container.streams.audio)
            count = rotation = 0
            mirrored, side_data = False, None
            width = height = 0
            pts: list[int | None] = []
            colour, interlaced = None, False
            sar = Fraction(stream.codec_context.sample_aspect_ratio or 1)
            for frame in container.decode(stream):
                pts.append(frame.pts)
                if count == 0:
                    width, height = frame.width, frame.height
                    turns, mirrored = orientation(frame)
                    rotation = turns * 90
                    colour, interlaced = Colour.of_frame(frame), bool(frame.interlaced_frame)
                    side_data = HdrSideData.of_frame(frame) if colour.hdr else None
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
        width, height, sar = height, width, 1 / sar
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=Fraction(fps),
        frame_count=count,
        codec=codec,
        has_audio=audio_tracks > 0,
        audio_tracks=audio_tracks,
        rotation=rotation,
        times=_times(pts, time_base),
        colour=colour,
        sample_aspect_ratio=sar,
        interlaced=interlaced,
        mirrored=mirrored,
        hdr_side_data=side_data,
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
    """Yield (index, frame as decoded) for frames 0..frame_count-1; interlaced sources
    deinterlaced (every stage sees, and the output keeps, progressive frames)."""
    with av.open(str(info.path)) as container:
        stream = _video_stream(container, threads)
        frames = container.decode(stream)
        for index, frame in enumerate(_deinterlaced(stream, frames) if info.interlaced else frames):
            if index >= info.frame_count:
                break
            yield index, frame


def _deinterlaced(stream: av.video.stream.VideoStream, frames: Iterator[av.VideoFrame]) -> Iterator[av.VideoFrame]:
    """FFmpeg's bwdif, one progressive frame per frame (send_frame: the source's frame rate, not
    its field rate, so frame indices, counts and the audio stay as probed); it holds one frame
    back to look ahead, hence the flush."""
    graph = av.filter.Graph()
    source, sink = graph.add_buffer(template=stream), graph.add("buffersink")
    bwdif = graph.add("bwdif", "mode=send_frame:parity=auto:deint=all")
    source.link_to(bwdif)
    bwdif.link_to(sink)
    graph.configure()
    for frame in chain(frames, [None]):  # None: the end, which flushes the held frame
        graph.push(frame)
        while True:
            try:
                yield graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break


def upright_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The decoded frame as RGB uint8 HxWx3, turned upright and unmirrored."""
    return _upright(rgb_of(frame), *orientation(frame))


def encodes_as_decoded(frame: av.VideoFrame) -> bool:
    """The frame can go to media.encode as it was decoded: upright, and in a 4:2:0 layout the
    encoder writes (8 or 10 bits, either range: the output keeps the source's colour, so the
    very samples decoded are the ones written)."""
    return _exact_420(frame) and orientation(frame) == (0, False)


def output_samples(frame: av.VideoFrame, colour: Colour) -> np.ndarray | None:
    """The frame's samples in the output's 4:2:0 layout (stacked planes, H*3/2 x W, as PyAV's
    to_ndarray), upright and unmirrored; None: the frame goes through RGB. The layouts the encoder
    writes come as decoded. Other even-sized HDR ones (4:2:2, 4:4:4) are subsampled to 4:2:0 by
    swscale in YCbCr, told the same matrix and range both sides, so no sample takes the tone map
    there and back (which clips); other SDR layouts and odd sizes go through RGB, exact to
    rounding but for the chroma x264 subsamples anyway."""
    if _exact_420(frame):
        planes = frame.to_ndarray()
    elif frame.width % 2 or frame.height % 2 or not colour.hdr:
        return None
    else:
        planes = colour.subsampled(frame)
    turns, mirrored = orientation(frame)
    if (turns, mirrored) == (0, False):
        return planes
    height = planes.shape[0] * 2 // 3
    y = _upright(planes[:height], turns, mirrored)
    u, v = (_upright(c.reshape(height // 2, -1), turns, mirrored) for c in np.split(planes[height:].ravel(), 2))
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, y.shape[1])


def rgb_of(frame: av.VideoFrame) -> np.ndarray:
    """The decoded frame as RGB uint8 HxWx3, as stored (not turned upright).

    Even-sized 4:2:0 in 8 or 10 bits (nearly all video) is converted with the source's own
    matrix and range (media.colour), exact to rounding and the inverse of media.encode's.
    FFmpeg's default (swscale) conversion makes every pixel about one grey level darker and
    costs more; other layouts (4:2:2, 4:4:4, odd sizes) still go through it, told the matrix and
    range.
    """
    colour = Colour.of_frame(frame)
    if _exact_420(frame):
        return colour.to_rgb(frame.to_ndarray())  # the samples as decoded
    return colour.swscale_rgb(frame)


# Decoded 4:2:0 layouts converted exactly (yuvj420p is full-range yuv420p).
_EXACT_LAYOUTS = {"yuv420p", "yuvj420p", "yuv420p10le"}


def _exact_420(frame: av.VideoFrame) -> bool:
    return frame.format.name in _EXACT_LAYOUTS and not (frame.width % 2 or frame.height % 2)


def _video_stream(container: av.container.InputContainer, threads: int) -> av.video.stream.VideoStream:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame and slice threads, whichever the codec has
    stream.codec_context.thread_count = threads
    return stream


def orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """(counterclockwise quarter turns, then a left-right mirror) that show the frame as its
    display matrix says. A matrix with a negative determinant mirrors: FFmpeg writes a flip as the
    rotation's matrix with its first column negated (av_display_matrix_flip, after the rotation),
    so negating it back gives the rotation. PyAV's frame.rotation reads a mirrored matrix as a
    rotation (an h-flip as 180 degrees, a v-flip as 0), hence the matrix's own reading."""
    side = frame.side_data.get(Type.DISPLAYMATRIX)
    if side is None:
        return 0, False
    m = struct.unpack("=9i", bytes(side))
    mirrored = m[0] * m[4] - m[1] * m[3] < 0
    first = -m[0] if mirrored else m[0]
    degrees = -math.degrees(math.atan2(m[1], first))  # av_display_rotation_get
    return round(degrees / 90) % 4, mirrored


def _upright(image: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """`image` turned `turns` quarter turns counterclockwise, then mirrored left-right."""
    if (turns, mirrored) == (0, False):
        return image
    turned = np.rot90(image, turns)
    # Contiguous copy: rot90 and flips return strided views that cv2 and PyAV reject.
    return np.ascontiguousarray(turned[:, ::-1] if mirrored else turned)
