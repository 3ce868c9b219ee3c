"""media.object_masks: every object's masks kept apart in one file, and a resumed job's writer
carrying on where the frames it keeps end."""

from __future__ import annotations

import numpy as np

from orchestrator.media.object_masks import ObjectMasks

H, W = 24, 40


def square(x: int, side: int = 6) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[4 : 4 + side, x : x + side] = True
    return mask


def test_a_resumed_file_keeps_its_first_frames_and_carries_on_after_them(tmp_path):
    path = tmp_path / "objects.masks"
    with ObjectMasks(path, H, W) as first:
        for i in range(5):
            first.put(i, {0: square(i), 1: square(20 + i, side=3)})
    with ObjectMasks(path, H, W, resume_up_to=3) as resumed:  # frames 3 and 4 tracked again, otherwise
        assert [r.frame for r in resumed.records] == [0, 0, 1, 1, 2, 2]
        for i in (3, 4):
            resumed.put(i, {2: square(30, side=4 + i)})
    with ObjectMasks.open(path, H, W) as written:
        assert [(r.frame, r.object_id) for r in written.records] == [
            (0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1), (3, 2), (4, 2)
        ]  # fmt: skip
        frames = written.by_frame()
        for i in range(3):
            assert np.array_equal(written.union(frames[i]), square(i) | square(20 + i, side=3))
        for i in (3, 4):
            assert np.array_equal(written.union(frames[i]), square(30, side=4 + i))
