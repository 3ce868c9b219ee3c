"""Several objects, each with its own instruction, in one job (VideoEditRequest.objects), in-process
with FakeModels: "car" finds the red square, "sky" the blue one, and each instruction paints its
crops a colour of its own. One tracking session with every prompt; each region gets its own edit
and every pixel outside both masks stays bit-exact (checked before encoding: saving.output_frames
over the spools the job left); where two objects overlap, the earlier one keeps the pixels; an
object whose prompt matches nothing is said, not a failure; the mask video is labelled; an
interrupted job resumes its tracking and edits again."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from orchestrator.errors import JobInterrupted
from orchestrator.media.crop_spool import CropSpool
from orchestrator.media.decode import probe
from orchestrator.media.mask_store import MaskStore
from orchestrator.models.fake import FakeModels, red_regions
from orchestrator.pipeline.concurrency import StopSignal
from orchestrator.pipeline.saving import Layer, mask_levels, output_frames
from orchestrator.request import JobStatus, ObjectEdit
from orchestrator.vision.compositing import FEATHER_PX
from tests.helpers import RecordedProgress, as_rgb, decode, job_context, run_fake_job, write_lossless
from tests.unit.orchestrator.pipeline.test_resume import StopAt

FRAMES, H, W, SIDE = 14, 80, 128, 24
GREEN, YELLOW = (0, 255, 0), (255, 255, 0)
PAINTS = {"make it green": GREEN, "make it yellow": YELLOW}


def blue_regions(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return (b > 120) & (b - r > 60) & (b - g > 60)


def nothing(rgb: np.ndarray) -> np.ndarray:
    return np.zeros(rgb.shape[:2], bool)


def squares(path: Path) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """A red square moving right and a blue one moving left, on a textured background; lossless.
    Returns the clip and each square's true masks."""
    rng = np.random.default_rng(3)
    background = rng.integers(60, 110, (H, W, 3), dtype=np.uint8)
    images, red, blue = [], [], []
    for i in range(FRAMES):
        frame = background.copy()
        masks = []
        for x, y, colour in ((4 + i, 8, (210, 30, 40)), (96 - i, 48, (30, 40, 210))):
            mask = np.zeros((H, W), bool)
            mask[y : y + SIDE, x : x + SIDE] = True
            frame[mask] = colour
            masks.append(mask)
        images.append(frame)
        red.append(masks[0])
        blue.append(masks[1])
    return write_lossless(path, images), red, blue


def run(
    tmp_path: Path,
    clip: Path,
    models: FakeModels,
    objects: list[ObjectEdit],
    progress: RecordedProgress | None = None,
    stop: StopSignal | None = None,
    mode: str = "video",
):
    extra = {"chunk_size": "6", "chunk_overlap": "2", "edit_size": "64"}
    return run_fake_job(tmp_path, clip, models, extra, progress, stop, job_id="objects", objects=objects, mode=mode)


def outputs(tmp_path: Path, clip: Path, work: Path, targets: int) -> tuple[list[np.ndarray], list[MaskStore]]:
    """The output video's frames before encoding, from the masks and edits the job left in `work`."""
    info = probe(clip, None)
    ctx = job_context(tmp_path, info, FakeModels(), erode_kernel=0)
    stores = [MaskStore(work / f"masks-{k}.bits", FRAMES, H, W, resume_up_to=FRAMES) for k in range(targets)]
    edits = [CropSpool(work / f"edited-{k}.crops", FRAMES, resume_up_to=FRAMES) for k in range(targets)]
    frames = as_rgb(list(output_frames(ctx, [Layer(m, e) for m, e in zip(stores, edits, strict=True)])))
    for spool in edits:
        spool.close()
    return frames, stores


def core(mask: np.ndarray) -> np.ndarray:
    """The mask past the paste's feathered edge."""
    return cv2.erode(mask.astype(np.uint8), np.ones((4 * FEATHER_PX + 3,) * 2, np.uint8)).astype(bool)


