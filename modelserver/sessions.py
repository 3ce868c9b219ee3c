"""Tracking sessions: one video's SAM3 tracking state kept on this replica between Segment calls.

A session is opened by a call with `first_frame` 0 and carried on by calls whose `first_frame`
is the number of frames it has tracked; a call that arrives early (the orchestrator keeps two in
flight) waits for the one before it. Sessions hold GPU memory, so their number and idle time are
bounded: the least recently used one is ended to open another, idle ones end after `idle_s`, and
one whose tracking failed ends at once. A call to an ended session is refused with a reason
(-> FAILED_PRECONDITION), and the orchestrator starts a new session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .batching import DeadlinePassed
from .metrics import Metrics

log = logging.getLogger(__name__)

# How long a call waits for the session it continues to be opened: the caller's opening call may
# arrive just after it (two calls in flight); a session this replica never saw is refused after.
OPEN_WAIT_S = 5.0


class SessionError(Exception):
    """The call does not fit the session (ended, unknown, out of order, other prompts)."""


@dataclass(eq=False)
class Session:
    """One open tracking session: the orchestrator's id for it, its prompts, the backend's
    tracking state, and how many frames it has tracked (the `first_frame` its next call must
    give)."""

    id: str
    prompts: list[str]
    state: object  # the backend's TrackingSession
    last_used: float  # on the registry's clock
    tracked: int = 0  # frames tracked so far
    ended: str = ""  # why it ended, once it has


class TrackingSessions:
    """The sessions of one replica. `open_state(prompts)` makes a backend session."""

    def __init__(
        self,
        open_state: Callable[[list[str]], object],
        max_sessions: int,
        idle_s: float,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_sessions, self.idle_s = max_sessions, idle_s
        self._open_state = open_state
        self._metrics = metrics
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._ended: OrderedDict[str, str] = OrderedDict()  # recently ended id -> why (for messages)
        self._changed = threading.Condition()
        self._closed = False
        threading.Thread(target=self._sweep, name="tracking-sessions", daemon=True).start()

    def take_turn(self, session_id: str, first_frame: int, prompts: list[str], deadline: float | None) -> Session:
        """The session this call continues (opened when `first_frame` is 0), once every frame
        before `first_frame` is tracked; raises SessionError when the call cannot continue it, and
        DeadlinePassed when the frames before it do not come in time (the code the caller's own
        deadline gives, whichever side notices first)."""
        with self._changed:
            if not self.max_sessions:
                raise SessionError(
                    "this replica keeps no tracking sessions (--max-tracking-sessions 0); send chunks without a session"
                )
            self._expire()
            if first_frame == 0:
                return self._open(session_id, prompts)
            arrived = time.monotonic()
            while True:
                session = self._sessions.get(session_id)
                if session is None and session_id not in self._ended and time.monotonic() - arrived < OPEN_WAIT_S:
                    self._changed.wait(0.05)  # its opening call may just be behind it
                    continue
                if session is None:
                    why = self._ended.get(session_id, "it was never opened on this replica (or the replica restarted)")
                    raise SessionError(
                        f"tracking session {session_id!r} is not open here: {why}; start a new session (first_frame 0)"
                    )
                if session.prompts != prompts:
                    raise SessionError(f"tracking session {session_id!r} tracks {session.prompts}, not {prompts}")
                if first_frame < session.tracked:
                    raise SessionError(
                        f"tracking session {session_id!r} has tracked {session.tracked} frames "
                        f"already; first_frame {first_frame} repeats frames (a retried call?)"
                    )
                if first_frame == session.tracked:
                    session.last_used = self._clock()
                    self._sessions.move_to_end(session_id)
                    return session
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise DeadlinePassed(
                        f"tracking session {session_id!r}: frames {session.tracked}-"
                        f"{first_frame - 1} never arrived before this call's deadline"
                    )
                self._changed.wait(remaining if remaining is not None else 1.0)

    def check_turn(self, session: Session, first_frame: int) -> None:
        """On the model's worker, right before tracking: still this call's turn?"""
        with self._changed:
            if session.ended:
                raise SessionError(f"tracking session {session.id!r} ended: {session.ended}")
            if first_frame != session.tracked:
                raise SessionError(
                    f"tracking session {session.id!r} is at frame {session.tracked}, "
                    f"not {first_frame} (a duplicate call?)"
                )

    def tracked(self, session: Session, frames: int) -> None:
        """The worker tracked `frames` more frames of the session."""
        with self._changed:
            session.tracked += frames
            session.last_used = self._clock()
            self._changed.notify_all()

    def close_now(self, session_id: str) -> None:
        """The caller is done with the session (it may be gone already: nothing to do then)."""
        with self._changed:
            if (session := self._sessions.get(session_id)) is not None:
                self._end(session, "closed by the caller", reason="closed")

    def end(self, session: Session, why: str, reason: str) -> None:
        """End `session`; `reason` labels the metric (closed, failed)."""
        with self._changed:
            self._end(session, why, reason)

    def close(self) -> None:
        """The server stops: end every session."""
        with self._changed:
            self._closed = True
            for session in list(self._sessions.values()):
                self._end(session, "the replica shut down", reason="closed")

    def _sweep(self) -> None:
        """End idle sessions even when no calls come (their memory is the point)."""
        with self._changed:
            while not self._closed:
                self._expire()
                self._changed.wait(max(0.05, min(self.idle_s / 4, 10.0)))

    # --- with the lock held ---

    def _open(self, session_id: str, prompts: list[str]) -> Session:
        if session_id in self._sessions:
            raise SessionError(f"tracking session {session_id!r} is open already; choose a new id per video run")
        while len(self._sessions) >= self.max_sessions:
            oldest = next(iter(self._sessions.values()))
            self._end(
                oldest,
                f"ended to make room for another (this replica holds at most {self.max_sessions}; "
                "raise --max-tracking-sessions)",
                reason="evicted",
            )
        session = Session(session_id, list(prompts), self._open_state(list(prompts)), last_used=self._clock())
        self._sessions[session_id] = session
        self._metrics.tracking_sessions.set(len(self._sessions))
        return session

    def _expire(self) -> None:
        now = self._clock()
        for session in [s for s in self._sessions.values() if now - s.last_used > self.idle_s]:
            self._end(session, f"no calls for {self.idle_s:g} s (--tracking-session-idle-s)", reason="expired")

    def _end(self, session: Session, why: str, reason: str) -> None:
        if session.ended:
            return
        session.ended = why
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
        self._ended[session.id] = why
        while len(self._ended) > 4 * self.max_sessions:
            self._ended.popitem(last=False)
        self._metrics.tracking_sessions.set(len(self._sessions))
        self._metrics.tracking_sessions_ended.labels(reason).inc()
        (log.info if reason == "closed" else log.warning)(
            "tracking session %s ended after %d frames: %s", session.id, session.tracked, why
        )
        self._changed.notify_all()
