"""Stage logic on real files, no model server: decoding every container, id stitching across
chunks, gap filling, instance selection, smoothing (EMA and flow) and per-frame seeds."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pytest

from clients.sample_clip import make_sample_clip
from orchestrator.context import JobContext
from orchestrator.editing import frame_seed
from orchestrator.extracting import VideoInfo, probe, read_frames
from orchestrator.frame_spool import SpoolWriter, read_spool
from orchestrator.mask_store import MaskStore
from orchestrator.model_client import Detection
from orchestrator.progress import JobReporter
from orchestrator.request import JobStatus, VideoEditRequest, VideoEditStatus
from orchestrator.smoothing import smooth_frames
from orchestrator.stitching import IdStitcher, TrackAssembler, frame_objects, largest, match_ids
from orchestrator.validation import EditOptions

H, W = 60, 80


def blob(x: int, y: int = 20, size: int = 16) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y:y + size, x:x + size] = True
    return mask


def det(object_id: int, mask: np.ndarray) -> Detection:
    return Detection(object_id, "thing", 0.9, (0, 0, 1, 1), mask)


# --- extracting ---

@pytest.mark.parametrize("suffix, size", [(".mp4", (160, 120)), (".mov", (161, 121)), (".mkv", (161, 121)),
                                          (".webm", (161, 121)), (".avi", (160, 120))])
def test_every_common_container_decodes_with_its_size_fps_audio_and_frames(tmp_path, suffix, size):
    clip = make_sample_clip(tmp_path / f"clip{suffix}", frames=10, width=size[0], height=size[1], fps=25)
    info = probe(clip, None)
    assert (info.width, info.height, info.fps, info.frame_count, info.has_audio) == (*size, 25, 10, True)
    frames = [f for _, f in read_frames(info)]
    assert len(frames) == 10 and frames[0].shape == (size[1], size[0], 3)
    assert probe(clip, 4).frame_count == 4  # max_frames
    assert [i for i, _ in read_frames(probe(clip, 4), start=2)] == [2, 3]


# --- stitching ---

def test_ids_follow_the_objects_when_sam3_renumbers_them():
    previous = [{0: blob(10), 1: blob(50)}]
    current = [{7: blob(51), 3: blob(11)}]  # the same two objects, other ids, slightly moved
    assert match_ids(previous, current) == {3: 0, 7: 1}
    assert match_ids(previous, [{4: blob(30, y=40)}]) == {}  # no overlap: not the same object


def test_stitcher_keeps_ids_across_overlapping_chunks_and_numbers_new_objects():
    stitcher = IdStitcher()
    first = stitcher.stitch([frame_objects([det(0, blob(10)), det(1, blob(50))]),
                             frame_objects([det(0, blob(12)), det(1, blob(52))])])
    # Next chunk repeats the last frame; SAM3 swapped the ids and a third object appeared.
    second = stitcher.stitch([frame_objects([det(1, blob(12)), det(0, blob(52))]),
                              frame_objects([det(1, blob(14)), det(0, blob(54)), det(2, blob(30, y=0))])],
                             overlap_before=first[-1:])
    assert set(first[0]) == {0, 1}
    assert np.array_equal(second[1][0], blob(14)) and np.array_equal(second[1][1], blob(54))
    assert set(second[1]) == {0, 1, 2}


def test_short_gaps_are_filled_and_long_ones_are_not(tmp_path):
    store = MaskStore(tmp_path / "m.npy", 12, H, W)
    tracks = TrackAssembler(store, max_gap=2)
    present = [0, 1, 4, 5, 9, 10]  # gap of 2 (frames 2-3: filled) and of 3 (frames 6-8: kept empty)
    for i in range(12):
        tracks.add(i, {0: blob(10 + i)} if i in present else {})
    tracks.finish()
    assert [store.box(i) is not None for i in range(12)] == [i in present or i in (2, 3) for i in range(12)]
    assert np.array_equal(store.get(3), blob(11))  # the last mask seen before the gap
    assert tracks.filled == 2


def test_instance_selection_keeps_the_largest(tmp_path):
    objects = [{0: blob(5, size=8), 1: blob(40, size=20), 2: blob(20, y=0, size=12)}] * 2
    assert largest(objects, 1) == {1} and largest(objects, 2) == {1, 2}
    store = MaskStore(tmp_path / "m.npy", 2, H, W)
    tracks = TrackAssembler(store, max_gap=0, keep=largest(objects, 1))
    for i, frame in enumerate(objects):
        tracks.add(i, {**frame, 9: blob(0, y=0, size=4)})  # 9: appeared later, not selected
    tracks.finish()
    assert np.array_equal(store.get(0), blob(40, size=20))


# --- smoothing ---

def moving_object_clip(tmp_path, frames=12, speed=3):
    """Source: a textured square moving right. Edited: the square recoloured, with flicker."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    background = np.full((H, W, 3), 90, np.uint8)
    sources, edited, masks, targets = [], [], [], []
    for i in range(frames):
        x = 4 + speed * i
        src = background.copy()
        src[18:42, x:x + 24] = texture
        target = src.copy()
        target[18:42, x:x + 24] = texture // 2 + np.array([100, 0, 0], np.uint8)  # the "edit"
        flicker = target.copy()
        flicker[18:42, x:x + 24] = np.clip(target[18:42, x:x + 24].astype(int) + rng.integers(-40, 40), 0, 255)
        mask = np.zeros((H, W), bool)
        mask[18:42, x:x + 24] = True
        sources.append(src), edited.append(flicker), masks.append(mask), targets.append(target)
    return sources, edited, masks, targets


