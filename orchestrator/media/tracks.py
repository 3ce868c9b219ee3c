"""The source's other tracks in the output: every audio track, subtitles where mp4 can carry them,
the container's metadata; all kept in place against the picture.

Times: the output's picture starts at 0 where the source's first frame was (`video_start`, on
the container's clock, which is the audio's too); every other track moves by the same amount, so
audio that started before the picture, after it, or with a start time other than 0 (camcorder
M2TS, mp4 edit lists) keeps its offset to the first frame. What lies before the first frame or
after the last one is cut (whole packets: at most one audio frame, ~21 ms of AAC, from the ends).

Codecs: audio mp4 carries as it is is copied; other audio (Opus, FLAC, PCM, MP2 in M2TS...) is
re-encoded to AAC with its channel layout (FFmpeg's encoder delay goes into the mp4's edit list).
mov_text subtitles are copied; other subtitle codecs and data tracks are dropped, said in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction

import av

log = logging.getLogger(__name__)

# Audio codecs copied into the mp4 as they are. The muxer also takes Opus and FLAC, but many
# players (Safari, QuickTime, older TVs) do not play them from an mp4, so those become AAC.
MP4_AUDIO_CODECS = {"aac", "mp3", "ac3", "eac3", "alac"}
MP4_SUBTITLE_CODECS = {"mov_text"}
# Container metadata that describes the file as written, not the recording: not carried over.
_WRITER_KEYS = {"major_brand", "minor_version", "compatible_brands", "encoder", "handler_name", "vendor_id"}


@dataclass
class _Track:
    """One source track in the output: copied packet by packet, or (audio) re-encoded."""

    source: av.stream.Stream
    stream: av.stream.Stream
    copy: bool
    written: int = 0


@dataclass
class Carried:
    """The source's tracks and metadata as the output carries them (`carry`), muxed by `write`
    once the picture is written."""

    out: av.container.OutputContainer
    tracks: list[_Track] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was done per track, for the job log

    def write(self, src: av.container.InputContainer, video_start: Fraction, video_end: Fraction) -> None:
        """Mux every carried track's packets from `video_start` to `video_end` (seconds, source
        clock), moved so the picture starts at 0."""
        if not self.tracks:
            return
        by_index = {t.source.index: t for t in self.tracks}
        for packet in src.demux(*(t.source for t in self.tracks)):
            track = by_index[packet.stream.index]
            if packet.dts is None or packet.pts is None:  # the demuxer's end-of-stream marker
                continue
            when = packet.pts * packet.time_base
            if when < video_start or when >= video_end:
                continue
            if track.copy:
                _move(packet, video_start)
                packet.stream = track.stream
                self.out.mux(packet)
                track.written += 1
                continue
            for frame in track.source.decode(packet):
                if frame.pts is None:
                    continue
                frame.pts = round((frame.pts * frame.time_base - video_start) * frame.sample_rate)
                frame.time_base = Fraction(1, frame.sample_rate)
                self.out.mux(track.stream.encode(frame))
                track.written += 1
        for track in self.tracks:
            if not track.copy:
                self.out.mux(track.stream.encode(None))
            if track.written == 0:
                self.notes.append(f"{_name(track.source)}: nothing within the picture's time span")


def carry(out: av.container.OutputContainer, src: av.container.InputContainer) -> Carried:
    """Add the output streams for the source's audio and subtitle tracks and copy its metadata
    (before the first packet is muxed: every stream must exist by then)."""
    carried = Carried(out)
    out.metadata.update({k: v for k, v in src.metadata.items() if k not in _WRITER_KEYS})
    for source in src.streams:
        if source.type == "video":
            continue
        if source.type == "audio":
            carried.tracks.append(_audio_track(out, source, carried.notes))
        elif source.type == "subtitle" and source.codec_context.name in MP4_SUBTITLE_CODECS:
            carried.tracks.append(_Track(source, out.add_stream_from_template(source), copy=True))
            carried.notes.append(f"{_name(source)}: copied")
        else:
            what = source.codec_context.name if source.codec_context else "data"
            carried.notes.append(f"{_name(source)} ({source.type}, {what}): dropped, mp4 cannot carry it")
            continue
        language = source.metadata.get("language")
        if language:
            carried.tracks[-1].stream.metadata["language"] = language
    return carried


def _audio_track(out: av.container.OutputContainer, source: av.stream.Stream, notes: list[str]) -> _Track:
    codec = source.codec_context
    if codec.name in MP4_AUDIO_CODECS:
        notes.append(f"{_name(source)}: {codec.name} copied")
        return _Track(source, out.add_stream_from_template(source), copy=True)
    stream = out.add_stream("aac", rate=codec.sample_rate or 48000)
    stream.layout = codec.layout
    notes.append(f"{_name(source)}: {codec.name} re-encoded to AAC, {codec.layout.name} (not all mp4 players play it)")
    return _Track(source, stream, copy=False)


def _move(packet: av.Packet, video_start: Fraction) -> None:
    """Shift a copied packet so the picture's start is 0."""
    shift = round(video_start / packet.time_base)
    packet.pts -= shift
    packet.dts -= shift


def _name(stream: av.stream.Stream) -> str:
    return f"track {stream.index}"
