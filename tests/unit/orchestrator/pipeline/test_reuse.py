"""Masks first, masks reused (pipeline.listing, pipeline.reusing, media.mask_cache), in-process with
FakeModels (each red region is an object): a masks job lists its objects and tracks nothing more;
a video job on its masks sends no Segment call and edits the objects picked; the mask cache serves
a second job on the same content, prompt, tracking and segmenter, and nothing else."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from orchestrator.errors import InvalidArgument
from orchestrator.jobs.validation import parse_extra
from orchestrator.media.mask_cache import MaskCache
from orchestrator.media.object_list import ObjectList
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline import MaskSources, output_paths, run_pipeline
from orchestrator.pipeline.concurrency import StopSignal
from orchestrator.request import CheckedRequest, VideoEditRequest
from tests.helpers import RecordedProgress, decode, write_lossless

FRAMES, H, W = 20, 64, 96
BIG, SMALL = 16, 10  # the squares' sides: object 1 is the big one on the left


def two_squares(path: Path, shift: int = 0) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    """Two red squares moving right on a textured background (the small one from frame 5 on);
    lossless. Returns the clip and each square's true masks."""
    rng = np.random.default_rng(2)
    background = rng.integers(60, 110, (H, W, 3), dtype=np.uint8)
    images, big, small = [], [], []
    for i in range(FRAMES):
        frame = background.copy()
        masks = []
        for side, x, y, start in ((BIG, 4 + i, 8 + shift, 0), (SMALL, 60 + i // 2, 40, 5)):
            mask = np.zeros((H, W), bool)
            if i >= start:
                mask[y : y + side, x : x + side] = True
                frame[mask] = (210, 30, 40)
            masks.append(mask)
        images.append(frame)
        big.append(masks[0])
        small.append(masks[1])
    return write_lossless(path, images), big, small


def run(tmp_path: Path, job_id: str, clip: Path, models: FakeModels, sources: MaskSources = MaskSources(), **fields):
    extra = {"chunk_size": "6", "chunk_overlap": "2", "edit_size": "64", **fields.pop("extra", {})}
    request = VideoEditRequest(
        job_id=job_id,
        input_video_path=clip,
        output_dir=tmp_path / job_id,
        mask_prompt=fields.pop("mask_prompt", "square"),
        edit_prompt=fields.pop("edit_prompt", "make it blue"),
        num_inference_steps=2,
        erode_kernel=0,
        apply_smoothing=False,
        extra=extra,
        **fields,
    )
    request.output_dir.mkdir(parents=True)
    work = request.output_dir / ".work"
    work.mkdir()
    return run_pipeline(
        CheckedRequest(request, parse_extra(extra)),
        models,
        RecordedProgress(),
        logging.getLogger(f"tests.reuse.{job_id}"),
        work,
        StopSignal(),
        output_paths(request),
        threads=1,
        masks=sources,
    )


@pytest.fixture
def clip(tmp_path) -> tuple[Path, list[np.ndarray], list[np.ndarray]]:
    return two_squares(tmp_path / "clip.mkv")


def test_a_masks_job_lists_every_object_with_its_frames_boxes_and_a_preview(tmp_path, clip):
    path, big, small = clip
    models = FakeModels()
    out = run(tmp_path, "find", path, models, mode="masks", edit_prompt="")
    assert out.video is None and out.objects_found == 2 and out.summary == "2 object(s) found"
    assert models.edit_calls == [] and sum(models.segment_calls) >= FRAMES
    listing = ObjectList.read(out.objects)
    assert listing.ids == [1, 2] and listing.edited == [1, 2] and listing.frames == FRAMES
    first, second = listing.objects
    assert first.frames == [[0, FRAMES - 1]] and second.frames == [[5, FRAMES - 1]]
    for summary, truth in ((first, big), (second, small)):
        for frame, x0, y0, x1, y1, area in summary.boxes:
            ys, xs = np.nonzero(truth[frame])
            assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert area == truth[frame].sum()
        assert summary.score == 1.0 and summary.area == truth[summary.best_frame].sum()
        preview = cv2.imread(str(out.preview(summary.id)))
        assert preview.shape == (H, W, 3)  # the outline drawn on the frame
    mask_video = decode(out.mask)
    assert len(mask_video) == FRAMES and (mask_video[10][..., 0] > 127).sum() == big[10].sum() + small[10].sum()


def test_an_edit_on_reused_masks_sends_no_segment_call_and_edits_the_objects_picked(tmp_path, clip):
    path, big, small = clip
    found = run(tmp_path, "find", path, FakeModels(), mode="masks", edit_prompt="")
    models = FakeModels()
    out = run(
        tmp_path, "edit", path, models, MaskSources(masks_from=found), extra={"masks_from": "find", "objects": "2"}
    )
    assert models.segment_calls == [] and models.trackers == []
    assert sum(c.crops for c in models.edit_calls) == FRAMES - 5  # the small square's frames
    mask_video = decode(out.mask)
    for i in range(FRAMES):
        assert ((mask_video[i][..., 0] > 127) == small[i]).all(), f"frame {i}"
    assert ObjectList.read(out.objects) == ObjectList.read(found.objects)  # listed as the masks job did
    assert out.objects_found == 2


def test_a_video_jobs_masks_are_reused_like_a_masks_jobs(tmp_path, clip):
    path, big, _ = clip
    whole = run(tmp_path, "whole", path, FakeModels(), extra={"instances": "largest"})
    assert ObjectList.read(whole.objects).edited == [1]  # the big square: extra.instances
    models = FakeModels()
    out = run(tmp_path, "again", path, models, MaskSources(masks_from=whole), extra={"masks_from": "whole"})
    assert models.segment_calls == [] and sum(c.crops for c in models.edit_calls) == FRAMES
    mask_video = decode(out.mask)
    assert all(((mask_video[i][..., 0] > 127) == big[i]).all() for i in range(FRAMES))  # what it edited


def test_reused_masks_must_be_of_the_same_content_and_name_existing_objects(tmp_path, clip):
    path, _, _ = clip
    found = run(tmp_path, "find", path, FakeModels(), mode="masks", edit_prompt="")
    other, _, _ = two_squares(tmp_path / "other.mkv", shift=3)
    with pytest.raises(InvalidArgument, match=r"extra\[masks_from\].*another input"):
        run(tmp_path, "e1", other, FakeModels(), MaskSources(masks_from=found), extra={"masks_from": "find"})
    with pytest.raises(InvalidArgument, match=r"extra\[objects\].*no object 7 \(its objects: 1, 2\)"):
        run(
            tmp_path,
            "e2",
            path,
            FakeModels(),
            MaskSources(masks_from=found),
            extra={"masks_from": "find", "objects": "1,7"},
        )


def test_the_mask_cache_serves_the_same_content_prompt_and_tracking_and_nothing_else(tmp_path, clip):
    path, _, _ = clip
    cache = MaskCache(tmp_path / "cache", 1 << 30)
    first = FakeModels()
    whole = run(tmp_path, "first", path, first, MaskSources(cache=cache))
    assert sum(first.segment_calls) > 0 and len(list((tmp_path / "cache").iterdir())) == 1
    again = FakeModels()
    hit = run(tmp_path, "again", path, again, MaskSources(cache=cache), edit_prompt="make it green")
    assert again.segment_calls == [] and sum(c.crops for c in again.edit_calls) == sum(
        c.crops for c in first.edit_calls
    )
    assert [np.array_equal(a, b) for a, b in zip(decode(hit.mask), decode(whole.mask), strict=True)] == [True] * FRAMES
    for job_id, fields in (
        ("prompt", dict(mask_prompt="red square")),
        ("tracking", dict(extra={"max_gap": "0"})),
        ("frames", dict(max_frames=FRAMES - 2)),
    ):
        models = FakeModels()
        run(tmp_path, job_id, path, models, MaskSources(cache=cache), **fields)
        assert sum(models.segment_calls) > 0, job_id
    # The same path with other content: tracked again.
    os.replace(two_squares(tmp_path / "moved.mkv", shift=3)[0], path)
    models = FakeModels()
    run(tmp_path, "changed", path, models, MaskSources(cache=cache))
    assert sum(models.segment_calls) > 0
    # Another segmenter: tracked again.
    other = FakeModels()
    info = dataclasses.replace(other.info(), identity="another segmenter")
    other.info = lambda wait_s=0.0: info
    run(tmp_path, "segmenter", path, other, MaskSources(cache=cache))
    assert sum(other.segment_calls) > 0


def test_the_mask_cache_keeps_the_most_recently_used_entries_within_its_bound(tmp_path, clip):
    path, _, _ = clip
    probe_cache = MaskCache(tmp_path / "probe-cache", 1 << 30)
    run(tmp_path, "probe", path, FakeModels(), MaskSources(cache=probe_cache))
    [entry] = (tmp_path / "probe-cache").iterdir()
    size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
    cache = MaskCache(tmp_path / "cache", 2 * size + size // 2)  # room for two entries
    for job_id, prompt in (("a", "square"), ("b", "red square"), ("c", "box")):
        run(tmp_path, job_id, path, FakeModels(), MaskSources(cache=cache), mask_prompt=prompt)
        if job_id == "b":  # "a" used again: "b" is now the least recently used
            models = FakeModels()
            run(tmp_path, "a2", path, models, MaskSources(cache=cache))
            assert models.segment_calls == []
    kept = {ObjectList.read(e / "objects.json").mask_prompt for e in (tmp_path / "cache").iterdir()}
    assert kept == {"square", "box"}


def test_a_cache_entry_evicted_as_a_job_takes_it_costs_that_job_only_the_tracking(tmp_path, clip, caplog):
    path, _, _ = clip
    cache = MaskCache(tmp_path / "cache", 1 << 30)
    run(tmp_path, "first", path, FakeModels(), MaskSources(cache=cache))
    [entry] = (tmp_path / "cache").iterdir()
    found = cache.find

    def evicted_meanwhile(key):
        hit = found(key)
        shutil.rmtree(entry)  # another orchestrator's eviction, between the find and the link
        return hit

    cache.find = evicted_meanwhile
    models = FakeModels()
    with caplog.at_level(logging.WARNING, logger="tests.reuse.second"):
        out = run(tmp_path, "second", path, models, MaskSources(cache=cache))
    assert sum(models.segment_calls) > 0 and out.objects_found == 2
    assert any("the mask cache's entry cannot be used" in r.getMessage() for r in caplog.records)
