"""H.264 mp4 encoding with PyAV: RGB frames at the source fps, with the source's audio.

The mp4 is 4:2:0 in the source's colour (media.colour: matrix, range, primaries, transfer, all
tagged) and depth: 8-bit sources give yuv420p (High), 10-bit ones yuv420p10le (High 10). High 10
rather than HEVC Main 10: the same encoder and options, every FFmpeg-based player and VLC play it,
and the edit path does not change codec with the source (browsers' hardware decoders often do
not take High 10: see the README). The sample aspect ratio is the source's. `+faststart` so it
streams;
audio is copied when mp4 can carry its codec and transcoded to AAC otherwise.
yuv420p needs even sizes: odd frames are padded by one edge pixel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.frame import PictureType

from .colour import Colour
from .decode import VideoInfo

# Audio codecs copied into the mp4 as they are. The muxer also takes Opus and FLAC, but many
# players (Safari, QuickTime, older TVs) do not play them from an mp4, so those become AAC.
MP4_AUDIO_CODECS = {"aac", "mp3", "ac3", "eac3", "alac"}
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
    colour: Colour | None = None,
) -> int:
    """Encode frames (RGB HxWx3, grey HxW, or source frames as decoded that
    media.decode.encodes_as_decoded passes) at the source fps; mux the audio of `audio_from`.
    `threads`: x264 threads (0: x264 picks, 1.5 per core). `colour`: the output's (default the
    source's, info.output_colour). Returns the frame count."""
    even_w, even_h = info.width + info.width % 2, info.height + info.height % 2
    count = 0
    with (
        av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out,
        av.open(str(audio_from)) if audio_from else nullcontext() as src,
    ):
        video = out.add_stream("libx264", rate=info.fps, options={**options, "threads": str(threads)})
        colour = colour or info.output_colour
        video.width, video.height, video.pix_fmt = even_w, even_h, colour.pix_fmt
        video.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        colour.tag(video.codec_context)
        # Every stream must exist before the first packet is muxed.
        audio = _AudioTrack(out, src.streams.audio[0]) if src is not None else None
        for image in frames:
            if isinstance(image, av.VideoFrame):  # a source frame nothing changed: no conversion
                frame = image
                frame.pict_type = PictureType.NONE  # else x264 would keep the source's frame types
                frame.time_base = 1 / Fraction(info.fps)  # its pts (below) counts frames, as the others do
            else:
                if image.shape[:2] != (even_h, even_w):
                    pad = ((0, even_h - image.shape[0]), (0, even_w - image.shape[1]))
                    image = np.pad(image, pad + ((0, 0),) * (image.ndim - 2), mode="edge")
                frame = yuv420_frame(image, colour)
            frame.pts = count
            out.mux(video.encode(frame))
            count += 1
            if on_frame and count % 8 == 0:
                on_frame(count)
        out.mux(video.encode(None))
        if audio is not None:
            audio.write(src, duration=Fraction(count) / info.fps)
    if on_frame:
        on_frame(count)
    return count


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


class _AudioTrack:
    """The source's audio in the output: copied when mp4 takes its codec, else AAC."""

    def __init__(self, out: av.container.OutputContainer, source: av.audio.stream.AudioStream):
        self.out, self.source = out, source
        self.copy = source.codec_context.name in MP4_AUDIO_CODECS
        if self.copy:
            self.stream = out.add_stream_from_template(source)
        else:
            self.stream = out.add_stream("aac", rate=source.codec_context.sample_rate or 48000)

    def write(self, src: av.container.InputContainer, duration: Fraction) -> None:
        """Mux the audio up to `duration` seconds (the video's length)."""
        time_base = self.source.time_base
        if self.copy:
            for packet in src.demux(self.source):
                if packet.dts is None:  # the demuxer's end-of-stream marker
                    continue
                if packet.pts is not None and packet.pts * time_base >= duration:
                    break
                packet.stream = self.stream
                self.out.mux(packet)
            return
        for frame in src.decode(self.source):
            if frame.pts is not None and frame.pts * time_base >= duration:
                break
            frame.pts = None
            self.out.mux(self.stream.encode(frame))
        self.out.mux(self.stream.encode(None))
