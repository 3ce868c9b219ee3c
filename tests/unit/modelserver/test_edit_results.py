"""Edited crops kept by what they were computed from: a crop sent again (the job of a killed
orchestrator, resumed) comes back without being denoised twice, even when the call that first
asked for it was cancelled while its batch ran; anything that changes the result changes the key."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from modelserver.batching import ClientCancelled
from modelserver.edit_results import EditResults, item_key
from modelserver.validation import EditCall
from tests.helpers import EVENT_TIMEOUT_S
from tests.unit.modelserver.test_batching import Editor, edit_engine
from videoedit.v1.contract import EditParams

FAST = EditParams(1.5, 7.5, 2)


def crop(value: int = 0, side: int = 16) -> np.ndarray:
    return np.full((side, side, 3), value, np.uint8)


def test_the_key_changes_with_everything_the_result_depends_on():
    base = item_key(crop(), "x", 1, FAST)
    assert item_key(crop(), "x", 1, FAST) == base
    for other in (
        item_key(crop(1), "x", 1, FAST),
        item_key(crop(side=24), "x", 1, FAST),
        item_key(crop(), "y", 1, FAST),
        item_key(crop(), "x", 2, FAST),
        item_key(crop(), "x", 1, EditParams(1.5, 7.5, 3)),
        item_key(crop(), "x", 1, FAST, anchor=base),
    ):
        assert other != base


def test_results_are_bounded_least_recently_used_out_and_read_only():
    results = EditResults(max_bytes=3 * crop().nbytes)
    for i in range(3):
        results.put(bytes([i]), crop(i))
    assert results.get(bytes([0])) is not None  # used: kept over 1
    results.put(bytes([3]), crop(3))
    assert results.get(bytes([1])) is None and results.get(bytes([0])) is not None
    with pytest.raises(ValueError):
        results.get(bytes([0]))[0, 0, 0] = 9
    EditResults(max_bytes=10).put(b"big", crop())  # larger than the bound: not kept, no error


def test_a_crop_sent_again_is_not_edited_again_and_only_the_new_ones_are():
    editor = Editor()
    engine = edit_engine(editor, max_delay_ms=0)
    try:
        first = engine.edit(EditCall([crop(1), crop(2)], "x", FAST, [5, 6]))
        again = engine.edit(EditCall([crop(1), crop(3)], "x", FAST, [5, 7]))
    finally:
        engine.close()
    assert [b[1] for b in editor.batches] == [[5, 6], [7]]  # only the new crop computed
    assert np.array_equal(again[0], first[0]) and int(again[1][0, 0, 0]) == 7
    assert engine.metrics.registry.get_sample_value("videoedit_modelserver_edit_results_reused_total") == 1


def test_the_batch_of_a_call_whose_client_left_is_kept_for_the_call_sent_again():
    class Slow(Editor):
        def __init__(self):
            super().__init__()
            self.running, self.release = threading.Event(), threading.Event()

        def edit(self, images, instructions, params, *, seeds, anchors=None):
            self.running.set()
            assert self.release.wait(EVENT_TIMEOUT_S)
            return super().edit(images, instructions, params, seeds=seeds, anchors=anchors)

    editor = Slow()
    engine = edit_engine(editor, max_delay_ms=0)
    cancels: list = []
    outcome: list = []

    def killed_client() -> None:
        try:
            engine.edit(EditCall([crop(4)], "x", FAST, [9]), on_cancel=cancels.append)
        except ClientCancelled as err:
            outcome.append(err)

    try:
        thread = threading.Thread(target=killed_client)
        thread.start()
        assert editor.running.wait(EVENT_TIMEOUT_S)
        cancels[0]()  # the orchestrator died while its batch ran
        thread.join(EVENT_TIMEOUT_S)
        editor.release.set()
        engine.edit(EditCall([crop(5)], "x", FAST, [1]))  # waits for the worker: the first batch is done
        resent = engine.edit(EditCall([crop(4)], "x", FAST, [9]))  # the resumed job's call
    finally:
        engine.close()
    assert outcome and len(editor.batches) == 2 and int(resent[0][0, 0, 0]) == 9


def test_none_kept_when_turned_off():
    editor = Editor()
    engine = edit_engine(editor, max_delay_ms=0, edit_results_bytes=0)
    try:
        for _ in range(2):
            engine.edit(EditCall([crop(1)], "x", FAST, [5]))
    finally:
        engine.close()
    assert len(editor.batches) == 2
