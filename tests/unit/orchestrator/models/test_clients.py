"""The Models implementations: the gRPC client's target parsing, and FakeModels' contract."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.models.fake import FakeModels
from orchestrator.models.grpc_client import channel_target


def test_one_target_passes_as_is_and_a_list_becomes_one_round_robin_target():
    assert channel_target("dns:///modelservers:50052") == "dns:///modelservers:50052"
    assert channel_target("localhost:50052") == "localhost:50052"
    assert channel_target("127.0.0.1:1, 127.0.0.1:2,127.0.0.1:1") == "ipv4:127.0.0.1:1,127.0.0.1:2"


def test_a_bad_list_entry_is_named():
    with pytest.raises(ValueError, match="'nohost' is not host:port"):
        channel_target("127.0.0.1:1,nohost")


def test_fake_models_number_regions_left_to_right_and_invert_edits():
    frame = np.full((40, 60, 3), 90, np.uint8)
    frame[5:15, 40:50] = (220, 20, 20)
    frame[20:30, 5:15] = (220, 20, 20)
    models = FakeModels()
    [detections] = models.segment([frame], "car").frames
    assert [(d.object_id, d.box) for d in detections] == [(0, (5, 20, 15, 30)), (1, (40, 5, 50, 15))]
    assert detections[0].mask.sum() == 100
    [edited] = models.edit([frame], "x", 1.5, 7.5, 2, [3])
    assert np.array_equal(edited, 255 - frame) and models.edit_calls[0].seeds == [3]
