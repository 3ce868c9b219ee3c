"""Decoding every common container: size, fps, audio, frame count, max_frames and start."""

from __future__ import annotations

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
