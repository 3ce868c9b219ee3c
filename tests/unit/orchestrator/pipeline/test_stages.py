"""Masking, propagating and editing in-process, with FakeModels (red regions are the object,
edits invert colours) on lossless clips whose right answers are known; and the driver's stage
order for both modes."""

from __future__ import annotations

import itertools
import logging
import threading
from concurrent.futures import Future
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from orchestrator.errors import InvalidArgument, JobCancelled, ModelServerError, TrackingLost
from orchestrator.jobs.validation import parse_extra
from orchestrator.media.crop_spool import CropSpool
from orchestrator.media.decode import decoded_frames, probe, read_frames
from orchestrator.media.encode import encode_h264
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline import carrying, output_paths, run_pipeline
from orchestrator.pipeline.concurrency import FrameWatermark, StagesBehind, StopReason, StopSignal, TrackedFrames
from orchestrator.pipeline.editing import _edit, edit_frames, edit_tracked, frame_seed
from orchestrator.pipeline.masking import find_objects
from orchestrator.pipeline.propagating import MAX_RESTARTS, mask_store, object_masks, propagate
from orchestrator.pipeline.saving import Layer, OutputPaths, output_frames
from orchestrator.request import CheckedRequest, EditOptions, JobStatus, VideoEditRequest
from orchestrator.vision.compositing import FEATHER_PX
from tests.helpers import RecordedProgress, as_rgb, decode, job_context, tracked_masks, write_lossless
from videoedit.v1 import contract

H, W, N = 64, 96, 20
SIDE = 24


def square_at(i: int) -> tuple[int, int]:
    """Top-left corner of the red square on frame i: it moves right 2 px per frame."""
    return 8 + 2 * i, 24


def square_clip(path: Path, appears: int = 0, frames: int = N) -> tuple[Path, list[np.ndarray]]:
    """A textured grey background and, from frame `appears` on, a moving red square; lossless, so
    decoded frames equal the written ones. Returns the clip and the true masks."""
    rng = np.random.default_rng(1)
    background = rng.integers(60, 110, (H, W, 3), dtype=np.uint8)
    images, masks = [], []
    for i in range(frames):
        frame, mask = background.copy(), np.zeros((H, W), bool)
        if i >= appears:
            x, y = square_at(i)
            frame[y : y + SIDE, x : x + SIDE] = (210, 30, 40)
            mask[y : y + SIDE, x : x + SIDE] = True
        images.append(frame)
        masks.append(mask)
    return write_lossless(path, images), masks


def test_masking_finds_the_object_in_the_first_chunk_with_it(tmp_path):
    clip, _ = square_clip(tmp_path / "late.mkv", appears=9)
    models = FakeModels()
    ctx = job_context(tmp_path, probe(clip, None), models, EditOptions(chunk_size=4, chunk_overlap=1))
    sighting = find_objects(ctx)
    assert sighting.start == 8  # chunks 0-3 and 4-7 had nothing; 8-11 holds frame 9
    assert models.segment_calls == [4, 4, 4]
    assert [bool(o) for o in sighting.objects] == [False, True, True, True]
    assert ctx.progress.done[-1] == 12  # the stage ends where the object was found


def test_a_prompt_the_model_cut_is_said_in_the_job_log(tmp_path, caplog):
    clip, _ = square_clip(tmp_path / "clip.mkv")
    ctx = job_context(
        tmp_path,
        probe(clip, None),
        FakeModels(prompt_words=3),
        EditOptions(chunk_size=8),
        mask_prompt="red square on a grey textured background",
    )
    with caplog.at_level(logging.WARNING, logger="tests"):
        find_objects(ctx)
    assert "it read only 'red square on'" in caplog.text


def test_masking_fails_naming_the_prompt_and_frames_when_nothing_matches(tmp_path):
    clip, _ = square_clip(tmp_path / "empty.mkv", appears=N)
    ctx = job_context(tmp_path, probe(clip, None), FakeModels(), EditOptions(chunk_size=8), mask_prompt="dog")
    with pytest.raises(InvalidArgument, match=r"mask_prompt: 'dog' matched nothing in frames 0-19"):
        find_objects(ctx)


