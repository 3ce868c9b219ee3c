"""Clips in the colours real uploads come in (full range, 10 bits, BT.601-tagged HD, HLG,
anamorphic), made at test time, and how a player that honours the tags shows a video."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import Interpolation

from clients.sample_clip import _background, _draw_car


@dataclass(frozen=True)
class ClipColour:
    pix_fmt: str = "yuv420p"
    matrix: int = 1  # AVColorSpace
    full_range: bool = False
    primaries: int = 1
    transfer: int = 1
    sample_aspect_ratio: Fraction = Fraction(1)
    codec: str = "libx264"
    interlaced: bool = False  # coded as fields (x264's interlaced mode)
    hdr10: bool = False  # HEVC with mastering-display and content-light-level SEI (HDR10_SIDE_DATA)
    mirrored: bool = False  # a display matrix that mirrors the picture left-right

    def tag(self, target: av.VideoFrame | av.codec.context.CodecContext) -> None:
        target.colorspace, target.color_primaries, target.color_trc = self.matrix, self.primaries, self.transfer
        target.color_range = 2 if self.full_range else 1


BT601 = {"matrix": 6, "primaries": 6, "transfer": 6}
# x265's HDR10 SEI: a P3-D65 mastering display of 1000/0.0001 cd/m2, MaxCLL 1000, MaxFALL 400.
HDR10_SIDE_DATA = "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"


CASES = {
    "full-range 8-bit 720p": (ClipColour(full_range=True), (1280, 720)),
    "10-bit BT.709": (ClipColour(pix_fmt="yuv420p10le"), (320, 240)),
    "BT.601-tagged 720p": (ClipColour(**BT601), (1280, 720)),
    # A DV/DVD-style camcorder clip: 720x480 would do, a smaller one keeps it quick.
    "anamorphic 40:33 interlaced": (
        ClipColour(**BT601, sample_aspect_ratio=Fraction(40, 33), interlaced=True),
        (352, 240),
    ),
    # An iPhone-style HDR clip: HEVC Main 10, BT.2020, HLG.
    "HLG 10-bit HEVC": (
        ClipColour(pix_fmt="yuv420p10le", matrix=9, primaries=9, transfer=18, codec="libx265"),
        (320, 240),
    ),
    # A camera's HLG master: 4:2:2 10-bit HEVC (written as 4:2:0: subsampled in YCbCr, no RGB).
    "HLG 10-bit 4:2:2 HEVC": (
        ClipColour(pix_fmt="yuv422p10le", matrix=9, primaries=9, transfer=18, codec="libx265"),
        (320, 240),
    ),
    # An HDR10 clip: HEVC Main 10, BT.2020, PQ, with its mastering display and light levels.
    "PQ 10-bit HEVC HDR10": (
        ClipColour(pix_fmt="yuv420p10le", matrix=9, primaries=9, transfer=16, codec="libx265", hdr10=True),
        (320, 240),
    ),
}
ENCODER_OPTIONS = {"libx264": {"crf": "12"}, "libx265": {"crf": "12", "x265-params": "log-level=error"}}


def make_colour_clip(path: Path, colour: ClipColour, width: int, height: int, frames: int = 4) -> Path:
    """The sample scene (a red car on a road) in `colour`, converted by swscale (not by the code
    under test) and tagged in the stream. Skips the test when PyAV's FFmpeg lacks the encoder."""
    if colour.codec not in av.codecs_available:
        pytest.skip(f"PyAV's FFmpeg has no {colour.codec}: no such source can be made here")
    background = _background(width, height)
    with av.open(str(path), "w") as out:
        options = dict(ENCODER_OPTIONS[colour.codec])
        if colour.interlaced:
            options["flags"] = "+ildct+ilme"
        if colour.hdr10:
            options["x265-params"] += f":{HDR10_SIDE_DATA}"
        video = out.add_stream(colour.codec, rate=24, options=options)
        if colour.mirrored:
            video.set_display_rotation(0, hflip=True)
        video.width, video.height, video.pix_fmt = width, height, colour.pix_fmt
        colour.tag(video.codec_context)
        video.codec_context.sample_aspect_ratio = colour.sample_aspect_ratio
        for i in range(frames):
            rgb = av.VideoFrame.from_ndarray(_draw_car(background.copy(), i, frames), format="rgb24")
            frame = rgb.reformat(
                format=colour.pix_fmt,
                dst_colorspace=colour.matrix,
                dst_color_range=video.codec_context.color_range,
                interpolation="BICUBIC",
            )
            colour.tag(frame)
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


@dataclass(frozen=True)
class Played:
    frames: list[np.ndarray]  # RGB uint8, as a tag-honouring player converts them
    pix_fmt: str
    tags: tuple[int, int, int, int]  # matrix, range, primaries, transfer
    sample_aspect_ratio: Fraction
    interlaced: bool  # any frame


def play(path: Path) -> Played:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        decoded = list(container.decode(stream))
        frames = [
            f.reformat(
                format="rgb24",
                src_colorspace=f.colorspace,
                src_color_range=f.color_range,
                interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND,
            ).to_ndarray()
            for f in decoded
        ]
        tags = (context.colorspace, context.color_range, context.color_primaries, context.color_trc)
        sar = Fraction(context.sample_aspect_ratio or 1)
        return Played(frames, context.pix_fmt, tags, sar, any(f.interlaced_frame for f in decoded))
