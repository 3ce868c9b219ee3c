"""Segment requests with visual prompts: what decode_segment accepts, and the INVALID_ARGUMENT the
servicer answers for what it refuses (each message naming the field and the bad value)."""

from __future__ import annotations

from types import SimpleNamespace

import grpc
import numpy as np
import pytest

from modelserver.metrics import Metrics
from modelserver.servicer import ModelServicer
from modelserver.validation import InvalidInput, Limits, decode_segment
from videoedit.v1 import contract, wire
from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1.contract import FramePrompt, PromptPoint

FRAME = np.zeros((48, 64, 3), np.uint8)  # 64 wide, 48 high


def request(*prompts: FramePrompt, text: tuple[str, ...] = ("car",), frames: int = 2, first_frame: int | None = None):
    message = pb.SegmentRequest(
        frames=[wire.encode_image(FRAME)] * frames,
        prompts=list(text),
        visual_prompts=[wire.encode_frame_prompt(p) for p in prompts],
    )
    if first_frame is not None:
        message.session.CopyFrom(pb.TrackingSession(id="walk", first_frame=first_frame))
    return message


CLICK = (PromptPoint(10, 10),)


def test_visual_prompts_are_decoded_with_their_frames_counted_in_the_session():
    box = FramePrompt(11, box=(1, 2, 30, 40))
    click = FramePrompt(10, points=(PromptPoint(5, 6, False),), object_id=3)
    call = decode_segment(request(box, click, first_frame=10), Limits())
    assert call.visual_prompts == [box, click]
    assert decode_segment(request(FramePrompt(1, box=(0, 0, 64, 48))), Limits()).visual_prompts[0].frame_index == 1


def test_text_may_be_empty_with_visual_prompts_or_in_a_session():
    assert decode_segment(request(FramePrompt(0, box=(1, 2, 30, 40)), text=()), Limits()).prompts == []
    assert decode_segment(request(text=(), first_frame=0), Limits()).visual_prompts == []
    with pytest.raises(InvalidInput, match="^prompts: at least one prompt is required"):
        decode_segment(request(text=()), Limits())


@pytest.mark.parametrize(
    ("prompts", "first_frame", "expected"),
    [
        (
            (FramePrompt(2, CLICK, object_id=1),),
            None,
            r"visual_prompts\[0\].frame_index: 2 is not one of this call's frames 0-1",
        ),
        (
            (FramePrompt(9, CLICK, object_id=1),),
            10,
            r"visual_prompts\[0\].frame_index: 9 is not one of this call's frames 10-11",
        ),
        (
            (FramePrompt(0, box=(1, 2, 30, 40)), FramePrompt(1, (PromptPoint(65, 10),), object_id=1)),
            None,
            r"visual_prompts\[1\]: points\[0\]: \(65, 10\) is outside the 64x48 frame",
        ),
        ((FramePrompt(0, box=(5, 5, 5, 20)),), None, r"visual_prompts\[0\]: box: \(5, 5, 5, 20\) is not a box"),
        ((FramePrompt(0, CLICK),), None, r"visual_prompts\[0\]: points need an object_id"),
        ((FramePrompt(0),), None, r"visual_prompts\[0\]: has neither points nor a box"),
        ((FramePrompt(0, CLICK, object_id=-1),), None, r"visual_prompts\[0\].object_id: -1 is negative"),
        (
            (
                FramePrompt(0, CLICK, object_id=4),
                FramePrompt(1, CLICK, object_id=4),
                FramePrompt(0, CLICK, object_id=4),
            ),
            None,
            r"visual_prompts\[2\]: object 4 on frame 0 has a prompt already \(visual_prompts\[0\]\)",
        ),
        (
            tuple(FramePrompt(0, box=(1, 2, 30, 40)) for _ in range(contract.MAX_VISUAL_PROMPTS + 1)),
            None,
            r"visual_prompts: 65 prompts; at most 64 per call",
        ),
    ],
)
def test_bad_visual_prompts_are_refused_naming_the_field(prompts, first_frame, expected):
    with pytest.raises(InvalidInput, match=f"^{expected}"):
        decode_segment(request(*prompts, first_frame=first_frame), Limits())


class _Aborted(Exception):
    pass


class _Context:
    """What the servicer uses of a gRPC context."""

    def __init__(self):
        self.code = self.details = None

    def time_remaining(self):
        return None

    def add_callback(self, fn):
        return True

    def abort(self, code, details):
        self.code, self.details = code, details
        raise _Aborted


def test_the_servicer_answers_a_bad_visual_prompt_with_invalid_argument():
    metrics = Metrics()
    servicer = ModelServicer(Limits(), metrics)
    servicer.load(SimpleNamespace(), pb.ModelServerInfo())  # the call is refused before any model runs
    context = _Context()
    with pytest.raises(_Aborted):
        servicer.Segment(request(FramePrompt(5, box=(1, 2, 30, 40))), context)
    assert context.code is grpc.StatusCode.INVALID_ARGUMENT
    assert context.details.startswith("visual_prompts[0].frame_index: 5 is not one of this call's frames 0-1")
    assert (
        metrics.registry.get_sample_value(
            "videoedit_modelserver_requests_total", {"rpc": "Segment", "code": "INVALID_ARGUMENT"}
        )
        == 1
    )