@pytest.mark.parametrize(
    "sessions, calls",
    [
        # One tracking session: the sighting chunk (frames 0-5), then 4 new frames per call (room is
        # left for the 2 frames before, should a new session have to start there).
        (True, [6, 4, 4, 4, 2]),
        # No sessions (every call stands alone): up to 4 new frames after the 2 overlap frames each.
        (False, [6, 6, 6, 6, 4]),
    ],
)
def test_propagating_tracks_one_object_across_chunks_into_exact_masks(tmp_path, sessions, calls):
    clip, truth = square_clip(tmp_path / "clip.mkv", appears=3)
    models = FakeModels(sessions=sessions)
    ctx = job_context(tmp_path, probe(clip, None), models, EditOptions(chunk_size=6, chunk_overlap=2))
    masks = tracked_masks(ctx)
    for i in range(N):
        assert np.array_equal(masks.get(i), truth[i]), f"frame {i}"
    assert masks.frames_with_object() == N - 3
    assert models.segment_calls == calls
    assert len(models.trackers) == 1 and models.trackers[0].closed


@pytest.mark.parametrize("lost_call", [1, 2, 3])
def test_a_lost_tracking_session_restarts_from_the_frames_before_and_keeps_the_ids(tmp_path, caplog, lost_call):
    # Call 0 is masking's; the model server "loses" the session on a later call (a replica died).
    # With instances=1 only the object's first id is edited: a new id after the restart would
    # leave the rest of the video unmasked.
    clip, truth = square_clip(tmp_path / "clip.mkv")
    models = FakeModels(lose_tracking={lost_call})
    ctx = job_context(tmp_path, probe(clip, None), models, EditOptions(chunk_size=6, chunk_overlap=2, instances=1))
    with caplog.at_level(logging.WARNING, logger="tests"):
        masks = tracked_masks(ctx)
    for i in range(N):
        assert np.array_equal(masks.get(i), truth[i]), f"frame {i}"
    assert "tracking starts again in a new session" in caplog.text
    first, second = models.trackers
    assert first.closed and second.closed
    lost_at = 6 + 4 * (lost_call - 1)
    # The new session starts with the 2 frames before the lost chunk, then goes on from there.
    assert second.calls[0] == (0, 2 + 4) and sum(n for _, n in second.calls) == 2 + N - lost_at


def test_propagating_gives_up_after_repeated_lost_sessions(tmp_path):
    clip, _ = square_clip(tmp_path / "clip.mkv")
    models = FakeModels(lose_tracking=set(range(1, 100)))
    ctx = job_context(tmp_path, probe(clip, None), models, EditOptions(chunk_size=6, chunk_overlap=2))
    with pytest.raises(TrackingLost):
        tracked_masks(ctx)
    assert all(t.closed for t in models.trackers) and len(models.trackers) == 1 + MAX_RESTARTS


def test_editing_sends_only_frames_with_the_object_and_keeps_the_background_bit_exact(tmp_path):
    clip, truth = square_clip(tmp_path / "clip.mkv", appears=5)
    models = FakeModels()
    options = EditOptions(chunk_size=8, edit_size=64, edit_batch_size=4)
    ctx = job_context(tmp_path, probe(clip, None), models, options, erode_kernel=0)
    masks = tracked_masks(ctx)
    sources = [frame for _, frame in read_frames(ctx.info)]
    with CropSpool(tmp_path / "edited.crops", N) as boxes:
        assert edit_frames(ctx, masks, boxes) == 4
        edited = as_rgb(list(output_frames(ctx, [Layer(masks, boxes)])))
        assert [boxes.has(i) for i in range(N)] == [m.any() for m in truth]
    assert [c.crops for c in models.edit_calls] == [4, 4, 4, 3]  # 15 frames with the object, batches of 4
    req = ctx.request
    params = contract.EditParams(req.image_guidance_scale, req.guidance_scale, req.num_inference_steps)
    assert all(
        c.instruction == "make it blue" and set(c.seeds) == {0} and c.params == params for c in models.edit_calls
    )
    for i, (out, src, mask) in enumerate(zip(edited, sources, truth)):
        assert np.array_equal(out[~mask], src[~mask]), f"background changed on frame {i}"
        if mask.any():  # the square's core, past the feathered edge, shows the fake edit (inverted colours)
            core = cv2.erode(mask.astype(np.uint8), np.ones((2 * FEATHER_PX + 9,) * 2, np.uint8)).astype(bool)
            assert np.abs(out[core].astype(int) - (255 - src[core].astype(int))).mean() < 10


