"""probe_video: videos pass with their size; anything else is NotAVideo saying what FFmpeg found."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from clients.sample_clip import make_sample_clip
from orchestrator.media.probe import NotAVideo, probe_video


def _write(path, codec: str, pix_fmt: str, frames: int = 3) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(5))
        stream.width, stream.height, stream.pix_fmt = 32, 24, pix_fmt
        for i in range(frames):
            rgb = np.full((24, 32, 3), 50 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)))
        out.mux(stream.encode(None))


def test_videos_pass_with_their_codec_and_size(tmp_path):
    mp4 = probe_video(make_sample_clip(tmp_path / "clip.mp4", frames=2, width=64, height=48))
    assert (mp4.codec, mp4.width, mp4.height) == ("h264", 64, 48) and "mp4" in mp4.container
    _write(tmp_path / "anim.gif", "gif", "rgb8")
    _write(tmp_path / "raw.y4m", "rawvideo", "yuv420p")  # yuv4mpegpipe: a *_pipe demuxer that is video
    assert probe_video(tmp_path / "anim.gif").codec == "gif"
    assert probe_video(tmp_path / "raw.y4m").width == 32


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("empty.mp4", b"", "not a media file FFmpeg can read"),
        ("page.html", b"<html><script>alert(1)</script></html>", "not a media file FFmpeg can read"),
        ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "svg_pipe"),
        ("art.ans", b"\x1b[31mred\x1b[0m\n", "a still image or text (tty)"),
    ],
)
def test_other_files_are_not_videos(tmp_path, name, content, says):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(NotAVideo, match=says.replace("(", r"\(").replace(")", r"\)")):
        probe_video(tmp_path / name)


def test_a_still_image_or_audio_alone_is_not_a_video(tmp_path):
    cv2.imwrite(str(tmp_path / "still.png"), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(NotAVideo, match="still image"):
        probe_video(tmp_path / "still.png")
    with av.open(str(tmp_path / "sound.wav"), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
    with pytest.raises(NotAVideo, match=r"no video stream \(streams: audio\)"):
        probe_video(tmp_path / "sound.wav")


def test_a_video_says_how_long_it_runs_and_how_much_of_it_max_frames_processes(tmp_path):
    probe = probe_video(make_sample_clip(tmp_path / "ten.mp4", frames=10, width=64, height=48, fps=5))  # 2 s
    assert probe.fps == 5.0 and probe.seconds == pytest.approx(2.0, abs=0.25)
    assert probe.processed_seconds(None) == probe.seconds
    assert probe.processed_seconds(5) == pytest.approx(1.0)  # max_frames / fps
    assert probe.processed_seconds(1000) == probe.seconds  # never more than the video
