"""Colour: the models see the picture a tag-honouring player shows, and the output keeps the
source's colour tags, depth and SAR, untouched frames' samples exactly as decoded."""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.video.reformatter import Interpolation

from orchestrator.media.colour import BT709, BT2020_NCL, HLG, PQ, SMPTE170M, Colour
from orchestrator.media.decode import decoded_frames, encodes_as_decoded, probe, rgb_of
from orchestrator.media.encode import encode_h264
from orchestrator.media.summary import MediaSummary
from tests.colour_clips import CASES, make_colour_clip, play

ACCURATE = Interpolation.POINT | Interpolation.ACCURATE_RND
LOSSLESS = {"qp": "0", "preset": "ultrafast"}
LAYOUTS = [(m, full, depth) for m in (SMPTE170M, BT709, BT2020_NCL) for full in (False, True) for depth in (8, 10)]


def blocky_rgb(height=64, width=96, block=2):
    """Random RGB, constant over each block (2x2: what 4:2:0 can hold exactly)."""
    small = np.random.default_rng(1).integers(0, 256, (height // block, width // block, 3), np.uint8)
    return np.repeat(np.repeat(small, block, 0), block, 1)


@pytest.mark.parametrize("matrix, full_range, depth", LAYOUTS)
def test_rgb_round_trip_for_every_matrix_range_and_depth(matrix, full_range, depth):
    colour = Colour(matrix, full_range, 1, 1, depth)
    image = blocky_rgb()
    frame = colour.from_rgb(image)
    assert frame.format.name == ("yuv420p10le" if depth == 10 else "yuv420p")
    assert (frame.colorspace, frame.color_range) == (matrix, 2 if full_range else 1)
    diff = np.abs(colour.to_rgb(frame.to_ndarray()).astype(int) - image)
    if depth == 10:
        assert diff.max() == 0  # 10-bit samples hold every 8-bit RGB value
    else:  # 8-bit YCbCr has fewer codes than RGB: rounding only
        assert diff.max() <= 2 and diff.mean() < 0.5


@pytest.mark.parametrize("matrix, full_range, depth", LAYOUTS)
def test_to_rgb_recovers_what_swscale_encoded_with_those_tags(matrix, full_range, depth):
    """An independent encoder (swscale) told the matrix and range: the RGB comes back, inside
    8x8 blocks of one colour (its chroma filters blur the blocks' edges). swscale's own RGB
    decoding is 1-2 levels off here even with ACCURATE_RND, so it is no reference."""
    image = blocky_rgb(block=8)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
        format="yuv420p10le" if depth == 10 else "yuv420p",
        dst_colorspace=matrix,
        dst_color_range=2 if full_range else 1,
        interpolation=ACCURATE,
    )
    frame.colorspace = matrix
    rows, cols = np.arange(64) % 8, np.arange(96) % 8
    inside = ((rows >= 2) & (rows < 6))[:, None] & ((cols >= 2) & (cols < 6))[None, :]
    assert np.abs(rgb_of(frame).astype(int) - image)[inside].mean() < 1.0


def test_odd_sized_untagged_hd_is_read_as_bt709_like_the_encoder_writes_it():
    """Odd sizes (4:4:4 here) go through swscale, which must be told the matrix (it would assume
    BT.601) so they come back as the encoder, writing BT.709 for HD, will put them."""
    image = np.random.default_rng(2).integers(0, 256, (721, 1281, 3), np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
        format="yuv444p", dst_colorspace=BT709, dst_color_range=1, interpolation=ACCURATE
    )
    frame.colorspace = 2  # untagged
    assert np.abs(rgb_of(frame).astype(int) - image).mean() < 1.5


def test_untagged_video_gets_what_players_assume():
    sd, hd = av.VideoFrame(640, 480, "yuv420p"), av.VideoFrame(1280, 720, "yuv420p")
    assert Colour.of_frame(sd) == Colour(SMPTE170M, False, 6, 6, 8)
    assert Colour.of_frame(hd) == Colour(BT709, False, 1, 1, 8)
    hlg = av.VideoFrame(64, 64, "yuv420p10le")
    hlg.colorspace, hlg.color_primaries, hlg.color_trc = BT2020_NCL, 9, HLG
    assert Colour.of_frame(hlg).describe() == "BT.2020 HLG 10-bit" and Colour.of_frame(hlg).hdr == "hlg"


def test_the_media_summary_says_what_the_input_holds(tmp_path):
    colour, (width, height) = CASES["anamorphic 40:33 interlaced"]
    media = MediaSummary.of(probe(make_colour_clip(tmp_path / "clip.mp4", colour, width, height), None))
    names = (media.matrix, media.primaries, media.transfer, media.color_range)
    assert names == ("smpte170m", "smpte170m", "smpte170m", "limited")
    assert (media.bit_depth, media.sample_aspect_ratio, media.hdr, media.interlaced) == (8, "40:33", "", True)
    assert media.summary == "352x240 BT.601 8-bit, 24 fps, anamorphic 40:33, interlaced"


@pytest.mark.parametrize("case", CASES)
def test_output_keeps_tags_depth_and_sar_and_untouched_samples(tmp_path, case):
    """Even frames go through RGB (as edited ones do), odd ones as decoded: the tags, depth and
    SAR are the source's, the decoded ones keep every sample, and the converted ones look the
    same in a tag-honouring player."""
    colour, (width, height) = CASES[case]
    clip = make_colour_clip(tmp_path / "clip.mp4", colour, width, height)
    info = probe(clip, None)
    frames = [f if i % 2 and encodes_as_decoded(f) else rgb_of(f) for i, f in decoded_frames(info)]
    if "420" in colour.pix_fmt:
        assert all(isinstance(f, av.VideoFrame) for f in frames[1::2]), "4:2:0 frames pass as decoded"
    out = encode_h264(tmp_path / "out.mp4", frames, info, audio_from=None, options=LOSSLESS) and tmp_path / "out.mp4"
    source, output = play(clip), play(out)
    assert not output.interlaced
    assert output.tags == source.tags
    assert output.pix_fmt.endswith("10le") == source.pix_fmt.endswith("10le")
    assert output.sample_aspect_ratio == source.sample_aspect_ratio
    with av.open(str(out)) as written:  # against the source as the pipeline decodes it (deinterlaced)
        for (i, x), y in zip(decoded_frames(info), written.decode(video=0)):
            if i % 2 and "420" in colour.pix_fmt:
                assert np.array_equal(x.to_ndarray(), y.to_ndarray()), f"frame {i}'s samples changed"
    if colour.interlaced:
        return  # the moving car was deinterlaced: the system test compares the static rest
    if colour.transfer in (HLG, PQ):
        # A whole HDR frame through RGB takes the tone map there and back, which clips light above
        # its peak and colours outside BT.709: the saving pass never does that to untouched pixels
        # (media.splice; test_hdr_jobs), so only edited pixels are compared there.
        return
    for before, after in zip(source.frames, output.frames):
        assert np.abs(before.astype(int) - after).mean() <= 1.0


def test_interlaced_video_is_deinterlaced_frame_for_frame_and_written_progressive(tmp_path):
    clip = tmp_path / "interlaced.mp4"
    with av.open(str(clip), "w") as out:
        video = out.add_stream("libx264", rate=25, options={"flags": "+ildct+ilme", "crf": "12"})
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(blocky_rgb(240, 320, block=8), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    info = probe(clip, None)
    assert info.interlaced and "interlaced" in MediaSummary.of(info).summary
    frames = [frame for _, frame in decoded_frames(info)]
    assert len(frames) == info.frame_count == 6 and not any(f.interlaced_frame for f in frames)
    out = tmp_path / "out.mp4"
    assert encode_h264(out, frames, info, audio_from=None) == 6
    with av.open(str(out)) as container:
        assert not any(f.interlaced_frame for f in container.decode(video=0))
