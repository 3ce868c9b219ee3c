"""H.264 mp4 encoding with PyAV: RGB frames at the source's frame times, with its other tracks.

The mp4 is 4:2:0 in the source's colour (media.colour: matrix, range, primaries, transfer, all
tagged) and depth: 8-bit sources give yuv420p (High), 10-bit ones yuv420p10le (High 10); an HDR
source's mastering-display and content-light-level side data go into x264's SEI
(media.hdr_side_data). High 10
rather than HEVC Main 10: the same encoder and options, every FFmpeg-based player and VLC play it,
and the edit path does not change codec with the source (browsers' hardware decoders often do
not take High 10: see the README). The sample aspect ratio is the source's. `+faststart` so it
streams. Each frame keeps its presentation time from the source (media.decode.FrameTimes, in the
source's time base: a variable frame rate stays variable), the first at 0; the source's audio,
subtitles and metadata follow (media.tracks).
yuv420p needs even sizes: odd frames are padded by one edge pixel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.frame import PictureType

from .colour import Colour
from .decode import FrameTimes, VideoInfo
from .tracks import carry

X264_OPTIONS = {"crf": "17", "preset": "medium"}
# The mask video is black and white with slow-moving edges: a fast preset costs a fraction and
# compresses it about as well.
MASK_X264_OPTIONS = {"crf": "17", "preset": "ultrafast"}


def encode_h264(
    path: Path,
    frames: Iterable[np.ndarray | av.VideoFrame],
    info: VideoInfo,
    audio_from: Path | None,
    on_frame: Callable[[int], None] | None = None,
    options: dict[str, str] = X264_OPTIONS,
    threads: int = 0,
    log: logging.Logger | None = None,
    colour: Colour | None = None,
) -> int:
    """Encode frames (RGB HxWx3, grey HxW, or source frames as decoded that
    media.decode.encodes_as_decoded passes) at the source's frame times; mux the other tracks and
    metadata of `audio_from` (what was done with each track goes to `log`). `threads`: x264
    threads (0: x264 picks, 1.5 per core). `colour`: the output's (default the source's,
    info.output_colour; the source's HDR side data is written only with it). Returns the frame
    count."""
    even_w, even_h = info.width + info.width % 2, info.height + info.height % 2
    times = info.frame_times()
    count = 0
    with (
        av.open(str(path), "w", format="mp4", options={"movflags": "+faststart+use_metadata_tags"}) as out,
        av.open(str(audio_from)) if audio_from else nullcontext() as src,
    ):
        options = {**options, "threads": str(threads)}
        if colour is None and info.hdr_side_data is not None:  # the video, not the mask's matte
            params = (options.get("x264-params"), info.hdr_side_data.x264_params())
            options["x264-params"] = ":".join(p for p in params if p)
        video = out.add_stream("libx264", rate=info.fps, options=options)
        colour = colour or info.output_colour
        video.width, video.height, video.pix_fmt = even_w, even_h, colour.pix_fmt
        video.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        colour.tag(video.codec_context)
        # x264 numbers the frames (a constant rate: its rate control then does not depend on the
        # source's timing); the muxer gets each frame's own time from the source (`_retimed`).
        # The same frames do not always give the same bits: on tiny clips, with other threads busy
        # in the process, x264 (one thread of its own too) was seen to choose otherwise now and then.
        video.time_base = times.time_base
        counted = 1 / Fraction(info.fps)
        # Every stream must exist before the first packet is muxed.
        carried = carry(out, src) if src is not None else None
        for image in frames:
            if isinstance(image, av.VideoFrame):  # a source frame nothing changed: no conversion
                frame = image
                frame.pict_type = PictureType.NONE  # else x264 would keep the source's frame types
            else:
                if image.shape[:2] != (even_h, even_w):
                    pad = ((0, even_h - image.shape[0]), (0, even_w - image.shape[1]))
                    image = np.pad(image, pad + ((0, 0),) * (image.ndim - 2), mode="edge")
                frame = yuv420_frame(image, colour)
            frame.pts, frame.time_base = count, counted
            out.mux(_retimed(video.encode(frame), times))
            count += 1
            if on_frame and count % 8 == 0:
                on_frame(count)
        out.mux(_retimed(video.encode(None), times))
        if carried is not None:
            carried.write(src, times.start, times.end(info.fps))
            for note in carried.notes:
                (log or logging.getLogger(__name__)).info("saving: %s", note)
    if on_frame:
        on_frame(count)
    return count


def _retimed(packets: list[av.Packet], times: FrameTimes) -> list[av.Packet]:
    """x264's packets (times counting frames) at the source frames' times, the first at 0."""
    for packet in packets:
        packet.pts, packet.dts = _source_time(packet.pts, times), _source_time(packet.dts, times)
        packet.time_base = times.time_base
    return packets


def _source_time(frame: int, times: FrameTimes) -> int:
    """Frame number `frame`'s time (source time base, from the first frame); a decode time before
    the first frame or after the last (B-frame reordering) goes on at the nearest interval, so
    the mapping keeps decode times increasing and never after presentation times."""
    pts, last = times.pts, len(times.pts) - 1
    first_step = int(pts[1] - pts[0]) if last else 1
    last_step = int(pts[-1] - pts[-2]) if last else 1
    if frame < 0:
        return frame * first_step
    if frame > last:
        return int(pts[-1] - pts[0]) + (frame - last) * last_step
    return int(pts[frame] - pts[0])


def yuv420_frame(image: np.ndarray, colour: Colour) -> av.VideoFrame:
    """An even-sized RGB image as the encoder's 4:2:0 frame in `colour` (the exact inverse of
    media.decode.rgb_of), or a grey matte as a limited-range 8-bit one (grey needs no matrix)."""
    if image.ndim == 3:
        return colour.from_rgb(image)
    height = image.shape[0]
    planes = np.empty((height * 3 // 2, image.shape[1]), np.uint8)
    planes[:height] = cv2.LUT(image, _GREY_TO_LUMA)
    planes[height:] = 128  # no colour
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    colour.tag(frame)
    return frame


_GREY_TO_LUMA = np.rint(16 + np.arange(256) * (219 / 255)).astype(np.uint8)  # full range -> 16..235
