"""The source's colour (matrix, range, primaries, transfer, bit depth) and exact RGB conversions
for it, so the models see the picture a tag-honouring player shows and the output plays the same.

Codes are FFmpeg's (AVColorSpace, AVColorRange, AVColorPrimaries, AVColorTransferCharacteristic),
which PyAV's frames and codec contexts read and write as ints. Untagged sources get what players
assume: BT.709 for HD (width >= 1280 or height >= 720), BT.601 for SD, limited range.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import cv2
import numpy as np

from .tonemap import HLG, PQ, ToneMap

UNSPECIFIED = 2  # the "unspecified" code of matrix, primaries and transfer alike
LIMITED, FULL = 1, 2  # AVColorRange: MPEG 16-235 and JPEG 0-255
BT709, BT470BG, SMPTE170M, BT2020_NCL = 1, 5, 6, 9  # AVColorSpace

# Luma weights (Kr, Kb) of each matrix code; BT.470BG and SMPTE 170M are both BT.601.
_WEIGHTS = {BT709: (0.2126, 0.0722), BT470BG: (0.299, 0.114), SMPTE170M: (0.299, 0.114), BT2020_NCL: (0.2627, 0.0593)}
# The primaries and transfer that go with a matrix when only the matrix is known (the same codes).
_SDR_PRIMARIES = {BT709: 1, BT470BG: 5, SMPTE170M: 6, BT2020_NCL: 9}
_SDR_TRANSFER = {BT709: 1, BT470BG: 6, SMPTE170M: 6, BT2020_NCL: 14}
_SWSCALE_MATRIX = {_WEIGHTS[BT709]: 1, _WEIGHTS[SMPTE170M]: 5, _WEIGHTS[BT2020_NCL]: 9}  # reformat's Colorspace
_NAMES = {BT709: "BT.709", BT470BG: "BT.601", SMPTE170M: "BT.601", BT2020_NCL: "BT.2020"}


@dataclass(frozen=True)
class Colour:
    matrix: int  # AVColorSpace code, resolved (never unspecified)
    full_range: bool
    primaries: int  # AVColorPrimaries code, resolved
    transfer: int  # AVColorTransferCharacteristic code, resolved
    bit_depth: int  # 8 or 10: the output's depth

    @classmethod
    def of_frame(cls, frame: av.VideoFrame) -> Colour:
        """The colour of a decoded frame, its gaps filled as players fill them."""
        matrix = frame.colorspace if frame.colorspace in _WEIGHTS else cls.default_matrix(frame.width, frame.height)
        depth = 10 if frame.format.components[0].bits > 8 else 8
        return cls(
            matrix=matrix,
            full_range=frame.color_range == FULL or frame.format.name.startswith("yuvj"),
            primaries=frame.color_primaries if frame.color_primaries != UNSPECIFIED else _SDR_PRIMARIES[matrix],
            transfer=frame.color_trc if frame.color_trc != UNSPECIFIED else _SDR_TRANSFER[matrix],
            bit_depth=depth,
        )

    @classmethod
    def sdr(cls, width: int, height: int) -> Colour:
        """Plain limited-range 8-bit video of that size (the mask video, untagged sources)."""
        matrix = cls.default_matrix(width, height)
        return cls(matrix, False, _SDR_PRIMARIES[matrix], _SDR_TRANSFER[matrix], 8)

    @staticmethod
    def default_matrix(width: int, height: int) -> int:
        return BT709 if width >= 1280 or height >= 720 else SMPTE170M

    @property
    def pix_fmt(self) -> str:
        return "yuv420p10le" if self.bit_depth > 8 else "yuv420p"

    @property
    def hdr(self) -> str:
        return {PQ: "pq", HLG: "hlg"}.get(self.transfer, "")

    def describe(self) -> str:
        """E.g. "BT.709 full-range 8-bit" or "BT.2020 HLG 10-bit"."""
        parts = [
            _NAMES[self.matrix],
            self.hdr.upper(),
            "full-range" if self.full_range else "",
            f"{self.bit_depth}-bit",
        ]
        return " ".join(p for p in parts if p)

    def tag(self, target: av.VideoFrame | av.codec.context.CodecContext) -> None:
        """Write these colour tags on a frame or an encoder (x264 puts them in the stream's VUI)."""
        target.colorspace = self.matrix
        target.color_range = FULL if self.full_range else LIMITED
        target.color_primaries = self.primaries
        target.color_trc = self.transfer

    @property
    def tone_map(self) -> ToneMap | None:
        """HDR's map to the SDR the models see and back (media.tonemap); None for SDR."""
        return ToneMap.of(self.transfer) if self.hdr else None

    def to_rgb(self, planes: np.ndarray) -> np.ndarray:
        """Stacked even-sized 4:2:0 planes (PyAV's yuv420p / yuv420p10le ndarray: H*3/2 x W) as RGB
        uint8 HxWx3 (HDR tone-mapped to BT.709 SDR). Chroma is repeated over its 2x2 block, as
        OpenCV's and most players' do."""
        if self.tone_map is not None:
            return self.tone_map.to_sdr(self._signal(planes))
        if planes.dtype == np.uint8 and not self.full_range and _WEIGHTS[self.matrix] == _WEIGHTS[SMPTE170M]:
            return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)  # the same maths, 3x cheaper
        rgb = cv2.transform(_yuv444(planes), self._yuv_to_rgb())  # rounds, and clips below 0
        return rgb if rgb.dtype == np.uint8 else np.minimum(rgb, 255).astype(np.uint8)

    def _signal(self, planes: np.ndarray) -> np.ndarray:
        """The non-linear RGB signal of 4:2:0 planes, float32 HxWx3 0..1, at the samples' precision."""
        return cv2.transform(_yuv444(planes).astype(np.float32), (self._yuv_to_rgb() / 255).astype(np.float32))

    def swscale_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """Any other layout (4:2:2, 4:4:4, odd sizes) as RGB uint8 by swscale, told this matrix and
        range (its default would be BT.601 limited whatever the frame is); HDR tone-mapped from
        16-bit RGB."""
        sws_matrix = _SWSCALE_MATRIX[_WEIGHTS[self.matrix]]
        sws_range = FULL if self.full_range else LIMITED
        if self.tone_map is not None:
            rgb48 = frame.reformat(format="rgb48le", src_colorspace=sws_matrix, src_color_range=sws_range)
            return self.tone_map.to_sdr(rgb48.to_ndarray().astype(np.float32) / 65535)
        return frame.reformat(format="rgb24", src_colorspace=sws_matrix, src_color_range=sws_range).to_ndarray()

    def subsampled(self, frame: av.VideoFrame) -> np.ndarray:
        """An even-sized frame of another YCbCr layout (4:2:2, 4:4:4) as this colour's 4:2:0 planes
        (stacked), by swscale told this matrix and range on both sides: chroma is subsampled, no
        sample converted."""
        sws_matrix = _SWSCALE_MATRIX[_WEIGHTS[self.matrix]]
        sws_range = FULL if self.full_range else LIMITED
        return frame.reformat(
            format=self.pix_fmt,
            src_colorspace=sws_matrix,
            dst_colorspace=sws_matrix,
            src_color_range=sws_range,
            dst_color_range=sws_range,
        ).to_ndarray()

    def from_rgb(self, image: np.ndarray) -> av.VideoFrame:
        """An even-sized RGB uint8 image as the encoder's tagged 4:2:0 frame of this colour (see
        samples)."""
        return self.frame(self.samples(image))

    def frame(self, samples: np.ndarray) -> av.VideoFrame:
        """Stacked 4:2:0 planes of this colour (H*3/2 x W) as the encoder's tagged frame."""
        frame = av.VideoFrame.from_ndarray(samples, format=self.pix_fmt)
        self.tag(frame)
        return frame

    def samples(self, image: np.ndarray) -> np.ndarray:
        """An even-sized RGB uint8 image (HDR: the SDR the models see, mapped back into the source's
        signal) as stacked 4:2:0 planes of this colour: luma per pixel, chroma from each 2x2
        block's mean; the inverse of to_rgb to rounding."""
        height, width = image.shape[:2]
        if self.tone_map is not None:
            image = self.tone_map.to_signal(image) * np.float32(255)  # the signal, unrounded
        elif self.bit_depth > 8:
            image = image.astype(np.uint16)  # cv2.transform writes the input's depth
        matrix = self._rgb_to_yuv()
        luma = cv2.transform(image, matrix[:1])
        chroma = cv2.transform(cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA), matrix[1:])
        stacked = np.concatenate([luma.ravel(), chroma[..., 0].ravel(), chroma[..., 1].ravel()])
        if stacked.dtype == np.float32:
            stacked = np.clip(np.rint(stacked), 0, (1 << self.bit_depth) - 1)
        return stacked.astype(np.uint16 if self.bit_depth > 8 else np.uint8).reshape(height * 3 // 2, width)

    def _levels(self) -> tuple[float, float, float, float]:
        """(luma offset, luma scale, chroma offset, chroma scale) of this range and depth."""
        if self.full_range:
            top = (1 << self.bit_depth) - 1
            return 0.0, top, float(1 << (self.bit_depth - 1)), top
        step = 1 << (self.bit_depth - 8)
        return 16.0 * step, 219.0 * step, 128.0 * step, 224.0 * step

    def _rgb_to_yuv(self) -> np.ndarray:
        """3x4 affine: RGB 0-255 -> Y, U, V samples."""
        kr, kb = _WEIGHTS[self.matrix]
        kg = 1 - kr - kb
        luma = np.array([kr, kg, kb])
        to_ypbpr = np.array([luma, ([0, 0, 1] - luma) / (2 * (1 - kb)), ([1, 0, 0] - luma) / (2 * (1 - kr))]) / 255
        y0, ys, c0, cs = self._levels()
        return np.hstack([np.diag([ys, cs, cs]) @ to_ypbpr, [[y0], [c0], [c0]]])

    def _yuv_to_rgb(self) -> np.ndarray:
        """3x4 affine: Y, U, V samples -> RGB 0-255 (the exact inverse of _rgb_to_yuv)."""
        forward = self._rgb_to_yuv()
        inverse = np.linalg.inv(forward[:, :3])
        return np.hstack([inverse, -inverse @ forward[:, 3:]])


def _yuv444(planes: np.ndarray) -> np.ndarray:
    """Stacked 4:2:0 planes as HxWx3 Y, U, V, chroma repeated over its 2x2 block."""
    height, width = planes.shape[0] * 2 // 3, planes.shape[1]
    u, v = (c.reshape(height // 2, width // 2) for c in np.split(planes[height:].ravel(), 2))
    full = (cv2.resize(c, (width, height), interpolation=cv2.INTER_NEAREST) for c in (u, v))
    return cv2.merge([planes[:height], *full])
