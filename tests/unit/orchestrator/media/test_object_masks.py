"""media.object_masks: every object's masks apart, in one self-describing file that a resumed job
carries on writing."""

from __future__ import annotations

import numpy as np

from orchestrator.media.object_masks import ObjectMasks

H, W = 24, 40


def objects_on(frame: int) -> dict[int, np.ndarray]:
    """Two objects moving right; the second from frame 2 on."""
    one, two = np.zeros((H, W), bool), np.zeros((H, W), bool)
    one[2:9, frame : frame + 5] = True
    if frame >= 2:
        two[12:20, 20 + frame : 23 + frame] = True
    return {0: one, 3: two} if frame >= 2 else {0: one}


def test_each_objects_mask_comes_back_apart_and_as_unions(tmp_path):
    with ObjectMasks(tmp_path / "objects.masks", H, W) as masks:
        for frame in range(6):
            masks.put(frame, objects_on(frame))
    with ObjectMasks.open(tmp_path / "objects.masks", H, W) as masks:
        frames = masks.by_frame()
        assert [[r.object_id for r in f] for f in frames] == [[0], [0], [0, 3], [0, 3], [0, 3], [0, 3]]
        for frame, records in enumerate(frames):
            truth = objects_on(frame)
            for record in records:
                assert record.area == truth[record.object_id].sum()
                assert np.array_equal(masks.union([record]), truth[record.object_id])
        assert np.array_equal(masks.union(masks.by_frame([3])[4]), objects_on(4)[3])


def test_a_resumed_file_keeps_the_frames_before_and_carries_on_after_them(tmp_path):
    path = tmp_path / "objects.masks"
    with ObjectMasks(path, H, W) as masks:
        for frame in range(5):
            masks.put(frame, objects_on(frame))
    with open(path, "ab") as torn:  # a record cut short by a crash
        torn.write(b"\x01\x02\x03")
    with ObjectMasks(path, H, W, resume_up_to=3) as masks:  # frames 3 and 4 are written again
        for frame in range(3, 6):
            masks.put(frame, objects_on(frame))
    with ObjectMasks.open(path, H, W) as masks:
        assert [r.frame for r in masks.records] == [0, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        for frame, records in enumerate(masks.by_frame()):
            assert np.array_equal(masks.union(records), np.logical_or.reduce(list(objects_on(frame).values())))