def painted(pixels: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return pixels.size > 0 and np.abs(pixels.astype(int) - colour).max() <= 2


def test_two_objects_get_each_its_own_edit_in_one_tracking_session_and_the_rest_is_bit_exact(tmp_path):
    clip, red, blue = squares(tmp_path / "clip.mkv")
    models = FakeModels(finders={"car": red_regions, "sky": blue_regions}, paints=PAINTS)
    paths, work = run(tmp_path, clip, models, [ObjectEdit("car", "make it green"), ObjectEdit("sky", "make it yellow")])

    assert len(models.trackers) == 1 and models.trackers[0].prompts == ["car", "sky"]  # one session, both prompts
    assert {c.instruction for c in models.edit_calls} == set(PAINTS)
    assert sum(c.crops for c in models.edit_calls) == 2 * FRAMES  # each object on every frame, once
    assert (
        "objects[0] 'car': 14 frames edited" in paths.summary and "objects[1] 'sky': 14 frames edited" in paths.summary
    )
    frames, stores = outputs(tmp_path, clip, work, 2)
    sources = decode(clip)
    for i, (out, src) in enumerate(zip(frames, sources, strict=True)):
        assert np.array_equal(stores[0].get(i), red[i]) and np.array_equal(stores[1].get(i), blue[i]), f"frame {i}"
        outside = ~(red[i] | blue[i])
        assert np.array_equal(out[outside], src[outside]), f"background changed on frame {i}"
        assert painted(out[core(red[i])], GREEN) and painted(out[core(blue[i])], YELLOW), f"frame {i}"
    assert len(decode(paths.video)) == FRAMES
    listed = json.loads(paths.objects.read_text())
    assert [(o["id"], o["prompt"]) for o in listed["objects"]] == [(1, "car"), (2, "sky")]
    assert listed["edited"] == [1, 2] and listed["mask_prompt"] == "car; sky"


def test_the_earlier_object_keeps_an_overlap_one_matching_nothing_is_said_and_the_mask_video_is_labelled(tmp_path):
    clip, red, blue = squares(tmp_path / "clip.mkv")
    either = {"sky": blue_regions, "square": lambda f: red_regions(f) | blue_regions(f), "dog": nothing}
    models = FakeModels(finders=either, paints=PAINTS)
    objects = [ObjectEdit("sky", "make it yellow"), ObjectEdit("square", "make it green"), ObjectEdit("dog", "x")]
    paths, work = run(tmp_path, clip, models, objects)

    assert "objects[2] 'dog': matched nothing" in paths.summary
    assert {c.instruction for c in models.edit_calls} == set(PAINTS)  # nothing sent for the dog
    frames, stores = outputs(tmp_path, clip, work, 3)
    for i, out in enumerate(frames):
        # "square" found both squares; the blue one is the earlier "sky"'s: not in square's mask
        assert np.array_equal(stores[0].get(i), blue[i]) and np.array_equal(stores[1].get(i), red[i]), f"frame {i}"
        assert not stores[2].get(i).any()
        assert painted(out[core(blue[i])], YELLOW) and painted(out[core(red[i])], GREEN), f"frame {i}"
    assert mask_levels(3) == [255, 170, 85] and mask_levels(1) == [255]
    for i, matte in enumerate(decode(paths.mask)):
        grey = matte[..., 0].astype(int)
        assert abs(np.median(grey[core(blue[i])]) - 255) <= 3 and abs(np.median(grey[core(red[i])]) - 170) <= 3
        assert np.median(grey[~(red[i] | blue[i])]) <= 3


def test_an_interrupted_job_of_two_objects_resumes_its_tracking_and_edits_again(tmp_path):
    clip, _, _ = squares(tmp_path / "clip.mkv")
    objects = [ObjectEdit("car", "make it green"), ObjectEdit("sky", "make it yellow")]
    finders = {"car": red_regions, "sky": blue_regions}
    whole = FakeModels(finders=finders, paints=PAINTS)
    run(tmp_path / "whole", clip, whole, objects)
    expected, _ = outputs(tmp_path / "whole", clip, tmp_path / "whole" / "work", 2)

    first = FakeModels(finders=finders, paints=PAINTS)
    stopping = StopAt(stage_to_stop=JobStatus.PROPAGATING, frame=10)
    with pytest.raises(JobInterrupted):
        run(tmp_path / "again", clip, first, objects, stopping, stopping.signal)
    assert first.calls.wait(10) == 0
    second = FakeModels(finders=finders, paints=PAINTS)
    run(tmp_path / "again", clip, second, objects)
    resumed, _ = outputs(tmp_path / "again", clip, tmp_path / "again" / "work", 2)

    assert sum(second.segment_calls) < sum(whole.segment_calls)  # tracking carried on from its checkpoint
    assert sum(c.crops for c in second.edit_calls) == 2 * FRAMES  # editing started over, for both objects
    assert all(np.array_equal(a, b) for a, b in zip(resumed, expected, strict=True))


def test_a_masks_job_of_several_objects_lists_each_with_its_prompt_and_says_which_matched_nothing(tmp_path):
    clip, _, _ = squares(tmp_path / "clip.mkv")
    models = FakeModels(finders={"car": red_regions, "sky": blue_regions, "dog": nothing})
    paths, _ = run(tmp_path, clip, models, [ObjectEdit("car"), ObjectEdit("dog"), ObjectEdit("sky")], mode="masks")
    assert paths.summary == "2 object(s) found; objects[1] 'dog': matched nothing" and paths.video is None
    assert not models.edit_calls and models.trackers[0].prompts == ["car", "dog", "sky"]
    listed = json.loads(paths.objects.read_text())
    assert [(o["id"], o["prompt"]) for o in listed["objects"]] == [(1, "car"), (2, "sky")]
