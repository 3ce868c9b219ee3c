"""The watch hub on a real SQLite store: many watchers of a job share one store read per poll,
each gets the current status, every stage and the latest, and ends after a terminal one; a write of
this process wakes them at once; a store outage shorter than the limit is waited out, a longer one
ends them UNAVAILABLE. Faults come from a store wrapper that counts calls and can fail them."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.errors import NotFound, Unavailable
from orchestrator.jobs.store import SqliteJobStore
from orchestrator.jobs.tenants import Caller
from orchestrator.jobs.watchers import WatchHub
from orchestrator.request import JobStatus, VideoEditStatus
from tests.unit.orchestrator.jobs.test_store import job, moved

pytestmark = pytest.mark.anyio  # the tests run on an asyncio loop (anyio's pytest plugin)


@pytest.fixture
def anyio_backend():
    return "asyncio"


class FlakyStore:
    """A real store whose calls are counted and, while `down` is set, fail as an unreachable one's."""

    def __init__(self, store: SqliteJobStore):
        self.store, self.calls, self.down = store, Counter(), threading.Event()

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def call(*args, **kwargs):
            self.calls[name] += 1
            if self.down.is_set():
                raise Unavailable("the job store cannot be reached (test)")
            return method(*args, **kwargs)

        return call


@pytest.fixture
def store(tmp_path):
    real = SqliteJobStore(tmp_path / "jobs.sqlite3")
    yield FlakyStore(real)
    real.close()


@pytest.fixture
def blocking():
    with ThreadPoolExecutor(4, thread_name_prefix="blocking") as pool:
        yield pool


def not_in_store(job_id: str, caller: Caller) -> VideoEditStatus:
    if job_id == "legacy":
        return VideoEditStatus(job_id="legacy", status=JobStatus.FINISHED)
    raise NotFound(f"no job {job_id!r}")


async def collect(hub: WatchHub, job_id: str, into: list[VideoEditStatus] | None = None) -> list[VideoEditStatus]:
    seen = [] if into is None else into
    async for status in hub.watch(job_id):
        seen.append(status)
    return seen


