"""A small synthetic clip for the demo and the tests: a red "car" driving over
a textured road, with a stereo AAC tone as its audio track."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# suffix -> (container format, video codec, audio codec): what such files usually hold.
CONTAINERS = {
    ".mp4": ("mp4", "libx264", "aac"),
    ".mov": ("mov", "libx264", "aac"),
    ".mkv": ("matroska", "libx264", "libopus"),
    ".webm": ("webm", "libvpx-vp9", "libopus"),
    ".avi": ("avi", "mpeg4", "libmp3lame"),
}


def make_sample_clip(
    path: Path,
    frames: int = 48,
    width: int = 320,
    height: int = 240,
    fps: Fraction | int = 24,
    audio: bool = True,
    rotation: int = 0,
    pan: int = 0,
) -> Path:
    """Write a clip to `path` (container and codecs from its suffix, see CONTAINERS; H.264 + AAC
    in mp4 by default) and return it. `rotation` (degrees counterclockwise) goes into the display
    matrix, as phones write it. `pan`: the camera pans this many pixels per frame, so the whole
    (textured) picture moves, as in footage. Odd sizes are written in yuv444p (not by mpeg4/avi)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container, video_codec, audio_codec = CONTAINERS[path.suffix.lower()]
    rate = Fraction(fps)
    background = _background(width, height)
    with av.open(str(path), "w", format=container) as out:
        options = {"crf": "18"} if video_codec == "libx264" else {}
        video = out.add_stream(video_codec, rate=rate, options=options)
        odd = width % 2 or height % 2
        # 4:2:0 needs even sides; x264 and VP9 take odd sizes in 4:4:4 (as some cameras' files do).
        video.width, video.height, video.pix_fmt = width, height, "yuv444p" if odd else "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        tone = out.add_stream(audio_codec, rate=48000, layout="stereo") if audio else None
        for i in range(frames):
            scene = np.roll(background, -pan * i, axis=1) if pan else background.copy()
            frame = av.VideoFrame.from_ndarray(_draw_car(scene, i, frames), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if tone is not None:
            _write_tone(out, tone, seconds=float(frames / rate))
    return path


def _background(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    y = np.linspace(0, 1, height)[:, None, None]
    sky = np.array([110, 160, 220]) * (1 - y) + np.array([90, 90, 95]) * y
    noise = rng.normal(0, 6, (height, width, 1))
    img = np.clip(np.broadcast_to(sky, (height, width, 3)) + noise, 0, 255).astype(np.uint8)
    cv2.rectangle(img, (0, int(height * 0.65)), (width, height), (70, 70, 75), -1)  # road
    for x in range(0, width, 40):
        cv2.line(img, (x, int(height * 0.82)), (x + 20, int(height * 0.82)), (230, 230, 230), 2)
    return img


def _draw_car(img: np.ndarray, i: int, n: int) -> np.ndarray:
    h, w = img.shape[:2]
    car_w, car_h = w // 4, h // 8
    x = int((w - car_w) * i / max(n - 1, 1))
    y = int(h * 0.62)
    cv2.rectangle(img, (x, y), (x + car_w, y + car_h), (200, 30, 30), -1)  # body
    cv2.rectangle(img, (x + car_w // 4, y - car_h // 2), (x + 3 * car_w // 4, y), (170, 25, 25), -1)  # cabin
    for wx in (x + car_w // 5, x + 4 * car_w // 5):
        cv2.circle(img, (wx, y + car_h), car_h // 3, (20, 20, 20), -1)  # wheels
    return img


def _write_tone(out: av.container.OutputContainer, stream, seconds: float) -> None:
    rate = 48000
    total = int(rate * seconds)
    t = np.arange(total) / rate
    wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    # The resampler hands each encoder its own sample format and frame size (AAC 1024, Opus 960).
    resampler = av.AudioResampler(
        format=stream.codec_context.format.name,
        layout="stereo",
        rate=rate,
        frame_size=stream.codec_context.frame_size or None,
    )
    for start in range(0, total, 1024):
        chunk = wave[start : start + 1024]
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        for resampled in resampler.resample(frame):
            out.mux(stream.encode(resampled))
    for resampled in resampler.resample(None):
        out.mux(stream.encode(resampled))
    out.mux(stream.encode(None))