def test_frames_without_an_edit_reach_the_encoder_as_decoded(tmp_path):
    """In 4:2:0 video (nearly all), a frame without an edit is never converted to RGB and back, and
    an edited one is its decoded samples with only the pixels the edit changed written anew."""
    lossless, truth = square_clip(tmp_path / "clip.mkv", appears=5)
    source = probe(lossless, None)
    clip = tmp_path / "clip.mp4"
    encode_h264(
        clip,
        (frame for _, frame in read_frames(source)),
        source,
        audio_from=None,
        options={"qp": "0", "preset": "ultrafast"},
    )
    ctx = job_context(tmp_path, probe(clip, None), FakeModels(), EditOptions(chunk_size=8, edit_size=64))
    masks = tracked_masks(ctx)
    with CropSpool(tmp_path / "edited.crops", N) as boxes:
        edit_frames(ctx, masks, boxes)
        output = list(output_frames(ctx, [Layer(masks, boxes)]))
    decoded = [frame.to_ndarray() for _, frame in decoded_frames(ctx.info)]
    assert all(isinstance(frame, av.VideoFrame) for frame in output)
    for i, (out, samples, mask) in enumerate(zip(output, decoded, truth, strict=True)):
        changed = out.to_ndarray() != samples
        assert changed.any() == mask.any(), f"frame {i}"
        near = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # the paste's feathered edge
        assert not changed[: mask.shape[0]][~near].any(), f"luma changed outside the edit on frame {i}"


def test_editing_keeps_two_edit_calls_in_flight_in_batches_the_model_server_takes(tmp_path):
    clip, truth = square_clip(tmp_path / "clip.mkv")
    models = FakeModels(max_edit_batch=3, edit_seconds=0.15)  # a slow model server taking 3 crops a call
    ctx = job_context(tmp_path, probe(clip, None), models, EditOptions(chunk_size=8, edit_size=64, edit_batch_size=8))
    masks = tracked_masks(ctx)
    sources = [frame for _, frame in read_frames(ctx.info)]
    with CropSpool(tmp_path / "edited.crops", N) as boxes:
        edit_frames(ctx, masks, boxes)
        edited = as_rgb(list(output_frames(ctx, [Layer(masks, boxes)])))
    assert [c.crops for c in models.edit_calls] == [3] * 6 + [2]  # edit_batch_size 8 lowered to the server's 3
    assert models.most_edits_at_once == 2
    seeds = [s for c in models.edit_calls for s in c.seeds]
    assert len(seeds) == N  # every frame once, in order: nothing lost or doubled by the overlap
    for out, src, mask in zip(edited, sources, truth):
        assert np.array_equal(out[~mask], src[~mask]) and not np.array_equal(out[mask], src[mask])


def test_editing_says_frames_without_an_edit_are_final_before_the_model_answers(tmp_path):
    """The saving pass follows `ready`: frames before the oldest Edit call in flight have nothing
    to wait for, so they are final as soon as that call is sent, not when it returns."""
    clip, truth = square_clip(tmp_path / "clip.mkv", appears=5)
    answered: list[int] = []
    told = threading.Event()  # the model answers only once the saving pass was told something

    class Answering(FakeModels):
        def edit(self, crops, *args, **kwargs):
            edited = super().edit(crops, *args, **kwargs)
            told.wait(5)
            answered.append(len(crops))
            return edited

    class Recorded(FrameWatermark):
        def __init__(self) -> None:
            super().__init__(StopSignal())
            self.seen: list[tuple[int, int]] = []  # (value, Edit calls answered by then)

        def advance(self, value: int) -> None:
            self.seen.append((value, len(answered)))
            told.set()
            super().advance(value)

    ctx = job_context(
        tmp_path, probe(clip, None), Answering(), EditOptions(chunk_size=8, edit_size=64, edit_batch_size=4)
    )
    masks = tracked_masks(ctx)
    ready = Recorded()
    with CropSpool(tmp_path / "edited.crops", N) as boxes:
        edit_frames(ctx, masks, boxes, ready=ready)
    assert ready.seen[0] == (5, 0)  # frames 0-4 have no object: final before any answer
    values = [value for value, _ in ready.seen]
    assert values == sorted(values) and values[-1] == N


