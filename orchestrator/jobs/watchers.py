"""WatchStatus for any number of watchers: one WatchHub per orchestrator process.

Every open watch stream is a Watcher in the hub, on the asyncio loop of the gRPC server: no
thread and no store read of its own. The hub reads the store for all watched jobs together, once
every `poll_s` (jobs run by other orchestrators sharing the store) and at once when this process
writes a status (`changed`, called from the job threads), and hands each watcher what it has not
seen yet: every stage entered since (store.transitions) and the latest status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..errors import Unavailable
from ..request import VideoEditStatus
from .store import JobStore
from .tenants import OWNER, Caller
from .validation import check_job_name

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a watcher of a job running on another orchestrator may lag behind it.
POLL_S = 0.5
# How long a watch stream waits out a job store it cannot reach before it ends UNAVAILABLE.
WATCH_OUTAGE_S = 60.0

# What a poll found for one job: its latest version and, per version some watcher has seen,
# the statuses that watcher is still to get (the stages entered since, then the latest).
_News = dict[str, tuple[int, dict[int, list[VideoEditStatus]]]]


@dataclass(eq=False)
class Watcher:
    """One open watch stream: the job, the version of the last status it was given, when the
    store last answered for it, and its inbox (lists of statuses, or the error that ends it)."""

    key: str  # the job's (request.key)
    version: int
    reached: float = field(default_factory=time.monotonic)
    inbox: asyncio.Queue[list[VideoEditStatus] | BaseException] = field(default_factory=asyncio.Queue)


class WatchHub:
    """The watchers of one process and the one loop that polls the store for them. `get`: the
    status of a job the store does not hold (one known only by its status.json, answered once);
    `blocking`: the executor for store calls (the loop never blocks on the database)."""

    def __init__(
        self,
        store: JobStore,
        get: Callable[[str, Caller], VideoEditStatus],
        blocking: Executor,
        poll_s: float = POLL_S,
        outage_s: float = WATCH_OUTAGE_S,
    ):
        self.store, self._get, self._blocking = store, get, blocking
        self.poll_s, self.outage_s = poll_s, outage_s
        self._watchers: dict[str, set[Watcher]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False  # close() asked the polling task to end
        self._closed = False

    @property
    def count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def start(self) -> None:
        """Start polling (on the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="watch-hub")

    def changed(self) -> None:
        """A status was written by this process: poll now. Safe from any thread."""
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop is closed: nobody watches any more
                pass

    async def watch(self, job_id: str, caller: Caller = OWNER) -> AsyncIterator[VideoEditStatus]:
        """The current status of the job `caller` names `job_id` now, then every change (the
        status on entering each stage, however short, and the latest), ending after a terminal one."""
        check_job_name(job_id, caller)
        key = caller.key_of(job_id)
        stored = await self._call(self.store.get, key)
        if stored is None:
            yield await self._call(self._get, job_id, caller)
            return
        yield stored.status
        if stored.status.status.terminal:
            return
        if self._closed:
            raise _shutting_down()
        watcher = Watcher(key, stored.version)
        self._watchers.setdefault(key, set()).add(watcher)
        try:
            while True:
                got = await watcher.inbox.get()
                if isinstance(got, BaseException):
                    raise got
                for status in got:
                    yield status
                if got[-1].status.terminal:
                    return
        finally:
            self._remove(watcher)

    async def close(self) -> None:
        """Stop polling after one last poll (watchers see the statuses written so far, e.g. the
        jobs a shutdown handed back); the watch streams still open end UNAVAILABLE."""
        # Ended by a flag, not by cancelling it: Python 3.11's wait_for could swallow a cancel that
        # came as the hub was woken (a status written as the shutdown handed jobs back), and the
        # task polled on while close waited for it (seen under load: a shutdown never ended).
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._closed = True
        await self._poll()
        for watcher in self._all():
            watcher.inbox.put_nowait(_shutting_down())

    async def _run(self) -> None:
        while not self._stopping:
            try:
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if not self._stopping:
                await self._poll()

    async def _poll(self) -> None:
        if not self._watchers:
            return
        seen = {key: {w.version for w in watchers} for key, watchers in self._watchers.items()}
        try:
            news = await self._call(self._read, seen)
        except Unavailable as err:  # a blip shorter than outage_s is waited out
            now = time.monotonic()
            for watcher in self._all():
                if now - watcher.reached > self.outage_s:
                    watcher.inbox.put_nowait(err)
            return
        except Exception as err:  # not an outage: the watchers end with it, the hub goes on
            log.exception("watch poll failed")
            for watcher in self._all():
                watcher.inbox.put_nowait(err)
            return
        now = time.monotonic()
        for watcher in self._all():
            watcher.reached = now
            version, statuses = news.get(watcher.key, (watcher.version, {}))
            if watcher.version in statuses:
                watcher.inbox.put_nowait(statuses[watcher.version])
                watcher.version = version

    def _read(self, seen: dict[str, set[int]]) -> _News:
        """In the executor: one read of every watched job's version, then the statuses of the jobs
        that changed (each once, however many watch it)."""
        news: _News = {}
        for key, version in self.store.versions(seen).items():
            if seen[key] == {version}:
                continue
            stored = self.store.get(key)
            if stored is None:
                continue
            news[key] = (
                stored.version,
                {
                    since: [*self.store.transitions(key, since, stored.version - 1), stored.status]
                    for since in seen[key]
                    if since < stored.version
                },
            )
        return news

    def _all(self) -> list[Watcher]:
        return [watcher for watchers in self._watchers.values() for watcher in watchers]

    def _remove(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.key)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.key]

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._blocking, fn, *args)


def _shutting_down() -> Unavailable:
    return Unavailable("the server is shutting down; watch the job again on another replica or after the restart")
