"""Faults: a slow model server (deadline), a full disk, a watcher that hangs up, and readers of
status.json racing the writer. Real servers; the only fake is the injected disk-full error."""

from __future__ import annotations

import errno
import json
import os
import threading
import time

from clients.client import VideoEditClient
from orchestrator.config import Settings
from orchestrator.jobs.manager import JobManager
from orchestrator.jobs.store import SqliteJobStore
from orchestrator.media import crop_spool
from orchestrator.models.grpc_client import ModelClient
from orchestrator.request import JobStatus, VideoEditRequest
from tests.helpers import FAST_JOB, wait_for
from videoedit.v1 import video_edit_pb2 as pb


def test_a_slow_model_server_fails_the_job_with_a_clear_deadline_error(stack, make_stack, clip):
    """An orchestrator whose model-call deadline (1 s) is shorter than one Edit batch takes."""
    with make_stack.beside(stack, "slow-models", env={"VIDEOEDIT_MODEL_TIMEOUT_S": "1"}) as slow:
        with VideoEditClient(slow.orchestrator_address) as client:
            client.start_edit(
                str(clip),
                "car",
                "make it red",
                job_id="slow",
                num_inference_steps=40,
                extra={"edit_size": "256", "edit_batch_size": "4"},
            )
            started = time.monotonic()
            final = client.wait("slow")
        assert final.status == pb.JOB_STATUS_FAILED
        assert "DEADLINE_EXCEEDED" in final.error and "VIDEOEDIT_MODEL_TIMEOUT_S=1s" in final.error
        assert time.monotonic() - started < 60


def test_a_full_disk_fails_that_job_only(stack, clip, tmp_path, monkeypatch):
    """Spooling the full job's edited frames hits ENOSPC; a job beside it finishes."""
    real_put = crop_spool.CropSpool.put

    def put(self, index, box, pixels):
        if "/full/" in str(self.path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return real_put(self, index, box, pixels)

    monkeypatch.setattr(crop_spool.CropSpool, "put", put)
    settings = Settings(
        input_roots=(clip.parent,), output_root=tmp_path / "out", model_servers=stack.modelserver_address
    )
    models = ModelClient(settings.model_servers)
    jobs = JobManager(settings, models, SqliteJobStore(settings.job_db_path), max_concurrent_jobs=2)
    try:
        for job_id in ("full", "fine"):
            jobs.start(
                VideoEditRequest(
                    input_video_path=clip,
                    mask_prompt="car",
                    edit_prompt="make it red",
                    job_id=job_id,
                    num_inference_steps=2,
                    extra=FAST_JOB["extra"],
                )
            )
        finals = {
            job_id: wait_for(lambda j=job_id: (s := jobs.get(j)).status.terminal and s, f"job {job_id} to end")
            for job_id in ("full", "fine")
        }
    finally:
        jobs.shutdown()
        jobs.close()
    assert finals["fine"].status is JobStatus.FINISHED
    assert finals["full"].status is JobStatus.FAILED and "no space left on the volume of" in finals["full"].error
    stored = json.loads((tmp_path / "out" / "full" / "status.json").read_text())
    assert stored["status"] == "failed" and not list((tmp_path / "out" / "full").glob("*_output.mp4"))


def test_a_watcher_that_hangs_up_does_not_stop_the_job(client, clip):
    client.start_edit(str(clip), "car", "make it red", job_id="hangup", **FAST_JOB)
    stream = client._stub.WatchStatus(pb.WatchStatusRequest(job_id="hangup"))
    next(stream)
    stream.cancel()
    assert client.wait("hangup").status == pb.JOB_STATUS_FINISHED


def test_status_json_is_never_half_written(client, clip, stack):
    path = stack.output_root / "atomic" / "status.json"
    seen, bad, done = [], [], threading.Event()

    def read_in_a_loop():
        while not done.is_set():
            try:
                seen.append(json.loads(path.read_text())["status"])
            except FileNotFoundError:
                pass
            except json.JSONDecodeError as err:  # a torn write
                bad.append(str(err))

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        client.start_edit(str(clip), "car", "make it red", job_id="atomic", **FAST_JOB)
        assert client.wait("atomic").status == pb.JOB_STATUS_FINISHED
        wait_for(lambda: seen and seen[-1] == "finished", "the reader to see the final status.json")
    finally:
        done.set()
        reader.join()
    assert not bad and len(seen) > 10 and seen[-1] == "finished"