@pytest.mark.parametrize("lose_tracking", [set(), {2}])
def test_editing_behind_tracking_edits_what_editing_after_it_does(tmp_path, lose_tracking):
    """Edited as propagating hands the frames over (crops from tracking's decode, boxes stabilised
    as their masks become final) or after it from a decode of its own: the same crops, boxes and
    seeds. The object leaves for longer than max_gap and comes back; tracking may have to start
    again in a new session (the chunks in flight are sent again), and no frame is handed over twice."""
    rng = np.random.default_rng(2)
    background = rng.integers(60, 110, (H, W, 3), dtype=np.uint8)
    frames = []
    for i in range(N):
        frame = background.copy()
        if not 9 <= i < 14:
            x, y = square_at(i)
            frame[y : y + SIDE, x : x + SIDE] = (210, 30, 40)
        frames.append(frame)
    clip = write_lossless(tmp_path / "clip.mkv", frames)
    options = EditOptions(chunk_size=6, chunk_overlap=2, edit_size=64, edit_batch_size=4)
    after, behind = FakeModels(), FakeModels(lose_tracking=lose_tracking)
    ctx = job_context(tmp_path, probe(clip, None), after, options)
    masks = tracked_masks(ctx)
    (tmp_path / "behind").mkdir()
    ctx_behind = job_context(tmp_path / "behind", ctx.info, behind, options)
    tracked = TrackedFrames(capacity=2, stop=ctx_behind.stop)
    with (
        CropSpool(tmp_path / "after.crops", N) as spooled_after,
        CropSpool(tmp_path / "behind.crops", N) as spooled_behind,
        mask_store(ctx_behind, 0) as masks_behind,
        object_masks(ctx_behind) as objects_behind,
    ):
        edit_frames(ctx, masks, spooled_after)
        with StagesBehind(ctx_behind) as stages:
            editing = stages.start("editing", edit_tracked, tracked, spooled_behind)
            propagate(ctx_behind, find_objects(ctx_behind), [masks_behind], objects_behind, [tracked])
            stages.finish(editing)
        for i in range(N):
            assert np.array_equal(masks_behind.get(i), masks.get(i))
            a, b = spooled_after.get(i), spooled_behind.get(i)
            assert (a is None) == (b is None) == (9 <= i < 14), f"frame {i}"
            if a is not None:
                assert a[0] == b[0] and np.array_equal(a[1], b[1]), f"frame {i}"
    assert sorted(s for c in behind.edit_calls for s in c.seeds) == sorted(s for c in after.edit_calls for s in c.seeds)
    # Behind tracking, the stretch before the gap goes when the object leaves, not with the next one.
    assert [c.crops for c in behind.edit_calls] == [4, 4, 1, 4, 2]


def test_the_model_edits_while_the_video_is_still_being_tracked(tmp_path):
    """The first Edit call comes before the last chunk is tracked (its Segment call waits up to
    5 s for it; run one after the other, it never comes)."""
    clip, _ = square_clip(tmp_path / "clip.mkv")
    edited = threading.Event()
    edited_first: list[bool] = []

    class Watching(FakeModels):
        def track(self, prompts):
            tracker = super().track(prompts)
            segment = tracker.segment

            def last_waits(frames, first_frame, visual=()):
                if first_frame + len(frames) == N:
                    edited_first.append(edited.wait(5))
                return segment(frames, first_frame, visual)

            tracker.segment = last_waits
            return tracker

        def edit(self, crops, *args, **kwargs):
            edited.set()
            return super().edit(crops, *args, **kwargs)

    progress = RecordedProgress()
    outputs = run_video(tmp_path, clip, Watching(), progress, edit_size="64", edit_batch_size="2", chunk_size="6")
    assert edited_first == [True]
    assert outputs.summary == f"{N} frames edited by the model (frames 0-{N - 1})"
    assert [s.value for s in progress.stages] == list(contract.STAGE_NAMES)


