"""The orchestrator's Prometheus metrics (`--metrics-port`) follow its jobs."""

from __future__ import annotations

from clients.client import VideoEditClient
from clients.local_stack import free_port
from tests.helpers import FAST_JOB, samples, wait_for
from videoedit.v1 import video_edit_pb2 as pb


def test_jobs_stages_frames_and_endings_are_counted(stack, make_stack, clip):
    port = free_port()
    with make_stack.beside(stack, "metered", orchestrator_args=("--metrics-port", str(port))) as own:
        with VideoEditClient(own.orchestrator_address) as client:
            client.start_edit(str(clip), "car", "make it blue", job_id="metered", **FAST_JOB)
            assert client.wait("metered").status == pb.JOB_STATUS_FINISHED
            client.start_edit(
                str(clip), "car", "make it blue", job_id="one-frame", **FAST_JOB, max_frames=1, mode="single_frame"
            )
            client.wait("one-frame")
        url = f"http://127.0.0.1:{port}/metrics"
        # The job counts are the store's as the claim loop last read them (every 2 s): a scrape
        # never waits on the database.
        found = wait_for(
            lambda: (f := samples(url))[("videoedit_orchestrator_jobs", (("state", "finished"),))] == 2 and f,
            "the job counts to include both jobs",
        )
        assert found[("videoedit_orchestrator_jobs", (("state", "queued"),))] == 0
        assert found[("videoedit_orchestrator_jobs_ended_total", (("status", "finished"),))] == 2
        assert found[("videoedit_orchestrator_queue_wait_seconds_count", ())] == 2
        for stage in ("extracting", "masking", "propagating", "editing", "smoothing", "saving"):
            assert found[("videoedit_orchestrator_stage_seconds_count", (("stage", stage),))] >= 1, stage
        assert found[("videoedit_orchestrator_frames_total", (("stage", "editing"),))] == 12 + 1
