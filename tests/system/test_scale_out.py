"""Several orchestrators on one PostgreSQL job store (a real server, started by the tests):
workers A and B and an API-only C (--max-concurrent-jobs 0) behind one tiny-model server.
Jobs survive the death of the orchestrator running them (SIGKILL: the lease expires; SIGTERM:
handed back at once), never run twice at the same time, and every RPC works on any
orchestrator for any job. A bad or unreachable database keeps an orchestrator from serving."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import grpc
import psycopg
import pytest

from clients.client import VideoEditClient
from clients.local_stack import free_port, wait_serving
from clients.sample_clip import make_sample_clip
from tests.helpers import FAST_JOB, NO_MASK_CACHE, decode, samples, wait_for
from videoedit.v1 import video_edit_pb2 as pb

LEASE_S = 5  # short, so a killed orchestrator's jobs move on within seconds (and long enough for a busy
# machine's renewals: a job stops on its own 2 s before its lease could run out)
SLOW_JOB = dict(num_inference_steps=24, extra={"edit_size": "128", "chunk_size": "6"})  # seconds on 2 cores
RUNNING = ("extracting", "masking", "propagating", "editing", "smoothing", "saving")
A, B, C = 0, 1, 2


@pytest.fixture(scope="module")
def cluster(make_stack, postgres):
    url = postgres.database("scale_out")
    # Without the mask cache: the jobs here run one input and prompt again and again, and are
    # stopped mid-job; served from the cache they would skip the tracking these tests time around.
    stack = make_stack(
        "scale-out",
        orchestrators=0,
        env={"VIDEOEDIT_JOB_DB": url, "VIDEOEDIT_JOB_LEASE_S": str(LEASE_S), **NO_MASK_CACHE},
    )
    stack.db_url = url
    stack.metrics_ports = [free_port(), free_port()]  # A's and B's Prometheus endpoints
    stack.args = [
        ("--metrics-port", str(stack.metrics_ports[A])),
        ("--metrics-port", str(stack.metrics_ports[B])),
        ("--max-concurrent-jobs", "0"),
    ]  # C: the API only
    with stack:
        for index in (A, B, C):
            stack.orchestrator_addresses.append(f"127.0.0.1:{free_port()}")
            stack.start_orchestrator(index, stack.args[index])
        yield stack


@pytest.fixture(scope="module")
def clip(cluster) -> Path:
    return make_sample_clip(cluster.input_roots[0] / "clip.mp4", frames=12, width=160, height=120)


def client(cluster, index: int) -> VideoEditClient:
    return VideoEditClient(cluster.orchestrator_addresses[index])


def ensure_running(cluster, index: int) -> None:
    process = cluster.processes.get(cluster.orchestrator_name(index))
    if process is None or process.poll() is not None:
        cluster.start_orchestrator(index, cluster.args[index])


def owned_by(cluster, index: int) -> list[str]:
    """Jobs the orchestrator process `index` holds a lease on, in a running stage."""
    pid = cluster.processes[cluster.orchestrator_name(index)].pid
    with psycopg.connect(cluster.db_url) as db:
        rows = db.execute(
            "SELECT job_key FROM jobs WHERE owner LIKE %s AND state = ANY(%s)", (f"%:{pid}:%", list(RUNNING))
        ).fetchall()
    return [r[0] for r in rows]


def runs(log_text: str) -> list[tuple[str, datetime, datetime]]:
    """The job log's stretches of lines by one orchestrator: (orchestrator, first, last line time)."""
    stretches: list[list] = []
    for line in log_text.splitlines():
        found = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \[([^\]]+)\]", line)
        if not found:
            continue  # the request's JSON on the line after "started"
        when, who = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f"), found[2]
        if stretches and stretches[-1][0] == who:
            stretches[-1][2] = when
        else:
            stretches.append([who, when, when])
    return [tuple(s) for s in stretches]


