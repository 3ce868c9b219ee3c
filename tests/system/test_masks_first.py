"""Masks first, masks reused, through the services (tiny models): a masks job lists its objects,
then edit jobs on its masks send the model server no Segment call (its own counters say so); the
mask cache serves a second job on the same input and prompt across two orchestrators sharing
PostgreSQL; bad reuse requests get INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import grpc
import pytest

from clients.client import VideoEditClient
from clients.local_stack import free_port
from clients.sample_clip import make_sample_clip
from tests.helpers import samples
from videoedit.v1 import video_edit_pb2 as pb

FRAMES = 16
JOB = dict(num_inference_steps=2, extra={"edit_size": "64", "chunk_size": "8", "chunk_overlap": "2"})


def segment_frames(metrics_address: str) -> float:
    """Frames the model server has segmented so far."""
    found = samples(f"http://{metrics_address}/metrics")
    return found.get(("videoedit_modelserver_items_total", (("model", "segment"),)), 0.0)


def edit(client: VideoEditClient, clip: Path, job_id: str, edit_prompt: str, **extra: str) -> pb.VideoEditStatus:
    client.start_edit(
        str(clip), "", edit_prompt, job_id=job_id, num_inference_steps=2, extra={"edit_size": "64", **extra}
    )
    return client.wait(job_id)


@pytest.fixture(scope="module")
def clip(stack) -> Path:
    return make_sample_clip(stack.input_roots[0] / "masks-first.mp4", frames=FRAMES, width=160, height=120)


@pytest.fixture(scope="module")
def found(stack, clip) -> pb.VideoEditStatus:
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "", job_id="find-car", mode="masks", **JOB)
        final = client.wait("find-car")
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    return final


def test_a_masks_job_lists_its_objects_with_previews_to_download(stack, found, tmp_path):
    assert found.mode == "masks" and not found.output_video_path and found.HasField("objects_found")
    assert f"{found.objects_found} object(s) found" in found.message
    with VideoEditClient(stack.orchestrator_address) as client:
        listing = json.loads(client.download("find-car", pb.ARTIFACT_OBJECTS, tmp_path).read_text())
        assert listing["job_id"] == "find-car" and listing["frames"] == FRAMES
        assert [o["id"] for o in listing["objects"]] and len(listing["objects"]) == found.objects_found
        for obj in listing["objects"]:
            preview = client.download("find-car", pb.ARTIFACT_OBJECT_PREVIEW, tmp_path, object_id=obj["id"])
            assert cv2.imread(str(preview)).shape == (120, 160, 3)
            assert len(obj["boxes"]) == obj["frame_count"] and obj["best_frame"] in [b[0] for b in obj["boxes"]]
        missing = max(o["id"] for o in listing["objects"]) + 1
        with pytest.raises(grpc.RpcError) as err:
            client.download("find-car", pb.ARTIFACT_OBJECT_PREVIEW, tmp_path, object_id=missing)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and f"object {missing}" in err.value.details()
        mask = client.download("find-car", pb.ARTIFACT_MASK_VIDEO, tmp_path)
        assert mask.stat().st_size > 0


def test_three_edits_on_the_masks_job_send_no_segment_call(stack, clip, found):
    before = segment_frames(stack.metrics_address)
    with VideoEditClient(stack.orchestrator_address) as client:
        finals = [
            edit(client, clip, f"attempt-{i}", prompt, masks_from="find-car")
            for i, prompt in enumerate(("make it blue", "make it red", "make it gold"))
        ]
    assert [f.status for f in finals] == [pb.JOB_STATUS_FINISHED] * 3, [f.error for f in finals]
    assert segment_frames(stack.metrics_address) == before
    log = Path(finals[0].logs_path).read_text()
    assert "masks: reused from job 'find-car'" in log and "no Segment call" in log
    assert all(Path(f.output_video_path).stat().st_size > 0 and f.objects_found == found.objects_found for f in finals)


@pytest.mark.parametrize(
    "extra, field, words",
    [
        ({"masks_from": "no-such-job"}, "extra[masks_from]", "there is no job 'no-such-job'"),
        ({"masks_from": "find-car", "objects": "99"}, "extra[objects]", "has no object 99"),
        ({"masks_from": "find-car", "objects": ","}, "extra[objects]", "must be object ids"),
        ({"masks_from": "find-car", "objects": ",".join(map(str, range(1, 18)))}, "extra[objects]", "at most 16"),
        ({"objects": "1"}, "extra[objects]", "name that job too"),
    ],
)
def test_bad_reuse_requests_are_invalid_arguments_naming_the_field(stack, clip, found, extra, field, words):
    with VideoEditClient(stack.orchestrator_address) as client, pytest.raises(grpc.RpcError) as err:
        client.start_edit(str(clip), "car", "make it blue", extra=extra)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details() and words in err.value.details(), err.value.details()


def test_masks_of_another_input_are_refused(stack, found):
    other = make_sample_clip(stack.input_roots[0] / "masks-other.mp4", frames=FRAMES, width=160, height=120, pan=2)
    with VideoEditClient(stack.orchestrator_address) as client, pytest.raises(grpc.RpcError) as err:
        client.start_edit(str(other), "", "make it blue", extra={"masks_from": "find-car"})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "extra[masks_from]" in err.value.details() and "another input" in err.value.details()


@pytest.fixture(scope="module")
def cluster(make_stack, postgres):
    """Orchestrators A and B on one PostgreSQL store and one output volume (the mask cache's)."""
    stack = make_stack("masks-pg", orchestrators=0, env={"VIDEOEDIT_JOB_DB": postgres.database("masks")})
    with stack:
        for index in (0, 1):
            stack.orchestrator_addresses.append(f"127.0.0.1:{free_port()}")
            stack.start_orchestrator(index)
        yield stack


def test_the_mask_cache_serves_a_second_job_on_another_orchestrator(cluster):
    clip = make_sample_clip(cluster.input_roots[0] / "cached.mp4", frames=FRAMES, width=160, height=120)
    with VideoEditClient(cluster.orchestrator_addresses[0]) as client:
        client.start_edit(str(clip), "car", "make it blue", job_id="cache-first", **JOB)
        first = client.wait("cache-first")
    assert first.status == pb.JOB_STATUS_FINISHED, first.error
    before = segment_frames(cluster.metrics_address)
    with VideoEditClient(cluster.orchestrator_addresses[1]) as client:
        client.start_edit(str(clip), "car", "make it green", job_id="cache-second", **JOB)
        second = client.wait("cache-second")
    assert second.status == pb.JOB_STATUS_FINISHED, second.error
    assert segment_frames(cluster.metrics_address) == before
    log = Path(second.logs_path).read_text()
    assert "masks: reused from the mask cache (tracked by job 'cache-first')" in log
    with VideoEditClient(cluster.orchestrator_addresses[1]) as client:
        client.start_edit(str(clip), "a car", "make it green", job_id="cache-other-prompt", **JOB)
        other = client.wait("cache-other-prompt")
    assert other.status == pb.JOB_STATUS_FINISHED, other.error
    assert segment_frames(cluster.metrics_address) > before
