"""What an input video holds, in words and fields: the job's log, status.json, GetStatus and the
HTTP API carry it (VideoEditStatus.media), so a UI can warn before a long job."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .colour import Colour
from .decode import VideoInfo

# FFmpeg's names (ffprobe's color_space / color_primaries / color_transfer) of the common codes.
_MATRIX = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 12: "smpte432"}
_TRANSFER = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 13: "iec61966-2-1", 14: "bt2020-10"}
_TRANSFER |= {15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}


@dataclass(frozen=True)
class MediaSummary:
    width: int
    height: int
    fps: float
    bit_depth: int
    color_range: str  # "limited" or "full"
    matrix: str
    primaries: str
    transfer: str
    hdr: str  # "", "pq" or "hlg"
    sample_aspect_ratio: str  # "40:33"; "1:1" for square pixels
    interlaced: bool
    variable_frame_rate: bool
    audio_tracks: int
    summary: str

    @classmethod
    def of(cls, info: VideoInfo) -> MediaSummary:
        colour = info.output_colour
        sar = info.sample_aspect_ratio
        return cls(
            width=info.width,
            height=info.height,
            fps=round(float(info.fps), 3),
            bit_depth=colour.bit_depth,
            color_range="full" if colour.full_range else "limited",
            matrix=_name(_MATRIX, colour.matrix),
            primaries=_name(_PRIMARIES, colour.primaries),
            transfer=_name(_TRANSFER, colour.transfer),
            hdr=colour.hdr,
            sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}",
            interlaced=info.interlaced,
            variable_frame_rate=info.frame_times().variable(),
            audio_tracks=info.audio_tracks,
            summary=describe(info, colour),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def describe(info: VideoInfo, colour: Colour) -> str:
    """E.g. "1280x720 BT.709 HLG 10-bit, 29.97 fps, anamorphic 40:33, interlaced"."""
    parts = [f"{info.width}x{info.height} {colour.describe()}", f"{float(info.fps):.4g} fps"]
    if info.sample_aspect_ratio != 1:
        parts.append(f"anamorphic {info.sample_aspect_ratio.numerator}:{info.sample_aspect_ratio.denominator}")
    if info.interlaced:
        parts.append("interlaced")
    return ", ".join(parts)


def colour_note(info: VideoInfo) -> str:
    """What the job does with a 10-bit or HDR source, for the log and the final status ("" for
    8-bit SDR, written as it came)."""
    colour = info.output_colour
    if colour.tone_map is not None:
        return (
            f"{colour.hdr.upper()} {colour.bit_depth}-bit source: edited in SDR (tone-mapped: "
            f"{colour.tone_map.describe()}; edits mapped back), written as {colour.describe()}"
        )
    if colour.bit_depth > 8:
        return f"{colour.bit_depth}-bit source: the models see 8-bit RGB, written as {colour.describe()} (High 10)"
    return ""


def plan(info: VideoInfo) -> str:
    """What the job does with the source's colour, depth and geometry, for the log."""
    notes = [colour_note(info) or f"written as {info.output_colour.describe()}"]
    if info.hdr_side_data is not None:
        notes.append(f"HDR side data kept: {info.hdr_side_data.describe()}")
    elif info.output_colour.hdr:
        notes.append("no mastering-display or content-light-level side data in the source")
    if info.sample_aspect_ratio != 1:
        notes.append(
            "the models see square pixels (resampled by the sample aspect ratio); the output keeps "
            "the stored size and the sample aspect ratio"
        )
    if info.mirrored:
        notes.append("mirrored by its display matrix: served unmirrored, like a rotation")
    if info.interlaced:
        notes.append(f"interlaced: deinterlaced by bwdif, one frame per frame, written progressive at {info.fps} fps")
    return "; ".join(notes)


def _name(names: dict[int, str], code: int) -> str:
    return names.get(code, f"code {code}")