def test_a_cancel_lands_while_tracking_waits_for_editing_and_editing_for_the_model(tmp_path):
    """Tracking waits for editing when the hand-over is full, and editing waits on the model server:
    a cancel still lands at once, not when the Edit call in flight finishes (the fake model answers
    only after the job has ended, or after 10 s)."""
    clip, _ = square_clip(tmp_path / "clip.mkv")
    stop, job_ended = StopSignal(), threading.Event()
    answered_before_the_end: list[bool] = []

    class Slow(FakeModels):
        def edit(self, crops, *args, **kwargs):
            stop.stop(StopReason.CANCELLED)  # while this call is in flight
            job_ended.wait(10)
            answered_before_the_end.append(not job_ended.is_set())
            return super().edit(crops, *args, **kwargs)

    models = Slow()
    with pytest.raises(JobCancelled):
        run_video(tmp_path, clip, models, stop=stop, edit_size="64", edit_batch_size="1", chunk_size="4")
    job_ended.set()
    assert not [t.name for t in threading.enumerate() if t.name in ("editing", "saving", "mask video")]
    assert models.calls.wait(5) == 0 and not any(answered_before_the_end)


@pytest.mark.parametrize("failing", ["edit", "tracking"])
def test_a_failure_behind_or_in_tracking_fails_the_job_with_its_error_and_stops_the_other(tmp_path, failing):
    """Editing runs behind propagating: an Edit call failing mid-video fails the job with the model
    server's error (tracking, waiting to hand frames over, is stopped); tracking failing stops
    editing. No thread of the job is left running."""
    clip, _ = square_clip(tmp_path / "clip.mkv")

    class Failing(FakeModels):
        def edit(self, crops, *args, **kwargs):
            if failing == "edit" and len(self.edit_calls) == 1:
                raise ModelServerError("the model server went away")
            return super().edit(crops, *args, **kwargs)

    models = Failing(lose_tracking=set(range(2, 100)) if failing == "tracking" else set())
    with pytest.raises(ModelServerError if failing == "edit" else TrackingLost):
        run_video(tmp_path, clip, models, edit_size="64", edit_batch_size="1", chunk_size="4")
    assert not [t.name for t in threading.enumerate() if t.name in ("editing", "saving", "mask video")]


def run_video(
    tmp_path: Path,
    clip: Path,
    models: FakeModels,
    progress: RecordedProgress | None = None,
    mode: str = "video",
    stop: StopSignal | None = None,
    **extra: str,
) -> OutputPaths:
    """The whole pipeline on `clip` (prompts "car" / "make it blue", 2 steps, `extra` fields)."""
    request = VideoEditRequest(
        job_id="job",
        input_video_path=clip,
        output_dir=tmp_path / "out",
        mode=mode,
        mask_prompt="car",
        edit_prompt="make it blue",
        num_inference_steps=2,
    )
    (tmp_path / "out").mkdir()
    return run_pipeline(
        CheckedRequest(request, parse_extra(extra)),
        models,
        progress or RecordedProgress(),
        logging.getLogger("tests"),
        tmp_path,
        stop or StopSignal(),
        output_paths(request),
    )


def run_job(tmp_path: Path, clip: Path, mode: str, **extra: str) -> tuple[RecordedProgress, FakeModels, Path]:
    progress, models = RecordedProgress(), FakeModels()
    return progress, models, run_video(tmp_path, clip, models, progress, mode, **extra).video


def test_the_driver_runs_every_stage_in_the_shared_order(tmp_path):
    clip, _ = square_clip(tmp_path / "clip.mkv")
    progress, models, output = run_job(tmp_path, clip, "video", chunk_size="8", edit_size="64")
    assert [s.value for s in progress.stages] == list(contract.STAGE_NAMES)
    frames = decode(output)
    assert len(frames) == N and frames[0].shape == (H, W, 3)
    assert sum(c.crops for c in models.edit_calls) == N


def test_smoothing_and_saving_run_behind_editing(tmp_path):
    """With a slow model, smoothing and saving follow the edited frames while editing goes on:
    when their own stages begin, most of their work is done (the model server is not left idle
    while they run alone at the end)."""
    clip, _ = square_clip(tmp_path / "clip.mkv")
    progress = RecordedProgress()
    run_video(tmp_path, clip, FakeModels(edit_seconds=0.05), progress, edit_size="64", edit_batch_size="2")
    smoothing_start = progress.stage_starts[JobStatus.SMOOTHING]
    saving_start = progress.stage_starts[JobStatus.SAVING]
    assert progress.done[smoothing_start] >= N * 3 // 4, progress.done[smoothing_start:saving_start]
    assert progress.done[saving_start] >= N * 3 // 4  # of 2 x N: the output video is mostly written


