"""Visual prompts through the SAM3 backend, on the tiny random-weight model (the real from_pretrained
and tracking path on CPU): box exemplars reach the detector on their frame, points start or
correct an object in the tracker, and prompted objects outlive the hotstart heuristics.

Random weights give meaningless masks: these tests check which objects exist where, and which
masks change or stay equal against the same call without the prompt, never what is segmented.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from modelserver.backends import PromptKind  # noqa: E402
from modelserver.backends.sam3 import Sam3Segmenter  # noqa: E402
from modelserver.backends.sam3_prompts import SessionPrompts, point_inputs  # noqa: E402
from modelserver.engine import BatchingConfig, ModelEngine  # noqa: E402
from modelserver.metrics import Metrics  # noqa: E402
from modelserver.validation import SegmentCall  # noqa: E402
from videoedit.v1.contract import FramePrompt, PromptPoint  # noqa: E402

from . import moving_rectangle  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_backends: tiny models are much faster so on a shared box
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def segmenter(model_cache) -> Sam3Segmenter:
    return Sam3Segmenter.from_pretrained(model_cache / "tiny" / "tiny-sam3")


@pytest.fixture
def geometry_boxes(segmenter, monkeypatch) -> list[int]:
    """How many boxes each call of the detector's geometry encoder was given."""
    encoder = segmenter.model.detector_model.geometry_encoder
    plain, calls = encoder.forward, []

    def forward(*, box_embeddings, **kwargs):
        calls.append(box_embeddings.shape[1])
        return plain(box_embeddings=box_embeddings, **kwargs)

    monkeypatch.setattr(encoder, "forward", forward)
    return calls


def by_id(frame) -> dict[int, np.ndarray]:
    return {inst.object_id: inst.mask for inst in frame}


def test_tracker_prompts_are_scaled_to_the_models_square_box_corners_first():
    prompt = FramePrompt(0, (PromptPoint(64, 48), PromptPoint(0, 96, positive=False)), (0, 0, 128, 96), object_id=1)
    inputs = point_inputs(prompt, width=128, height=96, image_size=112, device="cpu")
    # pixel edges -> the encoder's pixel indices (it adds 0.5): the frame's corners are -0.5 and 111.5
    expected = [[-0.5, -0.5], [111.5, 111.5], [55.5, 55.5], [-0.5, 111.5]]
    torch.testing.assert_close(inputs["point_coords"], torch.tensor([[expected]]))
    assert inputs["point_labels"].tolist() == [[[2, 3, 1, 0]]]


def test_a_box_exemplar_goes_to_the_detector_on_its_frame_only(segmenter, geometry_boxes):
    kinds: list[PromptKind] = []
    frames = moving_rectangle(4)
    result = segmenter.segment(
        frames, ["car"], visual_prompts=[FramePrompt(2, box=(16, 24, 80, 72))], on_prompt=kinds.append
    )
    assert len(result) == 4 and kinds == [PromptKind.EXEMPLAR]
    assert geometry_boxes == [0, 0, 1, 0]  # one text prompt: one detector call a frame


def test_exemplar_boxes_are_normalized_center_and_size(segmenter, monkeypatch):
    seen = []
    encoder = segmenter.model.detector_model.geometry_encoder
    plain = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda **kw: seen.append(kw["box_embeddings"].clone()) or plain(**kw))
    segmenter.segment(moving_rectangle(1), ["car"], visual_prompts=[FramePrompt(0, box=(16, 24, 80, 72))])
    # 128x96 frame: center (48, 48) and size 64x48 in pixels
    torch.testing.assert_close(seen[0], torch.tensor([[[0.375, 0.5, 0.5, 0.5]]]))


def test_without_text_an_exemplar_is_detected_with_the_visual_prompt_on_its_frame_only(segmenter, geometry_boxes):
    frames = moving_rectangle(4)
    result = segmenter.segment(frames, [], visual_prompts=[FramePrompt(1, box=(16, 24, 80, 72))])
    assert geometry_boxes == [1]  # no detection at all on the other frames
    assert result[0] == []  # nothing before the exemplar's frame
    found = {inst.object_id for frame in result for inst in frame}
    assert found and all(inst.prompt == "" for frame in result for inst in frame)


def test_a_point_with_a_new_id_starts_an_object_tracked_on_over_later_calls(segmenter, geometry_boxes):
    kinds: list[PromptKind] = []
    frames = moving_rectangle(6)
    session = segmenter.open_session([])  # no text: the objects come from visual prompts, later
    assert segmenter.track(session, frames[:1]) == [[]]  # no objects before them
    prompted = segmenter.track(
        session,
        frames[1:3],
        # frame 2 of the session: the second frame of this call
        visual_prompts=[FramePrompt(2, (PromptPoint(40, 45),), object_id=7)],
        on_prompt=kinds.append,
    )
    later = segmenter.track(session, frames[3:])
    assert kinds == [PromptKind.NEW_OBJECT]
    assert geometry_boxes == []  # the detector never ran
    assert prompted[0] == []  # before its prompt the object does not exist
    for frame in prompted[1:] + later:
        assert [(inst.object_id, inst.prompt) for inst in frame] == [(7, "")]


