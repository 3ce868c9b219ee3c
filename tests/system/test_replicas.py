"""Two model-server replicas behind one orchestrator (VIDEOEDIT_MODEL_SERVERS as a list): a
replica killed mid-job costs retries, not the job (the one holding the job's tracking session
too: tracking goes on in a new session on the other); with the last one gone the job goes back
to the queue promptly, saying why, and finishes once a replica is back."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.client import VideoEditClient
from clients.sample_clip import make_sample_clip
from tests.helpers import NO_MASK_CACHE, wait_for_stage
from videoedit.v1 import video_edit_pb2 as pb

JOB = dict(num_inference_steps=15, extra={"edit_size": "128", "chunk_size": "4", "edit_batch_size": "2"})


@pytest.fixture(scope="module")
def stack(make_stack):
    with make_stack("replicas", replicas=2, env=NO_MASK_CACHE) as running:
        yield running


def kill_when(client, job_id: str, stack, replica: int, status: int) -> None:
    wait_for_stage(client, job_id, status)
    process = stack.processes[stack.modelserver_name(replica)]
    process.kill()
    process.wait()


@pytest.mark.parametrize("stage", [pb.JOB_STATUS_PROPAGATING, pb.JOB_STATUS_EDITING], ids=["mid-Segment", "mid-Edit"])
def test_a_replica_killed_mid_job_costs_a_retry_not_the_job(stack, stage):
    clip = make_sample_clip(stack.input_roots[0] / "clip.mp4", frames=16, width=160, height=120)
    job_id = f"survives-{pb.JobStatus.Name(stage).lower()}"
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "make it blue", job_id=job_id, **JOB)
        kill_when(client, job_id, stack, replica=0, status=stage)
        final = client.wait(job_id)
        assert final.status == pb.JOB_STATUS_FINISHED, final.error
    stack.start_modelserver(0)  # back to two replicas for the next test


def tracking_sessions(stack, replica: int) -> float:
    text = urllib.request.urlopen(f"http://{stack.metrics_addresses[replica]}/metrics", timeout=10).read().decode()
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "videoedit_modelserver_tracking_sessions"
    )


def test_killing_the_replica_that_holds_the_tracking_session_restarts_tracking_on_the_other(stack):
    clip = make_sample_clip(stack.input_roots[0] / "long.mp4", frames=120, width=160, height=120)
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(
            str(clip),
            "car",
            "make it blue",
            job_id="session-lost",
            **{**JOB, "num_inference_steps": 1, "extra": {**JOB["extra"], "edit_size": "64"}},
        )
        wait_for_stage(client, "session-lost", pb.JOB_STATUS_PROPAGATING)
        holder = next(r for r in (0, 1) if tracking_sessions(stack, r) == 1)
        stack.processes[stack.modelserver_name(holder)].kill()
        final = client.wait("session-lost")
        assert final.status == pb.JOB_STATUS_FINISHED, final.error
        log = Path(final.logs_path).read_text()
        assert "tracking starts again in a new session" in log and "1 tracking restart(s)" in log
        assert tracking_sessions(stack, 1 - holder) == 0  # closed when propagating ended
    stack.start_modelserver(holder)


def test_with_no_replica_left_the_job_is_queued_again_promptly_and_finishes_when_one_is_back(stack):
    clip = stack.input_roots[0] / "clip.mp4"
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "make it blue", job_id="stranded", **JOB)
        wait_for_stage(client, "stranded", pb.JOB_STATUS_EDITING)
        for replica in (0, 1):
            stack.processes[stack.modelserver_name(replica)].kill()
        killed = time.monotonic()
        waiting = wait_for_stage(client, "stranded", pb.JOB_STATUS_QUEUED)
        assert time.monotonic() - killed < 60  # the channel's retries, then handed back: an outage to wait out
        assert "model-server outage" in waiting.message and "UNAVAILABLE" in waiting.message
        assert client.list_jobs().jobs  # the service itself is fine
        stack.start_modelserver(0)
        final = client.wait("stranded")
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
