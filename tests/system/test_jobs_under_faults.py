"""Jobs under faults, with real processes on loopback and a real PostgreSQL: an orchestrator cut
off from the database (a TCP proxy that silently stops forwarding) stops its jobs before another
orchestrator takes them, and nothing of it lands after; the database restarted again and again
never re-runs a finished job; a model server down for a while is waited out; a full volume
fails one job, once, and StartEdit says which volume."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg.conninfo import conninfo_to_dict

from clients.client import VideoEditClient
from clients.local_stack import free_port
from clients.sample_clip import make_sample_clip
from orchestrator.api.server import CLAIMS_SERVICE
from tests.helpers import CLIP_FRAMES, FAST_JOB, NO_MASK_CACHE, decode, samples, wait_for
from tests.proxy import Proxy
from videoedit.v1 import contract
from videoedit.v1 import video_edit_pb2 as pb

LEASE_S = 6  # short, so the partition test's leases run out within seconds; a job stops 2 s before
SLOW_JOB = dict(num_inference_steps=16, extra={"edit_size": "128", "chunk_size": "6", "edit_batch_size": "2"})
STAGE_ORDER = ["queued", *contract.STAGE_NAMES, "finished"]


def health(address: str, service: str = "") -> str:
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def through(proxy: Proxy, url: str) -> str:
    """The database of `url`, reached through the proxy."""
    return f"postgresql://postgres@{proxy.address}/{conninfo_to_dict(url)['dbname']}"


def log_runs(log_text: str) -> list[tuple[str, str, str]]:
    """The job log's stretches of lines by one orchestrator: (orchestrator, first, last line time)."""
    stretches: list[list[str]] = []
    for found in re.finditer(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \[([^\]]+)\]", log_text, re.M):
        when, who = found[1], found[2]
        if stretches and stretches[-1][0] == who:
            stretches[-1][2] = when
        else:
            stretches.append([who, when, when])
    return [tuple(s) for s in stretches]


def jobs_counted(metrics_port: int) -> float:
    """The jobs an orchestrator's /metrics counts, in every state."""
    found = samples(f"http://127.0.0.1:{metrics_port}/metrics")
    return sum(value for (name, _), value in found.items() if name == "videoedit_orchestrator_jobs")


