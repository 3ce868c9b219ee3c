"""Encoding: what the pipeline decodes and re-encodes unchanged reaches x264 as the very YUV
samples it was decoded from (no conversion drift), and grey mask frames keep their levels."""

from __future__ import annotations

import av
import numpy as np

from clients.sample_clip import make_sample_clip
from orchestrator.media.decode import decoded_frames, encodes_as_decoded, probe, read_frames
from orchestrator.media.encode import encode_h264

LOSSLESS = {"qp": "0", "preset": "ultrafast"}  # x264 lossless: what comes out is what went in


def yuv_planes(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p").astype(np.int16) for f in container.decode(video=0)]


def test_frames_decoded_and_encoded_unchanged_keep_their_yuv_samples(tmp_path):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=6, width=160, height=120)
    info = probe(clip, None)
    out = tmp_path / "out.mp4"
    encode_h264(out, (frame for _, frame in read_frames(info)), info, audio_from=None, options=LOSSLESS)
    diff = np.abs(np.stack(yuv_planes(out)) - np.stack(yuv_planes(clip)))
    # swscale's default RGB round trip moved nearly every sample, luma ~1 level darker on average.
    assert (diff == 0).mean() > 0.99, f"{(diff != 0).mean():.1%} of the YUV samples changed"
    assert diff.mean() < 0.02


def test_grey_mask_frames_decode_to_the_levels_encoded(tmp_path):
    clip = make_sample_clip(tmp_path / "clip.mp4", frames=2, width=64, height=48)
    info = probe(clip, None)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:50] = 255
    out = tmp_path / "mask.mp4"
    encode_h264(out, [mask, mask], info, audio_from=None, options=LOSSLESS)
    for _, frame in read_frames(probe(out, None)):
        assert (frame == mask[..., None]).all()


def test_frames_passed_as_decoded_keep_every_sample_and_not_the_sources_frame_types(tmp_path):
    """Frames without an edit go to the encoder as decoded (no RGB round trip): every sample is
    kept, and x264 picks its own frame types rather than copying the source's (here a keyframe
    every 4 frames)."""
    clip = tmp_path / "keyframes.mp4"
    info = probe(make_sample_clip(tmp_path / "clip.mp4", frames=12, width=160, height=120), None)
    encode_h264(clip, (frame for _, frame in read_frames(info)), info, audio_from=None, options={**LOSSLESS, "g": "4"})
    info = probe(clip, None)
    assert all(encodes_as_decoded(frame) for _, frame in decoded_frames(info))
    out = tmp_path / "out.mp4"
    encode_h264(out, (frame for _, frame in decoded_frames(info)), info, audio_from=None, options=LOSSLESS)
    assert np.array_equal(np.stack(yuv_planes(out)), np.stack(yuv_planes(clip)))

    def keyframes(path):
        with av.open(str(path)) as container:
            return sum(packet.is_keyframe for packet in container.demux(video=0) if packet.size)

    assert keyframes(clip) == 3 and keyframes(out) == 1