def test_with_keyframes_gaps_are_carried_while_the_model_edits_later_keyframes(tmp_path, monkeypatch):
    """Carrying follows the keyframe edits: the first gap is filled before the last keyframe's
    Edit call starts (that call waits up to 5 s for it; run one after the other, it never comes)."""
    clip, _ = square_clip(tmp_path / "clip.mkv")
    carried = threading.Event()
    fill_gap = carrying._fill_gap

    def filling(*args, **kwargs):
        filled = fill_gap(*args, **kwargs)
        carried.set()
        return filled

    monkeypatch.setattr(carrying, "_fill_gap", filling)
    carried_before: list[bool] = []
    calls = itertools.count(1)  # next() is atomic: two calls run at once

    class Recorded(FakeModels):
        def edit(self, crops, *args, **kwargs):
            if next(calls) == 5:  # keyframes 0, 4, 8, 12 went before; this is 16 (19 comes last)
                carried_before.append(carried.wait(5))
            return super().edit(crops, *args, **kwargs)

    progress, models = RecordedProgress(), Recorded()
    outputs = run_video(tmp_path, clip, models, progress, edit_size="64", edit_batch_size="1", keyframe_interval="4")
    assert carried_before == [True]
    assert [c.crops for c in models.edit_calls] == [1] * 6  # keyframes 0, 4, 8, 12, 16 and the last, 19
    assert outputs.summary == "6 frames edited by the model, 14 carried from keyframes"
    editing = progress.done[progress.stage_starts[JobStatus.EDITING] : progress.stage_starts[JobStatus.SMOOTHING]]
    assert editing == sorted(editing) and editing[-1] == 2 * N  # edited, then carried: never backwards


def test_adaptive_keyframes_are_edited_while_the_rest_of_the_video_is_still_being_planned(tmp_path, monkeypatch):
    """Planning adaptive keyframes is a pass over the video of its own: the model gets the first
    keyframe before that pass ends (planning waits up to 5 s for it half-way through; run one after
    the other, it never comes)."""
    clip, _ = square_clip(tmp_path / "clip.mkv")
    editing_began = threading.Event()
    planned_frames = itertools.count(1)
    carried_share = carrying._carried_share
    began_first: list[bool] = []

    def judging(*args, **kwargs):
        if next(planned_frames) == N // 2:
            began_first.append(editing_began.wait(5))
        return carried_share(*args, **kwargs)

    monkeypatch.setattr(carrying, "_carried_share", judging)

    class Recorded(FakeModels):
        def edit(self, crops, *args, **kwargs):
            editing_began.set()
            return super().edit(crops, *args, **kwargs)

    outputs = run_video(tmp_path, clip, Recorded(), edit_size="64", edit_batch_size="1", keyframes="adaptive")
    assert began_first == [True]
    assert outputs.summary == "6 frames edited by the model, 14 carried from keyframes"


def test_with_keyframes_a_failing_edit_call_fails_the_job_and_stops_carrying(tmp_path):
    """The model server failing on a later keyframe fails the job with its error; carrying, which
    waits behind editing for that keyframe, is stopped rather than left waiting."""
    clip, _ = square_clip(tmp_path / "clip.mkv")

    class Failing(FakeModels):
        def edit(self, crops, *args, **kwargs):
            if len(self.edit_calls) == 3:
                raise ModelServerError("the model server went away")
            return super().edit(crops, *args, **kwargs)

    with pytest.raises(ModelServerError, match="went away"):
        run_video(tmp_path, clip, Failing(), edit_size="64", edit_batch_size="1", keyframe_interval="4")
    assert not [t.name for t in threading.enumerate() if t.name in ("carrying", "saving", "mask video")]