class StatusWatch:
    """Reads a job's status.json in a loop: the states it showed, in order."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen, self._done = path, [], threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                status = json.loads(self.path.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            state = (status["status"], status.get("message", ""))
            if not self.seen or self.seen[-1] != state:
                self.seen.append(state)
            time.sleep(0.01)

    def close(self) -> list[tuple[str, str]]:
        self._done.set()
        self._thread.join()
        return self.seen


@pytest.fixture(scope="module")
def database(make_stack, postgres):
    """A PostgreSQL database of its own and a model server paced like a slow GPU."""
    url = postgres.database("faults")
    stack = make_stack(
        "faults",
        orchestrators=0,
        modelserver_args=("--simulate-edit-delay-ms", "150"),
        env={"VIDEOEDIT_JOB_LEASE_S": str(LEASE_S)},
    )
    with stack:
        stack.db_url = url
        yield stack


@pytest.fixture(scope="module")
def clip(database) -> Path:
    return make_sample_clip(database.input_roots[0] / "clip.mp4", frames=CLIP_FRAMES, width=160, height=120)


# The partition test's jobs: long enough that neither can finish on A while B starts beside it on
# a busy machine (seconds) before the partition begins.
LONG_CLIP_FRAMES = 4 * CLIP_FRAMES


@pytest.fixture(scope="module")
def long_clip(database) -> Path:
    return make_sample_clip(database.input_roots[0] / "long.mp4", frames=LONG_CLIP_FRAMES, width=160, height=120)


def test_an_orchestrator_cut_off_from_the_database_stops_its_jobs_before_another_takes_them(
    make_stack, database, postgres, long_clip
):
    """A runs two jobs and loses PostgreSQL for 3x the lease: it says NOT_SERVING, answers
    UNAVAILABLE within seconds and its metrics from memory, and stops the jobs on its own clock;
    B takes them over. Every job finishes once, whole, and no log line or status of A lands
    after B started it again."""
    metrics_port = free_port()
    with Proxy(postgres.socket_path) as proxy:
        with make_stack.beside(
            database,
            "cut-off",
            env={"VIDEOEDIT_JOB_DB": through(proxy, database.db_url)},
            orchestrator_args=("--max-concurrent-jobs", "2", "--metrics-port", str(metrics_port)),
        ) as a:
            job_ids = ["cut-off-1", "cut-off-2"]
            with VideoEditClient(a.orchestrator_address) as client:
                for job_id in job_ids:
                    client.start_edit(str(long_clip), "car", "make it red", job_id=job_id, **SLOW_JOB)
                # Tracking: most of the job is ahead (editing runs behind tracking, so a job that
                # reached "editing" may be all but done before the partition begins).
                wait_for(
                    lambda: all(
                        client.get_status(j).status in (pb.JOB_STATUS_PROPAGATING, pb.JOB_STATUS_EDITING)
                        for j in job_ids
                    ),
                    "A to run both jobs",
                )
            wait_for(lambda: jobs_counted(metrics_port) >= 2, "A's metrics to count both jobs")
            watches = [StatusWatch(a.output_root / job_id / "status.json") for job_id in job_ids]
            # B runs two at a time as A did: with one worker it would leave the second job queued,
            # and A, back after the partition, could claim it first (then no takeover to check).
            with make_stack.beside(
                database,
                "takes-over",
                env={"VIDEOEDIT_JOB_DB": database.db_url},
                output_root=a.output_root,
                orchestrator_args=("--max-concurrent-jobs", "2"),
            ) as b:
                proxy.partition()
                wait_for(lambda: health(a.orchestrator_address) == "NOT_SERVING", "A to say NOT_SERVING")
                with VideoEditClient(a.orchestrator_address) as client:
                    asked = time.monotonic()
                    with pytest.raises(grpc.RpcError) as refused:
                        client.get_status(job_ids[0])
                    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
                    assert time.monotonic() - asked < 10  # the call deadline, not the pool's 30 s
                asked = time.monotonic()  # metrics answer from memory (the last counts), not from the database
                assert jobs_counted(metrics_port) >= 2 and time.monotonic() - asked < 5
                time.sleep(3 * LEASE_S)  # the partition lasts three leases
                proxy.heal()
                wait_for(lambda: health(a.orchestrator_address) == "SERVING", "A to serve again")
                with VideoEditClient(b.orchestrator_address) as client:
                    finals = {job_id: client.wait(job_id) for job_id in job_ids}
            seen = [watch.close() for watch in watches]
            a_log = a.log_path(a.orchestrator_name(0)).read_text()
    for job_id, final, states in zip(job_ids, finals.values(), seen, strict=True):
        assert final.status == pb.JOB_STATUS_FINISHED, (job_id, final.error)
        assert len(decode(Path(final.output_video_path))) == LONG_CLIP_FRAMES
        out = Path(final.output_dir)
        assert not list(out.glob(".*attempt-*")) and not list(out.glob(".work-*"))
        runs = log_runs(Path(final.logs_path).read_text())
        assert len(runs) == 2 and runs[0][2] <= runs[1][1], f"{job_id}: A wrote after B started it: {runs}"
        # status.json: A's stages, then B's from the start (one step back), then only forward: a
        # write of A's after B started would step back once more.
        order = [STAGE_ORDER.index(state) for state, _ in states]
        steps_back = [i for i in range(1, len(order)) if order[i] < order[i - 1]]
        assert len(steps_back) <= 1 and states[-1][0] == "finished", states
    assert "its lease could not be renewed in time" in a_log  # stopped by its own clock


def restart_again_and_again(postgres, times: int, done: threading.Event) -> None:
    for _ in range(times):
        if done.is_set():
            return
        postgres.restart()
        time.sleep(0.5)


def test_a_database_restarted_twenty_times_never_reruns_a_finished_job(make_stack, database, postgres, clip):
    with make_stack.beside(
        database,
        "restarts",
        env={"VIDEOEDIT_JOB_DB": database.db_url},
        orchestrator_args=("--max-concurrent-jobs", "2"),
    ) as own:
        job_ids = [f"restarts-{i}" for i in range(4)]
        with VideoEditClient(own.orchestrator_address) as client:
            for job_id in job_ids:
                client.start_edit(str(clip), "car", "make it red", job_id=job_id, **FAST_JOB)
            done = threading.Event()
            restarts = threading.Thread(target=restart_again_and_again, args=(postgres, 20, done))
            restarts.start()
            try:
                finals = {job_id: wait_for(lambda j=job_id: ended(client, j), f"{job_id} to end") for job_id in job_ids}
            finally:
                restarts.join()  # all twenty, then the jobs are looked at once more
                done.set()
            time.sleep(2 * LEASE_S)  # long enough for a job whose end was lost to be claimed again
            again = {job_id: client.get_status(job_id) for job_id in job_ids}
    for job_id in job_ids:
        assert finals[job_id].status == pb.JOB_STATUS_FINISHED, (job_id, finals[job_id].error)
        assert again[job_id].status == pb.JOB_STATUS_FINISHED
        log_text = Path(finals[job_id].logs_path).read_text()
        assert log_text.count("ended finished") == 1
        assert "started" not in log_text[log_text.index("ended finished") :], f"{job_id} ran again after it finished"


def ended(client: VideoEditClient, job_id: str) -> pb.VideoEditStatus | None:
    """The job's status once it ended (None before, or while the database is restarting)."""
    try:
        status = client.get_status(job_id)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNAVAILABLE, err
        return None
    return status if status.status in (pb.JOB_STATUS_FINISHED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED) else None


