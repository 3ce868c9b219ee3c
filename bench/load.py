"""Load test on loopback (`make loadtest`): a burst of StartEdit calls and many watchers.

50 StartEdit calls at once against an orchestrator with a bounded queue, then 200 concurrent
WatchStatus streams over the accepted jobs, tiny models. Nothing but RESOURCE_EXHAUSTED may be
refused, every accepted job must finish, and the orchestrator's threads, file descriptors and
memory must stay bounded. Prints a table; `run_load` returns the numbers for tests.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from clients.client import VideoEditClient
from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from videoedit.v1 import video_edit_pb2 as pb

JOB = dict(num_inference_steps=1, apply_smoothing=False, extra={"edit_size": "64", "chunk_size": "6"})


@dataclass
class LoadResult:
    submitted: int
    accepted: int
    refused_resource_exhausted: int
    refused_other: list[str]
    finished: int
    watchers: int
    watcher_errors: int
    seconds: float
    threads_before: int
    threads_peak: int
    threads_after: int
    fds_before: int
    fds_peak: int
    fds_after: int
    rss_mb_before: float
    rss_mb_after: float


def process_stats(pid: int) -> tuple[int, int, float]:
    """(threads, open file descriptors, RSS MB) of a process, from /proc."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return int(status["Threads"]), fds, int(status["VmRSS"].split()[0]) / 1024


def run_load(
    workdir: Path,
    env: dict[str, str] | None = None,
    submits: int = 50,
    watchers: int = 200,
    max_queued: int = 12,
    concurrent_jobs: int = 2,
) -> LoadResult:
    clip = make_sample_clip(workdir / "media" / "clip.mp4", frames=6, width=96, height=64, audio=False)
    stack = LocalStack(
        workdir,
        input_roots=[clip.parent],
        modelserver_args=("--tiny",),
        env=env,
        orchestrator_args=("--max-queued-jobs", str(max_queued), "--max-concurrent-jobs", str(concurrent_jobs)),
    )
    with stack, VideoEditClient(stack.orchestrator_address, timeout_s=60) as client:
        pid = stack.processes["orchestrator"].pid
        threads_before, fds_before, rss_before = process_stats(pid)
        peak = [threads_before, fds_before]
        stop_sampling = threading.Event()

        def sample():
            while not stop_sampling.wait(0.1):
                threads, fds, _ = process_stats(pid)
                peak[0], peak[1] = max(peak[0], threads), max(peak[1], fds)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()

        def submit(i: int):
            try:
                return client.start_edit(str(clip), "car", "make it red", job_id=f"load-{i}", **JOB).job_id
            except grpc.RpcError as err:
                return err

        with ThreadPoolExecutor(submits) as pool:
            outcomes = list(pool.map(submit, range(submits)))
        accepted = [o for o in outcomes if isinstance(o, str)]
        errors = [o for o in outcomes if not isinstance(o, str)]
        exhausted = [e for e in errors if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
        other = [f"{e.code().name}: {e.details()}" for e in errors if e not in exhausted]

        def watch(i: int):
            try:
                return list(client.watch(accepted[i % len(accepted)]))[-1].status
            except grpc.RpcError:
                return None

        with ThreadPoolExecutor(watchers) as pool:
            ends = list(pool.map(watch, range(watchers)))
        finals = [client.get_status(job_id).status for job_id in accepted]
        seconds = time.monotonic() - started
        stop_sampling.set()
        sampler.join()
        time.sleep(1.5)  # let finished watch streams release their threads
        threads_after, fds_after, rss_after = process_stats(pid)
    return LoadResult(
        submitted=submits,
        accepted=len(accepted),
        refused_resource_exhausted=len(exhausted),
        refused_other=other,
        finished=sum(f == pb.JOB_STATUS_FINISHED for f in finals),
        watchers=watchers,
        watcher_errors=sum(e != pb.JOB_STATUS_FINISHED for e in ends),
        seconds=seconds,
        threads_before=threads_before,
        threads_peak=peak[0],
        threads_after=threads_after,
        fds_before=fds_before,
        fds_peak=peak[1],
        fds_after=fds_after,
        rss_mb_before=rss_before,
        rss_mb_after=rss_after,
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="videoedit-load-") as tmp:
        print("50 StartEdit at once, then 200 watchers (tiny models)...", file=sys.stderr)
        result = run_load(Path(tmp))
    print("\nLoad test, orchestrator --max-queued-jobs 12 --max-concurrent-jobs 2, tiny models, 2 CPU cores")
    for key, value in asdict(result).items():
        print(f"{key:<28}{value if not isinstance(value, float) else f'{value:.1f}'}")


if __name__ == "__main__":
    main()
