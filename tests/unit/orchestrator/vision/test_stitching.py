"""Object tracks across Segment chunks: id stitching, gap filling, instance selection."""

from __future__ import annotations

import numpy as np

from orchestrator.media.mask_store import MaskStore
from orchestrator.models import Detection
from orchestrator.vision.stitching import IdStitcher, Targets, TrackAssembler, frame_objects, largest, match_ids

H, W = 60, 80
ONE = Targets(("car",), (None,))  # one target, every object its


def blob(x: int, y: int = 20, size: int = 16) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y : y + size, x : x + size] = True
    return mask


def det(object_id: int, mask: np.ndarray) -> Detection:
    return Detection(object_id, "thing", 0.9, (0, 0, 1, 1), mask)


def test_ids_follow_the_objects_when_sam3_renumbers_them():
    previous = [{0: blob(10), 1: blob(50)}]
    current = [{7: blob(51), 3: blob(11)}]  # the same two objects, other ids, slightly moved
    assert match_ids(previous, current) == {3: 0, 7: 1}
    assert match_ids(previous, [{4: blob(30, y=40)}]) == {}  # no overlap: not the same object


def test_stitcher_keeps_ids_across_overlapping_chunks_and_numbers_new_objects():
    stitcher = IdStitcher()
    first = stitcher.stitch(
        [frame_objects([det(0, blob(10)), det(1, blob(50))]), frame_objects([det(0, blob(12)), det(1, blob(52))])]
    )
    # Next chunk repeats the last frame; SAM3 swapped the ids and a third object appeared.
    second = stitcher.stitch(
        [
            frame_objects([det(1, blob(12)), det(0, blob(52))]),
            frame_objects([det(1, blob(14)), det(0, blob(54)), det(2, blob(30, y=0))]),
        ],
        overlap_before=first[-1:],
    )
    assert set(first[0]) == {0, 1}
    assert np.array_equal(second[1][0], blob(14)) and np.array_equal(second[1][1], blob(54))
    assert set(second[1]) == {0, 1, 2}


def test_an_object_the_overlap_missed_keeps_its_id_when_it_is_found_again():
    stitcher = IdStitcher()
    first = stitcher.stitch(
        [frame_objects([det(0, blob(10)), det(1, blob(50))]), frame_objects([det(0, blob(12)), det(1, blob(52))])]
    )
    # Next chunk: SAM3 misses object 0 on the shared frame and finds it again two frames later
    # (as local id 4); object 1 is re-found on the shared frame as local id 0.
    second = stitcher.stitch(
        [
            frame_objects([det(0, blob(52))]),
            frame_objects([det(0, blob(54))]),
            frame_objects([det(0, blob(56)), det(4, blob(16))]),
        ],
        overlap_before=first[-1:],
    )
    assert set(second[2]) == {0, 1}  # no new id: with `instances` it is still the one to edit
    assert np.array_equal(second[2][0], blob(16)) and np.array_equal(second[2][1], blob(56))
    # Something that is nowhere near a lost object still gets a new id.
    third = stitcher.stitch(
        [frame_objects([det(0, blob(56)), det(1, blob(16))]), frame_objects([det(2, blob(30, y=0))])],
        overlap_before=second[-1:],
    )
    assert set(third[0]) == {0, 1} and set(third[1]) == {2}


def test_short_gaps_are_filled_and_long_ones_are_not(tmp_path):
    store = MaskStore(tmp_path / "m.npy", 12, H, W)
    tracks = TrackAssembler([store], max_gap=2, targets=ONE, found={})
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
    tracks = TrackAssembler([store], max_gap=0, targets=Targets(("car",), (largest(objects, 1),)), found={})
    for i, frame in enumerate(objects):
        tracks.add(i, {**frame, 9: blob(0, y=0, size=4)})  # 9: appeared later, not selected
    tracks.finish()
    assert np.array_equal(store.get(0), blob(40, size=20))


def test_each_targets_objects_go_to_its_own_store_and_the_earlier_keeps_an_overlap(tmp_path):
    stores = [MaskStore(tmp_path / f"m{k}.npy", 1, H, W) for k in range(3)]
    targets = Targets(("car", "sky", "dog"), (None, frozenset({1}), None))
    found = {0: "car", 1: "sky", 2: "sky", 3: "tree"}  # 2: not kept by its target; 3: no target's
    tracks = TrackAssembler(stores, max_gap=0, targets=targets, found=found)
    tracks.add(0, {0: blob(10, size=20), 1: blob(20, size=20), 2: blob(50, size=8), 3: blob(60, size=8)})
    tracks.finish()
    assert np.array_equal(stores[0].get(0), blob(10, size=20))
    assert np.array_equal(stores[1].get(0), blob(20, size=20) & ~blob(10, size=20))  # the overlap is car's
    assert not stores[2].get(0).any()
    assert [targets.of(p) for p in ("car", "sky", "dog", "tree", None)] == [0, 1, 2, None, None]
    cut = Targets(("a red car on the left", "sky"), (None, None))
    assert cut.of("a red car") == 0  # read cut to the text window: the target it starts
    assert ONE.of("anything") == ONE.of(None) == 0  # one target: every object is its


def test_the_stitcher_keeps_the_prompt_that_found_each_object():
    stitcher = IdStitcher()
    stitcher.stitch([{0: blob(10), 1: blob(40)}], prompts=[{0: "car", 1: "sky"}])
    stitcher.stitch(
        [{5: blob(10), 6: blob(40)}], overlap_before=[{0: blob(10), 1: blob(40)}], prompts=[{5: "car", 6: "sky"}]
    )
    assert stitcher.prompts == {0: "car", 1: "sky"}
