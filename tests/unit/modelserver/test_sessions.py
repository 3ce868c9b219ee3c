"""TrackingSessions on their own: the order of calls within a session, without a server."""

import threading
import time

import pytest

from modelserver.batching import DeadlinePassed
from modelserver.metrics import Metrics
from modelserver.sessions import SessionError, TrackingSessions


@pytest.fixture
def sessions():
    sessions = TrackingSessions(lambda prompts: object(), max_sessions=2, idle_s=60, metrics=Metrics())
    yield sessions
    sessions.close()


def test_an_early_call_whose_deadline_passes_is_a_deadline_not_a_broken_session(sessions):
    session = sessions.take_turn("walk", 0, ["hair"], deadline=None)
    sessions.tracked(session, 3)
    # The gRPC layer answers DeadlinePassed with DEADLINE_EXCEEDED, the code the caller's own
    # deadline gives: the session is intact, only the frames before this call never came.
    with pytest.raises(DeadlinePassed, match="frames 3-4 never arrived"):
        sessions.take_turn("walk", 5, ["hair"], deadline=time.monotonic() + 0.1)
    assert sessions.take_turn("walk", 3, ["hair"], deadline=None) is session


def test_an_early_call_waits_for_the_frames_before_it(sessions):
    session = sessions.take_turn("walk", 0, ["hair"], deadline=None)
    later = []
    waiter = threading.Thread(target=lambda: later.append(sessions.take_turn("walk", 2, ["hair"], None)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()
    sessions.tracked(session, 2)
    waiter.join(5)
    assert later == [session]


def test_calls_that_do_not_fit_the_session_are_refused(sessions):
    session = sessions.take_turn("walk", 0, ["hair"], deadline=None)
    sessions.tracked(session, 2)
    with pytest.raises(SessionError, match="repeats frames"):
        sessions.take_turn("walk", 1, ["hair"], deadline=None)
    with pytest.raises(SessionError, match="tracks"):
        sessions.take_turn("walk", 2, ["shirt"], deadline=None)
    sessions.close_now("walk")
    with pytest.raises(SessionError, match="closed by the caller"):
        sessions.take_turn("walk", 2, ["hair"], deadline=None)