def smooth(tmp_path, sources, edited, masks, mode: str, window=4, alpha=0.6) -> list[np.ndarray]:
    fps = Fraction(24)
    with SpoolWriter(tmp_path / "src.mkv", W, H, fps) as spool:  # lossless, so "decoded input" is exact
        for frame in sources:
            spool.write(frame)
    with SpoolWriter(tmp_path / "edited.mkv", W, H, fps) as spool:
        for frame in edited:
            spool.write(frame)
    store = MaskStore(tmp_path / "masks.npy", len(masks), H, W)
    for i, m in enumerate(masks):
        store.put(i, m)
    request = VideoEditRequest(input_video_path=tmp_path / "src.mkv", mask_prompt="x", edit_prompt="y", job_id="s",
                               output_dir=tmp_path, smoothing_window=window, smoothing_alpha=alpha, erode_kernel=0)
    status = VideoEditStatus(job_id="s", status=JobStatus.QUEUED, message="", output_dir=tmp_path,
                             logs_path=tmp_path / "log.txt", created_at=0.0, updated_at=0.0)
    ctx = JobContext(request=request, options=EditOptions(smoothing_mode=mode), models=None,  # type: ignore[arg-type]
                     reporter=JobReporter(status, tmp_path), log=logging.getLogger("test"), workdir=tmp_path,
                     info=VideoInfo(tmp_path / "src.mkv", W, H, fps, len(sources), "ffv1", False))
    return list(read_spool(smooth_frames(ctx, store, tmp_path / "edited.mkv", tmp_path / f"{mode}.mkv")))


def error_inside(frames, targets, masks) -> float:
    return float(np.mean([np.abs(f.astype(int) - t.astype(int))[m].mean() for f, t, m in
                          zip(frames[1:], targets[1:], masks[1:])]))


def test_smoothing_reduces_flicker_inside_the_mask_and_keeps_the_background(tmp_path):
    sources, edited, masks, targets = moving_object_clip(tmp_path, speed=0)  # still object
    out = smooth(tmp_path, sources, edited, masks, "ema")

    def change(frames):  # mean frame-to-frame change inside the mask
        return np.mean([np.abs(a.astype(int) - b.astype(int))[m].mean() for a, b, m in
                        zip(frames[1:], frames[:-1], masks[1:])])

    assert change(out) < 0.8 * change(edited)
    assert error_inside(out, targets, masks) < 0.8 * error_inside(edited, targets, masks)
    for o, e, m in zip(out, edited, masks):
        assert np.array_equal(o[~m], e[~m])  # outside the mask: untouched, bit for bit


def test_flow_smoothing_follows_a_moving_object_instead_of_ghosting(tmp_path):
    sources, edited, masks, targets = moving_object_clip(tmp_path, speed=3)
    (tmp_path / "ema").mkdir(), (tmp_path / "flow").mkdir()
    ema = error_inside(smooth(tmp_path / "ema", sources, edited, masks, "ema"), targets, masks)
    flow = error_inside(smooth(tmp_path / "flow", sources, edited, masks, "flow"), targets, masks)
    unsmoothed = error_inside(edited, targets, masks)
    # EMA blends the square with where it was (a ghost) and gains nothing on a moving object;
    # flow blends it with itself and removes as much flicker as on a still one.
    assert flow < 0.8 * unsmoothed and flow < 0.8 * ema


def test_frame_seeds_are_shared_or_per_frame():
    assert [frame_seed(7, i, "shared") for i in range(3)] == [7, 7, 7]
    assert [frame_seed(7, i, "per_frame") for i in range(3)] == [7, 8, 9]
