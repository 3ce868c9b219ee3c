"""Small clips shaped like real uploads, made with PyAV at test time: variable frame rate, video
that starts after its audio, camcorder M2TS with a start time, two audio tracks, Opus audio.

Each has a textured picture with a red square (the object the fake and tiny models find) and
silent-but-real audio, and `times(path)` reads back what a player goes by: the frames'
presentation times and each audio track's span, in seconds on the file's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

WIDTH, HEIGHT = 96, 64
TIME_BASE = Fraction(1, 90000)


@dataclass(frozen=True)
class Shape:
    """How a clip is made: its container, frame intervals, where video and audio start."""

    suffix: str
    container: str
    intervals: tuple[float, ...]  # seconds between frames
    video_start: float = 0.0
    audio_start: float = 0.0
    audio_codec: str = "aac"
    audio_tracks: int = 1


def vfr(suffix: str, container: str) -> Shape:
    """A phone in low light: 30 fps, then 15."""
    return Shape(suffix, container, (1 / 30,) * 20 + (1 / 15,) * 16)


CORPUS = {
    "vfr-mp4": vfr(".mp4", "mp4"),
    "vfr-mkv": vfr(".mkv", "matroska"),
    "late-video": Shape(".mp4", "mp4", (1 / 30,) * 30, video_start=0.48),
    "m2ts-1.4s": Shape(".m2ts", "mpegts", (1 / 25,) * 30, video_start=1.4, audio_start=1.4, audio_codec="mp2"),
    "m2ts-10s": Shape(".m2ts", "mpegts", (1 / 25,) * 30, video_start=10.0, audio_start=10.0, audio_codec="mp2"),
    "two-audio": Shape(".mp4", "mp4", (1 / 30,) * 30, audio_tracks=2),
    "opus": Shape(".mkv", "matroska", (1 / 30,) * 30, audio_codec="libopus"),
}


def make(path: Path, shape: Shape) -> Path:
    path = path.with_suffix(shape.suffix)
    rng = np.random.default_rng(3)
    background = rng.integers(60, 110, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    with av.open(str(path), "w", format=shape.container) as out:
        video = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "bf": "0"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.codec_context.time_base = TIME_BASE
        audio = []
        for _ in range(shape.audio_tracks):
            stream = out.add_stream(shape.audio_codec, rate=48000)
            stream.layout = "stereo"
            audio.append(stream)
        when = shape.video_start
        for i, interval in enumerate((0.0, *shape.intervals)):
            when += interval
            image = background.copy()
            image[20:44, 10 + i : 34 + i] = (210, 30, 40)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(when / TIME_BASE), TIME_BASE
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        end = when + shape.intervals[-1]
        for stream in audio:
            _write_audio(out, stream, shape.audio_start, end + 0.3)
    return path


def _write_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, start: float, end: float):
    samples = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format.name
    tone = 0.1 * np.sin(np.arange(samples) / 8)
    tone = (tone * 32767).astype(np.int16) if fmt.startswith("s16") else tone.astype(np.float32)
    data = np.stack([tone, tone])
    data = data if fmt.endswith("p") else data.T.reshape(1, -1)  # planar, or channels interleaved
    when = start
    while when < end:
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
        frame.sample_rate, frame.time_base = 48000, Fraction(1, 48000)
        frame.pts = round(when * 48000)
        out.mux(stream.encode(frame))
        when += samples / 48000
    out.mux(stream.encode(None))


@dataclass(frozen=True)
class Times:
    """What a player goes by, seconds on the file's clock."""

    frames: list[float]  # each frame's presentation time
    audio: list[tuple[float, float]]  # each audio track's (start, end)
    subtitles: int


def times(path: Path) -> Times:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = [float(f.pts * video.time_base) for f in container.decode(video)]
    audio = []
    with av.open(str(path)) as container:
        spans: dict[int, list[float]] = {}
        for packet in container.demux(*container.streams.audio):
            if packet.pts is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            span = spans.setdefault(packet.stream.index, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
        audio = [tuple(spans[s.index]) for s in container.streams.audio if s.index in spans]
        subtitles = len(container.streams.subtitles)
    return Times(frames, audio, subtitles)