def check_finished_once_at_a_time(cluster, job_ids: list[str], frames: int) -> dict[str, list]:
    """Every job FINISHED (asked on B), its video whole, no scratch left, and its runs one after
    another: no orchestrator wrote to a job's log after another had started it again."""
    stretches = {}
    with client(cluster, B) as b:
        for job_id in job_ids:
            final = b.wait(job_id)
            assert final.status == pb.JOB_STATUS_FINISHED, (job_id, final.error)
            assert len(decode(Path(final.output_video_path))) == frames
            out = Path(final.output_dir)
            assert not list(out.glob(".work-*")) and not list(out.glob(".status.*"))
            stretches[job_id] = found = runs(Path(final.logs_path).read_text())
            owners = [who for who, _, _ in found]
            assert len(owners) == len(set(owners)), f"{job_id}: runs interleave: {found}"
            for (_, _, last), (_, first, _) in zip(found, found[1:]):
                assert last <= first, f"{job_id}: two orchestrators ran it at once: {found}"
    return stretches


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_jobs_survive_the_orchestrator_running_them(cluster, clip, signal_name):
    ensure_running(cluster, A)
    job_ids = [f"{signal_name.lower()}-{i}" for i in range(6)]
    with client(cluster, A) as a:
        for job_id in job_ids:
            a.start_edit(str(clip), "car", "make it red", job_id=job_id, **SLOW_JOB)
    victim = wait_for(lambda: owned_by(cluster, A), "orchestrator A to run a job")[0]
    process = cluster.processes[cluster.orchestrator_name(A)]
    process.send_signal(getattr(signal, signal_name))
    assert process.wait(60) == (0 if signal_name == "SIGTERM" else -signal.SIGKILL)
    stretches = check_finished_once_at_a_time(cluster, job_ids, frames=12)
    who = [w for w, _, _ in stretches[victim]]
    assert len(who) == 2 and who[0] != who[1], f"{victim} was running on A, then again on B: {stretches[victim]}"
    log = Path(cluster.output_root / victim / f"{victim}_log.txt").read_text()
    assert "attempt 2" in log
    if signal_name == "SIGTERM":  # handed back at its next checkpoint, not left to expire
        assert "interrupted by a server shutdown" in log
    else:
        assert "lease expired" in cluster.log_path(cluster.orchestrator_name(B)).read_text()
        url = f"http://127.0.0.1:{cluster.metrics_ports[B]}/metrics"
        found = samples(url)
        assert found[("videoedit_orchestrator_lease_expiries_total", ())] >= 1
        assert found[("videoedit_orchestrator_lease_renewals_total", ())] > 0
        wait_for(  # the whole store, as the claim loop last counted it (every 2 s)
            lambda: samples(url)[("videoedit_orchestrator_jobs", (("state", "finished"),))] >= len(job_ids),
            "the metrics to count every finished job",
        )


def test_any_orchestrator_answers_for_any_job(cluster, clip, tmp_path):
    """Started on A, watched and downloaded on C (which runs no jobs, so every change it streams
    came through the database), listed and idempotently re-submitted on B."""
    ensure_running(cluster, A)
    with client(cluster, A) as a, client(cluster, B) as b, client(cluster, C) as c:
        a.start_edit(str(clip), "car", "make it blue", job_id="seen-elsewhere", **FAST_JOB)
        stages = [pb.JobStatus.Name(s.status) for s in c.watch("seen-elsewhere")]
        assert stages[-1] == "JOB_STATUS_FINISHED"
        wanted = ["JOB_STATUS_" + s.upper() for s in RUNNING]
        assert [s for s in dict.fromkeys(stages) if s in wanted] == wanted, stages  # every stage, in order
        artifact = c.download("seen-elsewhere", pb.ARTIFACT_OUTPUT_VIDEO, tmp_path)
        assert artifact.read_bytes() == Path(a.get_status("seen-elsewhere").output_video_path).read_bytes()
        assert "seen-elsewhere" in {s.job_id for s in b.list_jobs().jobs}
        again = b.start_edit(str(clip), "car", "make it blue", job_id="seen-elsewhere", **FAST_JOB)
        assert again.status == pb.JOB_STATUS_FINISHED  # idempotent across orchestrators
        with pytest.raises(grpc.RpcError) as refused:
            c.start_edit(str(clip), "car", "make it green", job_id="seen-elsewhere", **FAST_JOB)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_a_job_is_cancelled_from_an_orchestrator_that_does_not_run_it(cluster, clip):
    ensure_running(cluster, A)
    with client(cluster, A) as a, client(cluster, C) as c:
        a.start_edit(str(clip), "car", "make it red", job_id="cancel-elsewhere", **SLOW_JOB)
        wait_for(
            lambda: pb.JobStatus.Name(c.get_status("cancel-elsewhere").status).lower().endswith(RUNNING),
            "the job to start",
        )
        c.cancel("cancel-elsewhere")
        final = c.wait("cancel-elsewhere")
    assert final.status == pb.JOB_STATUS_CANCELLED


@pytest.mark.parametrize(
    "url, says",
    [
        (
            "postgresql://videoedit:s3cret@127.0.0.1:1/jobs",
            "cannot use the job database PostgreSQL videoedit@127.0.0.1:1/jobs (VIDEOEDIT_JOB_DB): connection failed",
        ),
        ("mysql://videoedit@db/jobs", "VIDEOEDIT_JOB_DB mysql://... is not supported"),
    ],
)
def test_a_bad_job_database_keeps_the_orchestrator_from_serving(cluster, tmp_path, url, says):
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "VIDEOEDIT_JOB_DB": url,
        "VIDEOEDIT_MODEL_SERVERS": cluster.modelserver_address,
        "UR_EDIT_OUTPUT_DIR": str(tmp_path / "outputs"),
        "VIDEOEDIT_INPUT_ROOTS": str(tmp_path / "media"),
    }
    log_path = tmp_path / "orchestrator.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    with pytest.raises(RuntimeError, match="exited with 2"):
        wait_serving(address, "videoedit.v1.VideoEditService", 60, process, log_path)
    text = log_path.read_text()
    assert says in text and "s3cret" not in text and "Traceback" not in text, text
