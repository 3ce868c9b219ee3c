"""Jobs outlive the orchestrator: killed or shut down mid-job, it re-runs what was queued or
running on the next start, from the SQLite job store, and keeps listing finished jobs. (Several
orchestrators sharing PostgreSQL: tests/system/test_scale_out.py.)"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from clients.client import VideoEditClient
from clients.sample_clip import make_sample_clip
from tests.helpers import FAST_JOB, wait_for_stage
from videoedit.v1 import video_edit_pb2 as pb

SLOW_JOB = dict(num_inference_steps=40, extra={"edit_size": "128", "chunk_size": "6"})  # seconds on 2 cores


@pytest.fixture(scope="module")
def stack(make_stack):
    with make_stack("restart") as running:
        yield running


@pytest.fixture(scope="module")
def clip(stack) -> Path:
    return make_sample_clip(stack.input_roots[0] / "clip.mp4", frames=12, width=160, height=120)


RUNNING = (pb.JOB_STATUS_PROPAGATING, pb.JOB_STATUS_EDITING)


def test_killed_orchestrator_reruns_running_and_queued_jobs_and_keeps_finished_ones(stack, clip):
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "make it blue", job_id="done-before", **FAST_JOB)
        assert client.wait("done-before").status == pb.JOB_STATUS_FINISHED
        client.start_edit(str(clip), "car", "make it blue", job_id="running", **SLOW_JOB)
        client.start_edit(str(clip), "car", "make it green", job_id="queued", **FAST_JOB)
        wait_for_stage(client, "running", *RUNNING)
    stack.processes["orchestrator"].kill()  # SIGKILL: no chance to clean up
    stack.processes["orchestrator"].wait()
    stack.start_orchestrator()
    with VideoEditClient(stack.orchestrator_address) as client:
        assert client.get_status("done-before").status == pb.JOB_STATUS_FINISHED
        for job_id in ("running", "queued"):
            final = client.wait(job_id)
            assert final.status == pb.JOB_STATUS_FINISHED, final.error
            assert Path(final.output_video_path).is_file()
        assert not list(Path(client.get_status("running").output_dir).glob(".work-*"))  # scratch cleaned up
        listed = {s.job_id: s.status for s in client.list_jobs().jobs}
        assert listed == {
            "done-before": pb.JOB_STATUS_FINISHED,
            "running": pb.JOB_STATUS_FINISHED,
            "queued": pb.JOB_STATUS_FINISHED,
        }
    # The killed process held the running job's lease; the restart on the same machine ends it
    # at once instead of waiting it out. The queued job was never claimed: it just runs.
    assert "re-queued 1 job(s) left unfinished by" in stack.log_path("orchestrator").read_text()


def test_shutdown_interrupts_a_running_job_which_reruns_after_the_restart(stack, clip):
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "make it red", job_id="interrupted", **SLOW_JOB)
        output_dir = Path(wait_for_stage(client, "interrupted", *RUNNING).output_dir)
    process = stack.processes["orchestrator"]
    process.send_signal(signal.SIGTERM)
    code = process.wait(60)
    log_tail = stack.log_path("orchestrator").read_text()[-3000:]
    assert code == 0, log_tail
    stored = json.loads((output_dir / "status.json").read_text())
    assert stored["status"] == "queued" and "interrupted by a server shutdown" in stored["message"], (stored, log_tail)
    stack.start_orchestrator()
    with VideoEditClient(stack.orchestrator_address) as client:
        final = client.wait("interrupted")
        assert final.status == pb.JOB_STATUS_FINISHED, final.error
