"""An HDR source's mastering-display and content-light-level side data, read from its first
decoded frame and written into the output by x264 (SEI messages), so players and TVs map its
highlights as the source asked.

PyAV 18.1 hands frame side data as the raw FFmpeg structs (AVMasteringDisplayMetadata: ten
AVRationals, then has_primaries and has_luminance; AVContentLightMetadata: MaxCLL, MaxFALL),
and cannot set an encoder's side data; x264 takes both as options (`mastering-display`, `cll`
in x264-params), in the SEI's units: chromaticity in 1/50000, luminance in 1/10000 cd/m2. HEVC
and H.264 decoders attach them to key frames, so the first frame has them when the source does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import av
from av.sidedata.sidedata import Type

_MASTERING = struct.Struct("=20i2i")  # 10 AVRationals (num, den), has_primaries, has_luminance
_LIGHT = struct.Struct("=2I")


@dataclass(frozen=True)
class HdrSideData:
    # Mastering display, None when absent: (x, y) chromaticities of R, G, B and the white point,
    # in 1/50000; its luminance range (max, min) in 1/10000 cd/m2.
    primaries: tuple[tuple[int, int], ...] | None = None
    white: tuple[int, int] | None = None
    luminance: tuple[int, int] | None = None
    light_level: tuple[int, int] | None = None  # MaxCLL, MaxFALL, cd/m2

    @classmethod
    def of_frame(cls, frame: av.VideoFrame) -> HdrSideData | None:
        """The frame's mastering-display and content-light-level side data (None: neither)."""
        primaries = white = luminance = light = None
        mastering = frame.side_data.get(Type.MASTERING_DISPLAY_METADATA)
        if mastering is not None:
            *rationals, has_primaries, has_luminance = _MASTERING.unpack(bytes(mastering)[: _MASTERING.size])
            values = [n / d if d else 0.0 for n, d in zip(rationals[::2], rationals[1::2], strict=True)]
            if has_primaries:
                chroma = [round(v * 50000) for v in values[:8]]
                primaries = tuple((chroma[i], chroma[i + 1]) for i in range(0, 6, 2))
                white = (chroma[6], chroma[7])
            if has_luminance:
                luminance = (round(values[9] * 10000), round(values[8] * 10000))
        content = frame.side_data.get(Type.CONTENT_LIGHT_LEVEL)
        if content is not None:
            light = _LIGHT.unpack(bytes(content)[: _LIGHT.size])
        found = cls(primaries, white, luminance, light)
        return found if found != cls() else None

    def x264_params(self) -> str:
        """x264's options for the same SEI (`mastering-display` needs both primaries and luminance)."""
        params = []
        if self.primaries and self.white and self.luminance:
            (rx, ry), (gx, gy), (bx, by) = self.primaries
            params.append(
                f"mastering-display=G({gx},{gy})B({bx},{by})R({rx},{ry})"
                f"WP({self.white[0]},{self.white[1]})L({self.luminance[0]},{self.luminance[1]})"
            )
        if self.light_level:
            params.append(f"cll={self.light_level[0]},{self.light_level[1]}")
        return ":".join(params)

    def describe(self) -> str:
        """E.g. "mastering display 1000/0.0001 cd/m2, MaxCLL 1000 MaxFALL 400"."""
        parts = []
        if self.luminance:
            parts.append(f"mastering display {self.luminance[0] / 10000:g}/{self.luminance[1] / 10000:g} cd/m2")
        elif self.primaries:
            parts.append("mastering display primaries")
        if self.light_level:
            parts.append(f"MaxCLL {self.light_level[0]} MaxFALL {self.light_level[1]}")
        return ", ".join(parts)
