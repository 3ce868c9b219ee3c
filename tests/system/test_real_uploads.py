"""Real uploads keep their time through a real job (tests.media_corpus: variable frame rate in mp4
and mkv, video starting after its audio, camcorder M2TS starting at 1.4 s and at 10 s, two audio
tracks, Opus): each frame where it was, the audio in place against the picture and cut to it,
every audio track kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.client import VideoEditClient
from tests.helpers import FAST_JOB
from tests.media_corpus import CORPUS, make, times
from videoedit.v1 import video_edit_pb2 as pb


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_frame_times_and_audio_stay_where_they_were(stack, media_dir, name):
    shape = CORPUS[name]
    source = make(media_dir / name, shape)
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(str(source), "car", "make it blue", job_id=f"upload-{name}", **FAST_JOB)
        final = client.wait(f"upload-{name}")
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    before, after = times(source), times(Path(final.output_video_path))
    start = before.frames[0]
    half_frame = min(shape.intervals) / 2
    assert len(after.frames) == len(before.frames)
    assert max(abs((b - start) - a) for b, a in zip(before.frames, after.frames, strict=True)) < half_frame
    video_end = after.frames[-1] + shape.intervals[-1]
    assert len(after.audio) == len(before.audio) == shape.audio_tracks
    for (source_start, source_end), (audio_start, audio_end) in zip(before.audio, after.audio, strict=True):
        assert abs(audio_start - max(source_start - start, 0.0)) < 0.025  # its offset to the first frame
        assert abs(audio_end - min(source_end - start, video_end)) < 0.050  # cut at the picture's end
    log = Path(final.logs_path).read_text()
    assert log.count("saving: track") == shape.audio_tracks  # what was done with each track is said
