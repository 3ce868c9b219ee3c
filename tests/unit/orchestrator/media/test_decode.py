"""Decoding every common container: size, fps, audio, frame count, max_frames and start."""

from __future__ import annotations

import av
import numpy as np
import pytest

from clients.sample_clip import make_sample_clip
from orchestrator.media.decode import probe, read_frames


@pytest.mark.parametrize(
    "suffix, size",
    [(".mp4", (160, 120)), (".mov", (161, 121)), (".mkv", (161, 121)), (".webm", (161, 121)), (".avi", (160, 120))],
)
def test_every_common_container_decodes_with_its_size_fps_audio_and_frames(tmp_path, suffix, size):
    clip = make_sample_clip(tmp_path / f"clip{suffix}", frames=10, width=size[0], height=size[1], fps=25)
    info = probe(clip, None)
    assert (info.width, info.height, info.fps, info.frame_count, info.has_audio) == (*size, 25, 10, True)
    frames = [f for _, f in read_frames(info)]
    assert len(frames) == 10 and frames[0].shape == (size[1], size[0], 3)
    assert probe(clip, 4).frame_count == 4  # max_frames
    assert [i for i, _ in read_frames(probe(clip, 4), start=2)] == [2, 3]


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("hflip, vflip", [(False, False), (True, False), (False, True)])
def test_frames_are_served_as_the_display_matrix_shows_them_rotated_and_mirrored(tmp_path, rotation, hflip, vflip):
    """Any of the eight orientations a display matrix gives (a rotation, then a mirror: PyAV's
    set_display_rotation, FFmpeg's av_display_matrix_flip) is served upright and unmirrored."""
    stored = np.zeros((32, 48, 3), np.uint8)
    stored[:, :, :] = (40, 40, 40)
    stored[2:10, 2:14] = (230, 230, 230)  # a marker in the top left corner, wider than tall
    clip = tmp_path / "oriented.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=24, options={"qp": "0"})
        video.width, video.height, video.pix_fmt = 48, 32, "yuv444p"
        video.set_display_rotation(rotation, hflip=hflip, vflip=vflip)
        frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
        frame.pts = 0
        out.mux(video.encode(frame))
        out.mux(video.encode(None))
    shown = np.rot90(stored, rotation // 90)
    shown = shown[:, ::-1] if hflip else shown[::-1] if vflip else shown
    info = probe(clip, None)
    assert info.mirrored == (hflip or vflip)
    assert (info.width, info.height) == shown.shape[1::-1]
    [(_, upright)] = list(read_frames(info))
    assert np.abs(upright.astype(int) - shown).max() <= 3
