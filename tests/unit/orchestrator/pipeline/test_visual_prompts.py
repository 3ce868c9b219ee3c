"""Clicks and boxes (visual prompts), in-process with FakeModels on two coloured squares: a red
one moving right and a blue one moving left. A positive point keeps only the object it is on, a
negative one drops it; a box exemplar finds the object like it that the text missed; a correction
on a later frame changes the masks from that frame on only; clicks alone define the object; a
positive point on no object fails the job naming it; picks work on reused masks too."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from orchestrator.errors import InvalidArgument
from orchestrator.jobs.validation import parse_extra
from orchestrator.media.mask_cache import MaskCache
from orchestrator.media.mask_store import MaskStore
from orchestrator.models.fake import FakeModels, coloured_regions, red_regions
from orchestrator.pipeline import MaskSources, output_paths, run_pipeline
from orchestrator.pipeline.concurrency import StopSignal
from orchestrator.request import CheckedRequest, VideoEditRequest, VisualPrompt
from tests.helpers import RecordedProgress
from tests.unit.orchestrator.pipeline.test_objects import FRAMES, SIDE, H, W, squares
from videoedit.v1.contract import PromptPoint

EXTRA = {"chunk_size": "6", "chunk_overlap": "2", "edit_size": "64"}


def blue_centre(frame: int) -> PromptPoint:
    return PromptPoint(96 - frame + SIDE / 2, 48 + SIDE / 2)


def run(
    tmp_path: Path,
    clip: Path,
    models: FakeModels,
    prompts: list[VisualPrompt],
    name: str = "job",
    sources: MaskSources = MaskSources(),
    **fields,
):
    extra = {**EXTRA, **fields.pop("extra", {})}
    request = VideoEditRequest(
        job_id=name,
        input_video_path=clip,
        output_dir=tmp_path / name,
        mask_prompt=fields.pop("mask_prompt", "thing"),
        edit_prompt="make it green",
        num_inference_steps=2,
        erode_kernel=0,
        apply_smoothing=False,
        extra=extra,
        visual_prompts=prompts,
        **fields,
    )
    request.output_dir.mkdir(parents=True, exist_ok=True)
    work = tmp_path / f"work-{name}"
    work.mkdir(exist_ok=True)
    paths = run_pipeline(
        CheckedRequest(request, parse_extra(extra)),
        models,
        RecordedProgress(),
        logging.getLogger("tests.visual"),
        work,
        StopSignal(),
        output_paths(request),
        threads=1,
        masks=sources,
    )
    return paths, work


def masks(work: Path) -> list[np.ndarray]:
    store = MaskStore(work / "masks-0.bits", FRAMES, H, W, resume_up_to=FRAMES)
    try:
        return [store.get(i) for i in range(FRAMES)]
    finally:
        store.close()


def covers(mask: np.ndarray, truth: np.ndarray) -> bool:
    return bool(mask[truth].mean() > 0.95)


@pytest.fixture
def clip(tmp_path):
    return squares(tmp_path / "clip.mkv")


def both() -> FakeModels:
    return FakeModels(finders={"thing": coloured_regions})


def test_a_positive_point_keeps_only_the_object_it_is_on(tmp_path, clip):
    path, red, blue = clip
    run(tmp_path, path, both(), [VisualPrompt(5, (blue_centre(5),))])
    for mask, r, b in zip(masks(tmp_path / "work-job"), red, blue, strict=True):
        assert covers(mask, b) and not mask[r].any()


def test_a_negative_point_drops_the_object_it_is_on(tmp_path, clip):
    path, red, blue = clip
    point = blue_centre(7)
    run(tmp_path, path, both(), [VisualPrompt(7, (PromptPoint(point.x, point.y, positive=False),))])
    for mask, r, b in zip(masks(tmp_path / "work-job"), red, blue, strict=True):
        assert covers(mask, r) and not mask[b].any()


def test_a_positive_point_on_no_object_fails_the_job_naming_it(tmp_path, clip):
    path, _, _ = clip
    with pytest.raises(InvalidArgument, match=r"visual_prompts\[0\]\.points\[1\].*\(60, 2\) on frame 3") as err:
        run(tmp_path, path, both(), [VisualPrompt(3, (blue_centre(3), PromptPoint(60, 2)))])
    assert err.value.field == "visual_prompts[0].points[1]"


def test_a_box_exemplar_finds_the_object_like_it_that_the_text_missed(tmp_path, clip):
    path, red, blue = clip
    models = FakeModels(finders={"car": red_regions})
    run(tmp_path, path, models, [VisualPrompt(0, box=(96, 48, 96 + SIDE, 48 + SIDE))], mask_prompt="car")
    sent = models.trackers[0].visual
    assert len(sent) == 1 and sent[0].object_id is None and sent[0].frame_index == 0  # to the detector
    for mask, r, b in zip(masks(tmp_path / "work-job"), red, blue, strict=True):
        assert covers(mask, r) and covers(mask, b)
    plain = FakeModels(finders={"car": red_regions})
    run(tmp_path, path, plain, [], mask_prompt="car", name="plain")
    assert not any(m[b].any() for m, b in zip(masks(tmp_path / "work-plain"), blue, strict=True))


def test_a_correction_changes_the_masks_from_its_frame_on_only(tmp_path, clip):
    path, red, blue = clip
    at = 8
    models = FakeModels(finders={"car": red_regions})
    # Object 1 is the red square; the click says it is the blue one from frame 8 on.
    run(tmp_path, path, models, [VisualPrompt(at, (blue_centre(at),), object=1)], mask_prompt="car")
    run(tmp_path, path, FakeModels(finders={"car": red_regions}), [], mask_prompt="car", name="plain")
    corrected, plain = masks(tmp_path / "work-job"), masks(tmp_path / "work-plain")
    for i in range(at):
        assert np.array_equal(corrected[i], plain[i])
    for i in range(at, FRAMES):
        assert covers(corrected[i], blue[i]) and not np.array_equal(corrected[i], plain[i])
    sent = [p for tracker in models.trackers for p in tracker.visual]
    assert [(p.frame_index, p.object_id) for p in sent] == [(at, 0)]  # the session's id of object 1


def test_clicks_alone_define_the_object_forward_and_backward_from_their_frame(tmp_path, clip):
    path, red, blue = clip
    models = FakeModels(finders={"thing": coloured_regions})
    at = 9
    paths, _ = run(tmp_path, path, models, [VisualPrompt(at, (blue_centre(at),))], mask_prompt="")
    assert all(tracker.prompts == [] for tracker in models.trackers)  # no text to look for
    back, forward = models.trackers[0], models.trackers[1]
    assert back.calls[0][0] == 0 and back.visual[0].frame_index == 0  # the clicked frame first, then back
    assert forward.visual[0].frame_index == 0 and forward.calls[0][0] == 0  # the forward session opens at it
    found = masks(tmp_path / "work-job")
    for i in range(FRAMES):
        assert covers(found[i], blue[i]) and not found[i][red[i]].any()
    assert f"{FRAMES} frames edited" in paths.summary


def test_prompts_past_the_end_or_outside_the_frame_fail_the_job_naming_them(tmp_path, clip):
    path, _, _ = clip
    with pytest.raises(InvalidArgument, match="past the end: the video has 14 frames") as err:
        run(tmp_path, path, both(), [VisualPrompt(14, (PromptPoint(1, 1),))])
    assert err.value.field == "visual_prompts[0].frame_index"
    with pytest.raises(InvalidArgument, match=r"outside the 128x80 frame") as err:
        run(tmp_path, path, both(), [VisualPrompt(0, box=(100, 10, 140, 30))], name="box")
    assert err.value.field == "visual_prompts[0]"


def test_points_pick_among_reused_masks(tmp_path, clip):
    path, red, blue = clip
    found, _ = run(tmp_path, path, both(), [], name="found", mode="masks")
    models, reused = both(), MaskSources(masks_from=found)
    prompts = [VisualPrompt(2, (blue_centre(2),))]
    run(tmp_path, path, models, prompts, name="picked", sources=reused, extra={"masks_from": "found"})
    assert models.tracker_calls == 0  # no Segment call: the masks job's are reused
    for mask, r, b in zip(masks(tmp_path / "work-picked"), red, blue, strict=True):
        assert covers(mask, b) and not mask[r].any()


def test_a_job_whose_clicks_picked_leaves_no_cache_entry_but_may_pick_from_one(tmp_path, clip):
    """An entry's objects edited are what any later job on it edits by default: picked ones must not
    become that; picks do not change tracking, so a job with them may use an entry."""
    path, red, blue = clip
    cache = MaskSources(cache=MaskCache(tmp_path / "cache", 1 << 30))
    run(tmp_path, path, both(), [VisualPrompt(5, (blue_centre(5),))], name="picking", sources=cache)
    plain = both()
    run(tmp_path, path, plain, [], name="plain", sources=cache)
    assert plain.tracker_calls > 0  # tracked: the picking job left nothing in the cache
    for mask, r, b in zip(masks(tmp_path / "work-plain"), red, blue, strict=True):
        assert covers(mask, r) and covers(mask, b)
    picking_again = both()
    run(tmp_path, path, picking_again, [VisualPrompt(5, (blue_centre(5),))], name="again", sources=cache)
    assert picking_again.tracker_calls == 0  # the plain job's entry, picked from
    for mask, r, b in zip(masks(tmp_path / "work-again"), red, blue, strict=True):
        assert covers(mask, b) and not mask[r].any()
