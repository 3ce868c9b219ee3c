"""Several objects, each with its own instruction, in one job, through the services (tiny models):
the job finishes with one output video and a labelled mask video, says per object what was edited,
and lists each object with the prompt that found it; bad objects get INVALID_ARGUMENT naming the
field."""

from __future__ import annotations

import json

import grpc
import pytest

from clients.client import VideoEditClient
from clients.sample_clip import make_sample_clip
from tests.helpers import decode
from videoedit.v1 import video_edit_pb2 as pb

FRAMES = 12
JOB = dict(num_inference_steps=2, extra={"edit_size": "64", "chunk_size": "8", "chunk_overlap": "2"})
OBJECTS = [
    pb.ObjectEdit(mask_prompt="car", edit_prompt="make it blue"),
    pb.ObjectEdit(mask_prompt="road", edit_prompt="make it pink", instances="largest"),
]


def test_two_objects_with_two_instructions_run_end_to_end(stack, tmp_path):
    clip = make_sample_clip(stack.input_roots[0] / "two-objects.mp4", frames=FRAMES, width=160, height=120)
    with VideoEditClient(stack.orchestrator_address) as client:
        started = client.start_edit(str(clip), "", "", job_id="two-objects", objects=OBJECTS, **JOB)
        assert started.mask_prompt == "car; road" and started.edit_prompt == "make it blue; make it pink"
        final = client.wait("two-objects")
        assert final.status == pb.JOB_STATUS_FINISHED, final.error
        assert "objects[0] 'car': " in final.message and "objects[1] 'road': " in final.message
        assert len(decode(client.download("two-objects", pb.ARTIFACT_OUTPUT_VIDEO, tmp_path))) == FRAMES
        assert len(decode(client.download("two-objects", pb.ARTIFACT_MASK_VIDEO, tmp_path))) == FRAMES
        listing = json.loads(client.download("two-objects", pb.ARTIFACT_OBJECTS, tmp_path).read_text())
    assert listing["mask_prompt"] == "car; road"
    assert {o["prompt"] for o in listing["objects"]} <= {"car", "road"}
    assert len(listing["objects"]) == final.objects_found


@pytest.mark.parametrize(
    "objects, fields, field",
    [
        (OBJECTS, {"extra": {"instances": "2"}}, r"extra\[instances\]"),
        ([pb.ObjectEdit(mask_prompt=f"thing {i}", edit_prompt="red") for i in range(17)], {}, "objects"),
        ([pb.ObjectEdit(mask_prompt="car", edit_prompt="red", instances="most")], {}, r"objects\[0\].instances"),
        ([pb.ObjectEdit(mask_prompt="car", edit_prompt="")], {}, r"objects\[0\].edit_prompt"),
        (OBJECTS, {"mask_prompt": "car"}, "mask_prompt"),
    ],
)
def test_bad_objects_are_invalid_argument_naming_the_field(stack, objects, fields, field):
    clip = make_sample_clip(stack.input_roots[0] / "bad-objects.mp4", frames=2, width=32, height=32)
    values = {"mask_prompt": "", **fields}
    with VideoEditClient(stack.orchestrator_address) as client, pytest.raises(grpc.RpcError) as refused:
        client.start_edit(str(clip), values.pop("mask_prompt"), "", objects=objects, **values)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith(field.replace("\\", "")), refused.value.details()
