"""Encoding: what the pipeline decodes and re-encodes unchanged reaches x264 as the very YUV
samples it was decoded from (no conversion drift), and grey mask frames keep their levels."""

from __future__ import annotations

import av
import numpy as np

from clients.sample_clip import make_sample_clip
from orchestrator.media.decode import probe, read_frames
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
