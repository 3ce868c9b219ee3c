"""The Models implementations: the gRPC client's target parsing, and FakeModels' contract."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.errors import TrackingLost
from orchestrator.models.fake import FakeModels
from orchestrator.models.grpc_client import channel_target, replica_addresses
from videoedit.v1.contract import EditParams


def test_one_target_passes_as_is_and_a_list_becomes_one_round_robin_target():
    assert channel_target("dns:///modelservers:50052") == "dns:///modelservers:50052"
    assert channel_target("localhost:50052") == "localhost:50052"
    assert channel_target("127.0.0.1:1, 127.0.0.1:2,127.0.0.1:1") == "ipv4:127.0.0.1:1,127.0.0.1:2"


def test_a_bad_list_entry_is_named():
    with pytest.raises(ValueError, match="'nohost' is not host:port"):
        channel_target("127.0.0.1:1,nohost")


def test_replicas_are_every_address_a_target_resolves_to():
    assert replica_addresses("127.0.0.1:1, 127.0.0.1:2,127.0.0.1:1") == ["127.0.0.1:1", "127.0.0.1:2"]
    assert replica_addresses("dns:///localhost:7") in (
        ["127.0.0.1:7"],
        ["[::1]:7"],
        ["[::1]:7", "127.0.0.1:7"],
        ["127.0.0.1:7", "[::1]:7"],
    )
    assert replica_addresses("unix:/tmp/model.sock") == ["unix:/tmp/model.sock"]


def _frame(*boxes: tuple[int, int]) -> np.ndarray:
    frame = np.full((40, 60, 3), 90, np.uint8)
    for y, x in boxes:
        frame[y : y + 10, x : x + 10] = (220, 20, 20)
    return frame


def test_fake_tracker_keeps_ids_across_calls_and_fakes_edits():
    models = FakeModels()
    tracker = models.track(["car"])
    [first] = tracker.segment([_frame((5, 40), (20, 5))], 0).frames
    assert sorted((d.object_id, d.box) for d in first) == [(0, (5, 20, 15, 30)), (1, (40, 5, 50, 15))]
    assert first[0].mask.sum() == 100
    # Both move; the left one now lies right of where the other was: ids follow the regions.
    [moved] = tracker.segment([_frame((8, 44), (22, 9))], 1).frames
    assert sorted((d.object_id, d.box[0]) for d in moved) == [(0, 9), (1, 44)]
    [edited] = models.edit([first[0].mask[..., None] * np.uint8(1)], "x", EditParams(1.5, 7.5, 2), seeds=[3])
    assert edited.max() == 255 and models.edit_calls[0].seeds == [3]


def test_fake_tracker_loses_its_session_on_the_calls_asked():
    models = FakeModels(lose_tracking={1})
    tracker = models.track(["car"])
    tracker.segment([_frame((5, 5))], 0)
    with pytest.raises(TrackingLost):
        tracker.segment([_frame((5, 5))], 1)
    with pytest.raises(TrackingLost):  # a lost session stays lost
        tracker.segment([_frame((5, 5))], 1)
    assert models.track(["car"]).segment([_frame((5, 5))], 0).frames[0][0].object_id == 0