@pytest.mark.timeout(60)
def test_adaptive_keyframes_whose_planning_fails_fail_the_job_with_its_error(tmp_path, monkeypatch):
    """Editing waits on the plan frame by frame: a failing planning pass stops the plan, so the
    job fails with planning's error instead of waiting for frames that never get decided."""
    clip, _ = square_clip(tmp_path / "clip.mkv")
    judged = itertools.count(1)
    carried_share = carrying._carried_share

    def failing(*args, **kwargs):
        if next(judged) == 5:
            raise RuntimeError("planning broke on a frame")
        return carried_share(*args, **kwargs)

    monkeypatch.setattr(carrying, "_carried_share", failing)
    with pytest.raises(RuntimeError, match="planning broke"):
        run_video(tmp_path, clip, FakeModels(), edit_size="64", keyframes="adaptive")
    assert not [t.name for t in threading.enumerate() if t.name in ("planning", "carrying", "saving", "mask video")]


def test_single_frame_mode_edits_one_crop_into_pngs(tmp_path):
    clip, truth = square_clip(tmp_path / "clip.mkv")
    progress, models, output = run_job(
        tmp_path, clip, "single_frame", frame_index="7", edit_size="64", scheduler="dpmpp_2m"
    )
    assert progress.stages == [JobStatus.EXTRACTING, JobStatus.MASKING, JobStatus.EDITING, JobStatus.SAVING]
    assert [(c.crops, c.seeds, c.params.scheduler) for c in models.edit_calls] == [(1, [0], "dpmpp_2m")]
    png = cv2.cvtColor(cv2.imread(str(output)), cv2.COLOR_BGR2RGB)
    source = dict(read_frames(probe(clip, None)))[7]
    assert np.array_equal(png[~truth[7]], source[~truth[7]]) and not np.array_equal(png, source)
    assert (tmp_path / "out" / "job_mask.png").is_file()


def test_frame_seeds_are_shared_or_per_frame():
    assert [frame_seed(7, i, "shared") for i in range(3)] == [7, 7, 7]
    assert [frame_seed(7, i, "per_frame") for i in range(3)] == [7, 8, 9]


def test_the_final_status_says_which_frames_were_edited(tmp_path):
    from orchestrator.pipeline.driver import _which

    pixels = np.zeros((2, 2, 3), np.uint8)
    with CropSpool(tmp_path / "edits", 40) as edits:
        assert _which(edits) == ""
        for index in (3, 4, 5, 9, 12, 13):
            edits.put(index, (0, 0, 2, 2), pixels)
        assert _which(edits) == " (frames 3-5, 9, 12-13)"
        for index in (20, 30):
            edits.put(index, (0, 0, 2, 2), pixels)
        assert _which(edits) == " (frames 3-5, 9, 12-13, 20, ...)"


def test_an_answered_edit_call_is_spooled_as_soon_as_editing_looks_not_when_its_slot_is_needed(tmp_path):
    """Behind tracking the next crops may be long in coming: an Edit call answered meanwhile is
    collected (spooled, checkpointed, `ready` advanced) when editing next sends a call, not only
    when a third call needs its slot, so a job killed then does not edit those crops again."""
    clip, _ = square_clip(tmp_path / "clip.mkv")
    ctx = job_context(tmp_path, probe(clip, None), FakeModels(), EditOptions(edit_size=64, edit_batch_size=2))
    frames = [frame for _, frame in read_frames(ctx.info)]
    submitted: list[Future] = []
    submit = ctx.models.calls.submit

    def recorded(*args):
        submitted.append(submit(*args))
        return submitted[-1]

    ctx.models.calls.submit = recorded
    ready = FrameWatermark(StopSignal())
    advanced: list[int] = []
    ready.advance = lambda value: advanced.append(value)  # what editing says is final, in order
    final_when_asked_for_frame_4: list[int] = []

    def crops():
        for index in range(6):
            if index == 3:
                submitted[0].result(timeout=10)  # the call for frames 0-1 is answered before 2-3 are sent
            if index == 4:
                final_when_asked_for_frame_4.append(max(advanced, default=0))
            yield index, frames[index], (0, 0, 32, 32)

    with CropSpool(tmp_path / "edited.crops", N) as boxes:
        assert _edit(ctx, crops(), boxes, ready) == 3
    assert final_when_asked_for_frame_4 == [2]  # collected when 2-3 were sent: only one call in flight then
