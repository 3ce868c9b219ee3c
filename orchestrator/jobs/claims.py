"""A job's claim while a process runs it: what every write of the job goes through.

The job store takes a job's writes only from the claim that holds it (its owner and attempt,
the lease unexpired by the database's clock: `store.Fence`). That cannot stop the job's files:
status.json, the log and the outputs are written beside the store, and a partitioned
orchestrator may not hear that its lease is gone. So a running job also keeps its lease by its
own clock: it holds the job until `lease_s - margin` after the last renewal *began* (the
database extended the lease no earlier than that), and stops writing, and stops its work,
before any other orchestrator may claim it. Its end goes to the store first, the outputs renamed
into place inside that same transaction (`JobStore.finish`), and only then to status.json.

`OwnedOutright` is the claim of a job nobody else can run (the in-process API of legacy_api).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import Unavailable
from ..pipeline.concurrency import StopReason, StopSignal
from ..request import VideoEditStatus
from .store import Fence, JobStore

log = logging.getLogger(__name__)

# Back-off between tries of a write the job store could not take (a database hiccup).
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 2.0


def lease_margin(lease_s: float) -> float:
    """How long before its lease runs out (by the local clock) a job stops writing: room for the
    clocks' rates, a renewal's round trip and the stages noticing. A fifth of the lease, at least
    2 s, at most half of it."""
    return min(lease_s / 2, max(2.0, lease_s / 5))


class JobClaim(Protocol):
    """What a running job's writes go through (runner, reporter)."""

    attempt: int  # 1 for the first run of the job

    def holds(self) -> bool:
        """Whether the job is still this process's to write (status.json, log, outputs)."""
        ...

    def update(self, status: VideoEditStatus, new_stage: bool) -> bool:
        """Record a running status; False: the job is someone else's now (the job is stopped)."""
        ...

    def finish(self, status: VideoEditStatus, commit: Callable[[], None]) -> bool:
        """Record the job's end, calling `commit` (the outputs renamed into place) in the same
        transaction; False: the end was not recorded (the job is someone else's, or the store
        could not be reached while the claim held), and `commit` was not called."""
        ...

    def release(self, status: VideoEditStatus, retry_after_s: float) -> bool:
        """Hand the job back to the queue with `status`, not to be claimed before `retry_after_s`;
        False: it could not be (someone else's, or nowhere to hand it back to)."""
        ...


class OwnedOutright:
    """The claim of a job that only this process runs (no job store): every write is its own."""

    attempt = 1

    def holds(self) -> bool:
        return True

    def update(self, status: VideoEditStatus, new_stage: bool) -> bool:
        return True

    def finish(self, status: VideoEditStatus, commit: Callable[[], None]) -> bool:
        commit()
        return True

    def release(self, status: VideoEditStatus, retry_after_s: float) -> bool:
        return False  # no queue to hand it back to: the job ends here


class HeldClaim:
    """A claim this orchestrator holds in the shared job store while it runs the job."""

    def __init__(
        self,
        store: JobStore,
        fence: Fence,
        lease_s: float,
        claimed_at: float,
        stop: StopSignal,
        on_lost: Callable[[str], None] = lambda why: None,
    ) -> None:
        """`claimed_at`: when the claim's call to the store began (time.monotonic)."""
        self.store, self.fence, self.lease_s = store, fence, lease_s
        self.attempt = fence.attempt
        self.stop = stop
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._valid_until = claimed_at + lease_s - lease_margin(lease_s)

    def renewed(self, started: float) -> None:
        """A renewal that began at `started` (time.monotonic) extended the lease."""
        with self._lock:
            self._valid_until = max(self._valid_until, started + self.lease_s - lease_margin(self.lease_s))

    def overdue(self) -> float:
        """Seconds since the lease ran out by the local clock (<= 0: it holds)."""
        with self._lock:
            return time.monotonic() - self._valid_until

    def holds(self) -> bool:
        return self.overdue() <= 0 and not self.stop.stopped_for(StopReason.LEASE_LOST)

    def lose(self, why: str) -> None:
        """The job is not ours any more: it stops, and writes nothing from now on."""
        if not self.stop.stopped_for(StopReason.LEASE_LOST):
            self.stop.stop(StopReason.LEASE_LOST)
            self._on_lost(why)

    def update(self, status: VideoEditStatus, new_stage: bool) -> bool:
        try:
            held = self.store.update(status, self.fence, new_stage)
        except Unavailable as err:  # keep running: the lease, by the local clock, decides
            log.warning("job %s: its status could not be written to the job store: %s", self.fence.key, err)
            return self.holds()
        if not held:
            self.lose("the job store says another orchestrator holds it now")
        return held and self.holds()

    def finish(self, status: VideoEditStatus, commit: Callable[[], None]) -> bool:
        return self._retried(status, lambda: self.store.finish(status, self.fence, commit), while_held=True)

    def release(self, status: VideoEditStatus, retry_after_s: float) -> bool:
        return self._retried(status, lambda: self.store.release(status, self.fence, retry_after_s), while_held=False)

    def _retried(self, status: VideoEditStatus, write: Callable[[], bool], while_held: bool) -> bool:
        """`write` (of `status`), tried again with a back-off while the store cannot be reached:
        while the claim holds (an end recorded after the lease ran out could race another run),
        or for one lease (a hand-back, which the store refuses anyway once another run took the
        job). A try that timed out may still have landed late (its bytes delivered after the
        deadline): a later try that is refused then finds `status` stored, and that counts."""
        give_up = time.monotonic() + self.lease_s
        pause, timed_out = RETRY_FIRST_S, False
        while True:
            try:
                if write():
                    return True
                return timed_out and self._stored(status)
            except Unavailable as err:
                timed_out = True
                if (while_held and not self.holds()) or (not while_held and time.monotonic() > give_up):
                    log.warning("job %s: the job store could not take its end: %s", self.fence.key, err)
                    return False
                log.info("job %s: the job store could not take its end (%s); trying again", self.fence.key, err)
            time.sleep(pause)
            pause = min(RETRY_MAX_S, 2 * pause)

    def _stored(self, status: VideoEditStatus) -> bool:
        stored = self.store.get(self.fence.key)
        return stored is not None and stored.status == status
