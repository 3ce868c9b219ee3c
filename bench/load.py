"""Load test on loopback (`make loadtest`): a burst of StartEdit calls and many watchers, then
5,000 watch streams held open.

1. 50 StartEdit calls at once against an orchestrator with a bounded queue, then 200 concurrent
   WatchStatus streams over the accepted jobs, tiny models. Nothing but RESOURCE_EXHAUSTED may be
   refused, every accepted job must finish, and the orchestrator's threads, file descriptors and
   memory must stay bounded (`run_load`).
2. 4,000 WatchStatus streams (a grpc.aio client, a few channels) and 1,000 SSE streams through the
   HTTP gateway held open on queued jobs, while 200 GetStatus calls are timed (target: p99 under
   100 ms), with the orchestrator's threads, descriptors and memory while they are held
   (`hold_streams`, `run_streams`).
Prints a table each and writes bench-results/load.json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from bench.modelserver import EDIT_EACH_TIME
from clients.client import VideoEditClient
from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from videoedit.v1 import video_edit_pb2 as pb
from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

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
        modelserver_args=("--tiny", *EDIT_EACH_TIME),
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


# What GetStatus may take at the 99th percentile while the streams are held (the target).
TARGET_P99_MS = 100.0
# Environment of an orchestrator and gateway that take 5,000 streams from one loopback client.
STREAMS_ENV = {
    "VIDEOEDIT_MAX_STREAMS_PER_CLIENT": "6000",
    "VIDEOEDIT_HTTP_MAX_STREAMS_PER_CLIENT": "5000",
    "VIDEOEDIT_HTTP_MAX_STREAMS": "5000",
}


@dataclass
class StreamsResult:
    grpc_streams: int
    sse_streams: int
    first_status: int  # streams that got their job's status
    open_at_end: int  # streams still open after the GetStatus calls
    seconds_to_open: float
    get_status_calls: int
    get_status_p50_ms: float
    get_status_p99_ms: float
    get_status_max_ms: float
    target_p99_ms: float
    orchestrator_threads: int  # while the streams are held
    orchestrator_fds: int
    orchestrator_rss_mb: float


async def hold_streams(
    orchestrator: str,
    gateway_url: str,
    job_ids: list[str],
    pid: int,
    grpc_streams: int = 4000,
    sse_streams: int = 1000,
    channels: int = 8,
    calls: int = 200,
) -> StreamsResult:
    """Open `grpc_streams` WatchStatus streams over `channels` channels and `sse_streams` SSE
    streams (`GET /api/video/events/{id}`) at the gateway, on `job_ids` (queued jobs: the streams
    stay open), each read up to its first status; then time `calls` GetStatus calls on a channel of
    their own, check which streams are still open, and close them all. `pid`: the orchestrator."""
    started = time.monotonic()
    opened = [grpc.aio.insecure_channel(orchestrator) for _ in range(channels)]
    stubs = [pb_grpc.VideoEditServiceStub(c) for c in opened]
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, read=None), limits=httpx.Limits(max_connections=None, max_keepalive_connections=0)
    )
    watches: list[Any] = []
    events: list[tuple[httpx.Response, Any]] = []
    try:
        watches = await _gathered(_watch(stubs[i % channels], job_ids[i % len(job_ids)]) for i in range(grpc_streams))
        events = await _gathered(
            _events(http, f"{gateway_url}/api/video/events/{job_ids[i % len(job_ids)]}") for i in range(sse_streams)
        )
        seconds_to_open = time.monotonic() - started
        threads, fds, rss = process_stats(pid)
        async with grpc.aio.insecure_channel(orchestrator) as channel:
            latencies = await _time_get_status(pb_grpc.VideoEditServiceStub(channel), job_ids[0], calls)
        still_open = sum(not call.done() for call, _ in watches) + sum(
            await asyncio.gather(*(_still_open(lines) for _, lines in events))
        )
    finally:
        for call, _ in watches:
            call.cancel()
        await asyncio.gather(*(response.aclose() for response, _ in events), return_exceptions=True)
        await http.aclose()
        for channel in opened:
            await channel.close()
    latencies.sort()
    return StreamsResult(
        grpc_streams=grpc_streams,
        sse_streams=sse_streams,
        first_status=sum(got for _, got in watches) + len(events),
        open_at_end=still_open,
        seconds_to_open=seconds_to_open,
        get_status_calls=calls,
        get_status_p50_ms=statistics.median(latencies),
        get_status_p99_ms=latencies[max(0, int(len(latencies) * 0.99) - 1)],
        get_status_max_ms=latencies[-1],
        target_p99_ms=TARGET_P99_MS,
        orchestrator_threads=threads,
        orchestrator_fds=fds,
        orchestrator_rss_mb=rss,
    )


async def _gathered(openings) -> list[Any]:
    """Run the openings 250 at a time (a burst of thousands of connections at once only queues)."""
    done: list[Any] = []
    pending = list(openings)
    for start in range(0, len(pending), 250):
        done += await asyncio.gather(*pending[start : start + 250])
    return done


async def _watch(stub: pb_grpc.VideoEditServiceStub, job_id: str) -> tuple[Any, bool]:
    call = stub.WatchStatus(pb.WatchStatusRequest(job_id=job_id))
    first = await call.read()
    return call, first is not grpc.aio.EOF and first.job_id == job_id


async def _events(http: httpx.AsyncClient, url: str) -> tuple[httpx.Response, Any]:
    """An SSE stream read up to its first `data:` event (failing if it ends before)."""
    response = await http.send(http.build_request("GET", url), stream=True)
    response.raise_for_status()
    lines = response.aiter_lines()
    async for line in lines:
        if line.startswith("data:"):
            return response, lines
    raise AssertionError(f"{url} ended before its first event")


async def _still_open(lines: Any) -> bool:
    """An SSE stream with nothing new to say is open: reading it waits; a closed one ends."""
    try:
        async with asyncio.timeout(0.5):
            async for line in lines:
                if line.startswith("event: error"):
                    return False
            return False
    except TimeoutError:
        return True


async def _time_get_status(stub: pb_grpc.VideoEditServiceStub, job_id: str, calls: int) -> list[float]:
    latencies = []
    for _ in range(calls):
        began = time.perf_counter()
        await stub.GetStatus(pb.GetStatusRequest(job_id=job_id), timeout=10)
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies


def run_streams(workdir: Path, env: dict[str, str] | None = None, jobs: int = 10) -> StreamsResult:
    """`hold_streams` against an API-only orchestrator (it claims nothing: its jobs stay queued and
    their streams open) with the HTTP gateway in front."""
    clip = make_sample_clip(workdir / "media" / "clip.mp4", frames=6, width=96, height=64, audio=False)
    stack = LocalStack(
        workdir,
        input_roots=[clip.parent],
        modelserver_args=("--tiny", *EDIT_EACH_TIME),
        env={**STREAMS_ENV, **(env or {})},
        orchestrator_args=("--max-concurrent-jobs", "0"),
    )
    with stack, VideoEditClient(stack.orchestrator_address, timeout_s=60) as client:
        stack.start_gateway()
        job_ids = [client.start_edit(str(clip), "car", "red", job_id=f"held-{i}", **JOB).job_id for i in range(jobs)]
        return asyncio.run(
            hold_streams(stack.orchestrator_address, stack.gateway_url, job_ids, stack.processes["orchestrator"].pid)
        )


def _table(title: str, result: Any) -> None:
    print(f"\n{title}")
    for key, value in asdict(result).items():
        print(f"{key:<28}{value if not isinstance(value, float) else f'{value:.1f}'}")


def main(results_dir: Path = Path("bench-results")) -> None:
    with tempfile.TemporaryDirectory(prefix="videoedit-load-") as tmp:
        print("50 StartEdit at once, then 200 watchers (tiny models)...", file=sys.stderr)
        load = run_load(Path(tmp) / "burst")
        print("5,000 watch streams held (4,000 gRPC, 1,000 SSE) while GetStatus is timed...", file=sys.stderr)
        streams = run_streams(Path(tmp) / "streams")
    _table("Load test, orchestrator --max-queued-jobs 12 --max-concurrent-jobs 2, tiny models", load)
    _table(f"5,000 streams held open, GetStatus p99 target {TARGET_P99_MS:.0f} ms", streams)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "load.json").write_text(json.dumps({"burst": asdict(load), "streams": asdict(streams)}, indent=1))
    print(f"\nwrote {results_dir / 'load.json'}")


if __name__ == "__main__":
    main()