def prompted_object_track(segmenter) -> tuple[list[bool], object]:
    """Object 50 started by a click on frame 0 of a text session: whether each of 10 frames has it.
    The detector never matches it (it is no text prompt's object), so upstream's hotstart would
    remove it after `hotstart_unmatch_thresh` (8) unmatched frames, and hide it on every frame."""
    session = segmenter.open_session(["car"])
    result = segmenter.track(
        session, moving_rectangle(10), visual_prompts=[FramePrompt(0, (PromptPoint(40, 45),), object_id=50)]
    )
    return [50 in by_id(frame) for frame in result], session.state


def test_a_prompted_object_outlives_the_hotstart_heuristics(segmenter, monkeypatch):
    present, state = prompted_object_track(segmenter)
    assert all(present)
    assert 50 in state.obj_ids and 50 not in state.removed_obj_ids and 50 not in state.hotstart_removed_obj_ids
    assert not state.unmatched_frame_inds.get(50)  # never counted as unmatched
    assert state.max_obj_id >= 50  # detections get new ids above it
    # the same object unprotected is removed: the heuristics would apply here
    monkeypatch.setattr(SessionPrompts, "protected", lambda self, state, obj_id: False)
    present, state = prompted_object_track(segmenter)
    assert not any(present) and 50 in state.hotstart_removed_obj_ids


def test_a_correction_changes_the_object_from_its_frame_on_and_not_before(segmenter):
    frames = moving_rectangle(6)
    plain = segmenter.segment(frames, ["car"])
    corrected_id = next(i for i in by_id(plain[0]) if all(i in by_id(f) for f in plain))  # on every frame
    kinds: list[PromptKind] = []
    click = FramePrompt(3, (PromptPoint(40, 45), PromptPoint(5, 5, positive=False)), object_id=corrected_id)
    corrected = segmenter.segment(frames, ["car"], visual_prompts=[click], on_prompt=kinds.append)
    assert kinds == [PromptKind.CORRECTION]
    for before, after in zip(plain[:3], corrected[:3], strict=True):
        assert [(i.object_id, i.prompt, i.box) for i in before] == [(i.object_id, i.prompt, i.box) for i in after]
        assert all(np.array_equal(a.mask, b.mask) for a, b in zip(before, after, strict=True))
    assert not np.array_equal(by_id(plain[3])[corrected_id], by_id(corrected[3])[corrected_id])
    prompts = {i.object_id: i.prompt for frame in corrected for i in frame}
    assert prompts[corrected_id] == "car"  # a corrected object keeps its text prompt


def test_the_frame_of_a_correction_becomes_the_objects_conditioning_frame(segmenter):
    frames = moving_rectangle(4)
    session = segmenter.open_session(["car"])
    segmenter.track(session, frames[:2])
    obj_id = session.state.obj_ids[0]
    segmenter.track(session, frames[2:], visual_prompts=[FramePrompt(2, box=(10, 20, 70, 70), object_id=obj_id)])
    outputs = session.state.output_dict_per_obj[session.state.obj_id_to_idx(obj_id)]
    assert 2 in outputs["cond_frame_outputs"] and 2 not in outputs["non_cond_frame_outputs"]
    assert 3 in outputs["non_cond_frame_outputs"]  # tracked on from it


def test_visual_prompts_off_the_calls_frames_are_refused_before_tracking(segmenter):
    session = segmenter.open_session(["car"])
    segmenter.track(session, moving_rectangle(2))
    with pytest.raises(ValueError, match=r"visual_prompts\[0\].frame_index: 1 is not one of this call's frames 2-3"):
        segmenter.track(session, moving_rectangle(2), visual_prompts=[FramePrompt(1, box=(1, 2, 30, 40))])
    assert session.frames_seen == 2
    with pytest.raises(ValueError, match="needs a text prompt or a visual prompt"):
        segmenter.segment(moving_rectangle(1), [])


def test_the_engine_counts_visual_prompts_by_kind_and_logs_them(segmenter, caplog):
    metrics = Metrics()
    engine = ModelEngine(segmenter, None, BatchingConfig(), metrics)  # type: ignore[arg-type]
    prompts = [
        FramePrompt(0, box=(16, 24, 80, 72)),
        FramePrompt(1, box=(16, 24, 80, 72)),
        FramePrompt(1, (PromptPoint(40, 45),), object_id=90),
    ]
    try:
        with caplog.at_level(logging.INFO, logger="modelserver.engine"):
            found = engine.segment(SegmentCall(moving_rectangle(3), [], visual_prompts=prompts))
    finally:
        engine.close()
    assert any(inst.object_id == 90 for inst in found[1])

    def count(kind: str) -> float | None:
        return metrics.registry.get_sample_value("videoedit_modelserver_visual_prompts_total", {"kind": kind})

    assert (count("exemplar"), count("new_object"), count("correction")) == (2, 1, None)
    assert "3 visual prompts in a call without a session (exemplar 2, correction 0, new_object 1)" in caplog.text