async def until(condition, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


def run_stages(store: FlakyStore, job_id: str, hub: WatchHub | None = None) -> list[JobStatus]:
    """Claim `job_id` and move it through two stages (each with a progress write) to FINISHED;
    then tell `hub`, as the job threads do."""
    fence = store.claim("A", 30).fence
    status = store.get(job_id).status
    for stage in (JobStatus.EXTRACTING, JobStatus.MASKING):
        assert store.update(moved(status, stage), fence, new_stage=True)
        assert store.update(moved(status, stage, progress=0.5), fence, new_stage=False)
    assert store.finish(moved(status, JobStatus.FINISHED), fence)
    if hub is not None:
        hub.changed()
    return [JobStatus.QUEUED, JobStatus.EXTRACTING, JobStatus.MASKING, JobStatus.FINISHED]


async def test_every_watcher_gets_every_stage_from_one_store_read_per_poll(store, blocking):
    store.add(*job("a"))
    hub = WatchHub(store, not_in_store, blocking, poll_s=0.05)
    hub.start()
    watchers = [asyncio.create_task(collect(hub, "a")) for _ in range(300)]
    await until(lambda: hub.count == 300)
    reads_before = store.calls.copy()
    await asyncio.sleep(0.5)  # ~10 polls, nothing changed
    polls = store.calls["versions"] - reads_before["versions"]
    assert 3 <= polls <= 12 and store.calls["get"] == reads_before["get"]  # one read per poll, for all 300
    stages = await asyncio.to_thread(run_stages, store, "a")
    seen = await asyncio.gather(*watchers)
    assert all([s.status for s in statuses] == stages for statuses in seen)
    # once per poll that saw news (at most one per write), not once per watcher
    assert store.calls["transitions"] - reads_before["transitions"] <= 6
    assert hub.count == 0
    await hub.close()


async def test_a_write_of_this_process_wakes_the_watchers_at_once(store, blocking):
    store.add(*job("a"))
    hub = WatchHub(store, not_in_store, blocking, poll_s=60.0)
    hub.start()
    seen: list[VideoEditStatus] = []
    watcher = asyncio.create_task(collect(hub, "a", seen))
    await until(lambda: hub.count == 1)
    stages = await asyncio.to_thread(run_stages, store, "a", hub)
    async with asyncio.timeout(2.0):  # long before the next poll
        await watcher
    assert [s.status for s in seen] == stages
    await hub.close()


async def test_watchers_joining_late_see_only_what_is_new_to_them(store, blocking):
    store.add(*job("a"))
    hub = WatchHub(store, not_in_store, blocking, poll_s=0.05)
    hub.start()
    early = asyncio.create_task(collect(hub, "a"))
    await until(lambda: hub.count == 1)
    fence = store.claim("A", 30).fence
    status = store.get("a").status
    assert store.update(moved(status, JobStatus.EXTRACTING), fence, new_stage=True)
    await until(lambda: hub._watchers["a"] and next(iter(hub._watchers["a"])).version > 0)
    late = asyncio.create_task(collect(hub, "a"))
    await until(lambda: hub.count == 2)
    assert store.finish(moved(status, JobStatus.FINISHED), fence)
    assert [s.status for s in await early] == [JobStatus.QUEUED, JobStatus.EXTRACTING, JobStatus.FINISHED]
    assert [s.status for s in await late] == [JobStatus.EXTRACTING, JobStatus.FINISHED]
    await hub.close()


async def test_ended_and_unknown_jobs_answer_once(store, blocking):
    request, status = job("done")
    store.add(request, moved(status, JobStatus.CANCELLED))
    hub = WatchHub(store, not_in_store, blocking)
    hub.start()
    assert [s.status for s in await collect(hub, "done")] == [JobStatus.CANCELLED]
    assert [s.job_id for s in await collect(hub, "legacy")] == ["legacy"]  # known only by its status.json
    with pytest.raises(NotFound):
        await collect(hub, "nothing")
    assert hub.count == 0
    await hub.close()


async def test_a_short_outage_is_waited_out_and_a_long_one_ends_the_watchers(store, blocking):
    for job_id in ("short", "long"):
        store.add(*job(job_id))
    hub = WatchHub(store, not_in_store, blocking, poll_s=0.05, outage_s=0.6)
    hub.start()
    short = asyncio.create_task(collect(hub, "short"))
    await until(lambda: hub.count == 1)
    store.down.set()
    await asyncio.sleep(0.3)  # a blip, shorter than outage_s
    store.down.clear()
    await asyncio.to_thread(run_stages, store, "short")
    assert [s.status for s in await short][-1] is JobStatus.FINISHED

    seen: list[VideoEditStatus] = []
    long = asyncio.create_task(collect(hub, "long", seen))
    await until(lambda: hub.count == 1)
    store.down.set()
    with pytest.raises(Unavailable):
        async with asyncio.timeout(5.0):
            await long
    assert [s.status for s in seen] == [JobStatus.QUEUED] and hub.count == 0
    store.down.clear()
    await hub.close()


async def test_close_gives_the_last_status_then_ends_open_watches_unavailable(store, blocking):
    store.add(*job("a"))
    hub = WatchHub(store, not_in_store, blocking, poll_s=60.0)
    hub.start()
    seen: list[VideoEditStatus] = []
    watcher = asyncio.create_task(collect(hub, "a", seen))
    await until(lambda: hub.count == 1)
    fence = store.claim("A", 30).fence
    assert store.update(moved(store.get("a").status, JobStatus.EXTRACTING), fence, new_stage=True)
    await hub.close()  # no poll since the write: close reads it
    with pytest.raises(Unavailable, match="shutting down"):
        await watcher
    assert [s.status for s in seen] == [JobStatus.QUEUED, JobStatus.EXTRACTING]
    with pytest.raises(Unavailable, match="shutting down"):
        await collect(hub, "a")  # a watch opened after close gets the status, then the refusal


async def test_close_ends_even_when_a_write_wakes_the_hub_as_it_closes(store, blocking):
    """A shutdown writes the statuses of the jobs it hands back while it closes the hub: the
    polling task must end however the wake-up and the close interleave (a cancel swallowed by
    wait_for once kept a shutdown waiting for ever)."""
    store.add(*job("a"))
    for _ in range(50):
        hub = WatchHub(store, not_in_store, blocking, poll_s=0.001)
        hub.start()
        watcher = asyncio.create_task(collect(hub, "a"))
        await until(lambda hub=hub: hub.count == 1)
        hub.changed()
        await asyncio.wait_for(hub.close(), 5)
        with pytest.raises(Unavailable):
            await watcher