def test_a_model_server_down_for_twenty_seconds_is_waited_out(make_stack, clip):
    """Killed while the first of three jobs is editing, back 20 s later: the running job is queued
    again and retried, the queued ones wait (claims pause, and health says so), all finish."""
    stack = make_stack(
        "model-outage",
        input_roots=[clip.parent],
        modelserver_args=("--simulate-edit-delay-ms", "150"),
        env=NO_MASK_CACHE,
    )
    with stack, VideoEditClient(stack.orchestrator_address) as client:
        job_ids = [f"outage-{i}" for i in range(3)]
        for job_id in job_ids:
            client.start_edit(str(clip), "car", "make it red", job_id=job_id, **SLOW_JOB)
        wait_for(lambda: client.get_status(job_ids[0]).status == pb.JOB_STATUS_EDITING, "the first job to edit")
        modelserver = stack.processes[stack.modelserver_name(0)]
        modelserver.kill()
        modelserver.wait()
        wait_for(lambda: health(stack.orchestrator_address, CLAIMS_SERVICE) == "NOT_SERVING", "claims to pause")
        assert health(stack.orchestrator_address) == "SERVING"  # the API still answers
        time.sleep(20)
        assert client.get_status(job_ids[2]).status == pb.JOB_STATUS_QUEUED  # nothing claimed meanwhile
        stack.start_modelserver(0)
        finals = [client.wait(job_id) for job_id in job_ids]
        orchestrator_log = stack.log_path(stack.orchestrator_name(0)).read_text()
    assert [f.status for f in finals] == [pb.JOB_STATUS_FINISHED] * 3, [f.error for f in finals]
    first_log = Path(finals[0].logs_path).read_text()
    assert "queued again, to be tried in" in first_log and "attempt 2" in first_log
    assert "claiming no job: model server" in orchestrator_log


@pytest.fixture
def small_volume(database):
    """A 64 KiB tmpfs inside the output root (root only)."""
    mount = database.output_root / "small"
    mount.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_volume_fails_one_job_once_and_start_edit_names_it(make_stack, database, clip, small_volume):
    with make_stack.beside(
        database, "full", env={"VIDEOEDIT_JOB_DB": database.db_url}, output_root=database.output_root
    ) as own:
        with VideoEditClient(own.orchestrator_address) as client:
            # status.json and the log fit; the masks, crops and video do not.
            client.start_edit(
                str(clip), "car", "make it red", job_id="full", output_dir=str(small_volume / "full"), **FAST_JOB
            )
            final = client.wait("full")
            assert final.status == pb.JOB_STATUS_FAILED and "no space left on the volume of" in final.error
            client.start_edit(str(clip), "car", "make it red", job_id="beside-full", **FAST_JOB)
            assert client.wait("beside-full").status == pb.JOB_STATUS_FINISHED
            with psycopg.connect(database.db_url) as db:
                [(attempts, state)] = db.execute("SELECT attempts, state FROM jobs WHERE job_key = 'full'").fetchall()
            assert (attempts, state) == (1, "failed")  # recorded once, never claimed again
            filler = small_volume / "filler"
            with open(filler, "wb", buffering=0) as out:  # the volume full to the last byte
                try:
                    while out.write(b"\0" * 4096):
                        pass
                except OSError:
                    pass
            with pytest.raises(grpc.RpcError) as refused:
                client.start_edit(
                    str(clip),
                    "car",
                    "make it red",
                    job_id="no-room",
                    output_dir=str(small_volume / "no-room"),
                    **FAST_JOB,
                )
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(small_volume / "no-room") in refused.value.details()
