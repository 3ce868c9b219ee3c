"""HDR sources (HLG, and PQ with HDR10 side data) through a whole job in-process with FakeModels
("car" finds the red car in the tone-mapped SDR the models see; the edit paints its crop mid-grey):
every pixel outside the edit is written as the decoded sample, the edit lands where the tone map's
inverse puts SDR grey, the output keeps the tags, depth and side data, and the status says so."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from orchestrator.media.crop_spool import CropSpool
from orchestrator.media.decode import decoded_frames, probe
from orchestrator.media.hdr_side_data import HdrSideData
from orchestrator.media.mask_store import MaskStore
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline.saving import Layer, output_frames
from orchestrator.vision.compositing import FEATHER_PX
from tests.colour_clips import CASES, make_colour_clip, play
from tests.helpers import job_context, run_fake_job

FRAMES = 6
GREY = (128, 128, 128)


def run(tmp_path: Path, clip: Path):
    extra = {"chunk_size": "6", "chunk_overlap": "2", "edit_size": "64"}
    models = FakeModels(paints={"make it grey": GREY})
    return run_fake_job(tmp_path, clip, models, extra, job_id="hdr", mask_prompt="car", edit_prompt="make it grey")


@pytest.mark.parametrize("case", ["HLG 10-bit HEVC", "PQ 10-bit HEVC HDR10", "HLG 10-bit 4:2:2 HEVC"])
def test_an_hdr_job_edits_in_sdr_and_writes_the_untouched_samples_as_decoded(tmp_path, case):
    colour, (width, height) = CASES[case]
    clip = make_colour_clip(tmp_path / "clip.mp4", colour, width, height, frames=FRAMES)
    paths, work = run(tmp_path, clip)
    info = probe(clip, None)
    source = info.output_colour
    name = source.hdr.upper()
    assert f"{name} 10-bit source: edited in SDR (tone-mapped" in paths.summary, paths.summary
    assert paths.summary.endswith(f"written as BT.2020 {name} 10-bit")

    # Before encoding (what x264 is given): outside the edit, every sample as decoded.
    ctx = job_context(tmp_path, info, FakeModels(), erode_kernel=0)
    masks = MaskStore(work / "masks-0.bits", FRAMES, height, width, resume_up_to=FRAMES)
    with CropSpool(work / "edited-0.crops", FRAMES, resume_up_to=FRAMES) as edits:
        given = [f.to_ndarray() for f in output_frames(ctx, [Layer(masks, edits)])]
    # As decoded; a 4:2:2 source as swscale subsamples it to 4:2:0 in YCbCr (no RGB, no tone map).
    as_420 = (lambda f: f.to_ndarray()) if "420" in colour.pix_fmt else source.subsampled
    decoded = [as_420(f) for _, f in decoded_frames(info)]
    grey = source.samples(np.full((2, 2, 3), GREY, np.uint8))[:, 0]  # Y, U, V of SDR grey, back in the signal
    cores = []
    for i, (out, samples) in enumerate(zip(given, decoded, strict=True)):
        mask = masks.get(i)
        assert mask.any(), f"the car was found in the tone-mapped frame {i}"
        near = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        changed = out != samples
        assert not changed[:height][~near].any(), f"luma outside the edit changed on frame {i}"
        blocks = cv2.resize(near.astype(np.uint8), (width // 2, height // 2), interpolation=cv2.INTER_AREA) > 0
        for plane in np.split(changed[height:].ravel(), 2):
            assert not plane.reshape(height // 2, width // 2)[~blocks].any(), f"chroma changed on frame {i}"
        core = cv2.erode(mask.astype(np.uint8), np.ones((4 * FEATHER_PX + 3,) * 2, np.uint8)) > 0  # past the feather
        assert (out[:height][core] == grey[0]).all(), "the grey edit, mapped back exactly"
        cores.append(core)

    # The encoded output: the source's tags, depth and side data; the edit near its samples.
    before, after = play(clip), play(paths.video)
    assert after.tags == before.tags and after.pix_fmt == "yuv420p10le"
    for i, (shown, written) in enumerate(zip(before.frames, after.frames, strict=True)):
        # As a tag-honouring player shows them (no tone map): outside the edit, the source.
        near = cv2.dilate(masks.get(i).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        shift = (written.astype(int) - shown)[~near].mean(axis=0)
        assert np.abs(shift).max() <= 1.0, f"untouched pixels moved by {shift} on frame {i}"
    with av.open(str(paths.video)) as written:
        frames = list(written.decode(video=0))
    assert HdrSideData.of_frame(frames[0]) == info.hdr_side_data
    if colour.hdr10:
        assert info.hdr_side_data is not None and info.hdr_side_data.light_level == (1000, 400)
    luma = np.concatenate([f.to_ndarray()[:height][core] for f, core in zip(frames, cores, strict=True)])
    assert abs(float(np.median(luma)) - int(grey[0])) <= 2, f"grey edit at {np.median(luma)}, expected {grey[0]}"
