"""Real jobs on uploads in other colours (full range, 10 bits, BT.601-tagged HD, anamorphic):
the output carries the source's colour tags, depth and SAR, and outside the edit a player that
honours the tags shows the source's pixels; GetStatus says what the input held."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.colour_clips import CASES, make_colour_clip, play
from tests.helpers import FAST_JOB
from videoedit.v1 import video_edit_pb2 as pb


@pytest.mark.parametrize("case", CASES)
def test_a_job_keeps_the_sources_colour_depth_and_sar(stack, media_dir, case):
    from clients.client import VideoEditClient

    colour, (width, height) = CASES[case]
    name = "".join(c if c.isalnum() else "-" for c in case)
    clip = make_colour_clip(media_dir / f"{name}.mp4", colour, width, height)
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "make the car blue", job_id=name, **FAST_JOB)
        final = list(client.watch(name))[-1]
        assert final.status == pb.JOB_STATUS_FINISHED, final.error
        media = client.get_status(name).media
    assert (media.width, media.height, media.bit_depth) == (width, height, 10 if "10-bit" in case else 8)
    assert media.color_range == ("full" if colour.full_range else "limited")
    sar = colour.sample_aspect_ratio
    assert media.sample_aspect_ratio == f"{sar.numerator}:{sar.denominator}"
    assert media.summary.startswith(f"{width}x{height} ")
    hdr = {18: "hlg", 16: "pq"}.get(colour.transfer, "")
    assert media.hdr == hdr
    if hdr:  # the final status says what was done with it
        assert f"{hdr.upper()} 10-bit source: edited in SDR (tone-mapped" in final.message, final.message
        assert final.message.endswith(f"written as BT.2020 {hdr.upper()} 10-bit")

    source, output = play(clip), play(Path(final.output_video_path))
    assert output.tags == source.tags
    assert output.pix_fmt.endswith("10le") == source.pix_fmt.endswith("10le")
    assert output.sample_aspect_ratio == source.sample_aspect_ratio
    assert media.interlaced == colour.interlaced and not output.interlaced, "written progressive"
    mask = play(Path(final.mask_preview_path))
    assert mask.tags[1] == 1 and not mask.pix_fmt.endswith("10le"), "the matte is plain limited-range 8-bit"
    assert any((m > 127).any() for m in mask.frames), "the tiny SAM3 should find something: frames go through RGB"
    for before, after, matte in zip(source.frames, output.frames, mask.frames):
        # Grown a little: H.264 chroma is subsampled 2x2 and blocks bleed at edges.
        near = cv2.dilate((matte[..., 0] > 127).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        shift = (after.astype(int) - before)[~near].mean(axis=0)
        assert np.abs(shift).max() <= 1.0, f"untouched pixels moved by {shift} (RGB mean)"
