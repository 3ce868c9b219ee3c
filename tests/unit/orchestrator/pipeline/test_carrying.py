"""Keyframes in the pipeline, with FakeModels (red regions are the object; the edit inverts
colours, a deterministic textured recolouring) on a lossless clip of a textured object moving
over a textured background: the model edits only the keyframes, the frames between them carry
the edit and come out as the per-frame edit would, the background stays bit-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation import evaluate
from orchestrator.jobs.validation import parse_extra
from orchestrator.media.crop_spool import CropSpool
from orchestrator.media.decode import probe
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline.carrying import carry_edits, crop_boxes, plan_keyframes
from orchestrator.pipeline.concurrency import KeyframePlan
from orchestrator.pipeline.editing import edit_frames
from orchestrator.pipeline.saving import Layer, output_frames
from orchestrator.vision.compositing import paste_mask
from tests.helpers import as_rgb, decode, job_context, tracked_masks, write_lossless

H, W, N = 96, 160, 32


def moving_object_clip(path: Path, speed: int, turns_at: int | None = None) -> Path:
    """A red, finely textured object moving `speed` px per frame over a textured grey background;
    from frame `turns_at` on it shows another side (another texture, a lighter red)."""
    yy, xx = np.mgrid[0:H, 0:W]
    background = np.stack([70 + 30 * np.sin(xx / 7.0) + 20 * np.cos(yy / 5.0)] * 3, axis=2)
    texture = np.sin(np.arange(32)[:, None] / 2.5) * np.cos(np.arange(40)[None, :] / 3.0)
    other_side = np.cos(np.arange(32)[:, None] / 1.5) * np.sin(np.arange(40)[None, :] / 2.0)
    frames = []
    for i in range(N):
        turned = turns_at is not None and i >= turns_at
        red, pattern = (225, other_side) if turned else (190, texture)
        frame = background.copy()
        x = 6 + speed * i
        frame[30:62, x : x + 40] = np.stack([red + 30 * pattern, 30 + 20 * pattern, 40 + 20 * pattern], axis=2)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return write_lossless(path, frames)


def edit_video(
    tmp_path: Path, clip: Path, extra: dict[str, str]
) -> tuple[list[np.ndarray], KeyframePlan, FakeModels, list[np.ndarray]]:
    """The editing stage (with carrying when keyframes are on) -> (frames with the edited boxes,
    keyframes, the models, paste masks)."""
    tmp_path.mkdir()
    options = parse_extra({"edit_size": "128", **extra})
    models = FakeModels()
    ctx = job_context(tmp_path, probe(clip, None), models, options)
    masks = tracked_masks(ctx)
    boxes = crop_boxes(ctx, masks)
    keys = KeyframePlan(N, ctx.stop)
    plan_keyframes(ctx, masks, boxes, keys)
    with CropSpool(tmp_path / "edits", N) as edits:
        if options.uses_keyframes:
            edit_frames(ctx, masks, edits, keys)
            assert carry_edits(ctx, boxes, keys, edits, N) == N - keys.count()
        else:
            edit_frames(ctx, masks, edits)
        frames = as_rgb(list(output_frames(ctx, [Layer(masks, edits)])))
    full = (0, 0, W, H)
    pasted = [paste_mask(masks.region(i, full), ctx.request.erode_kernel).astype(bool) for i in range(N)]
    masks.close()
    return frames, keys, models, pasted


def warp_error(tmp_path: Path, clip: Path, frames: list[np.ndarray], masks: list[np.ndarray], name: str):
    mask_video = write_lossless(
        tmp_path / f"{name}-mask.mkv", [np.repeat(m[..., None].astype(np.uint8) * 255, 3, axis=2) for m in masks]
    )
    return evaluate(clip, write_lossless(tmp_path / f"{name}.mkv", frames), mask_video)


@pytest.mark.parametrize("detail", ["model", "source"])
def test_keyframes_every_4_frames_edit_a_quarter_and_carry_the_rest_like_the_model(tmp_path, detail):
    clip = moving_object_clip(tmp_path / "clip.mkv", speed=2)
    every, _, every_models, masks = edit_video(tmp_path / "every", clip, {"detail": detail})
    keyed, keys, keyed_models, _ = edit_video(tmp_path / "keyed", clip, {"keyframe_interval": "4", "detail": detail})
    sent = sum(c.crops for c in keyed_models.edit_calls)
    assert sent == keys.count() == 9 and sent <= 0.3 * sum(c.crops for c in every_models.edit_calls)
    sources = decode(clip)
    for i in range(N):
        assert np.array_equal(keyed[i][~masks[i]], sources[i][~masks[i]])  # background bit-exact
        inside = np.abs(keyed[i].astype(int) - every[i].astype(int))[masks[i]]
        assert inside.mean() < 2.0, f"frame {i}: carried edit is {inside.mean():.1f} grey levels off"
    every_q = warp_error(tmp_path, clip, every, masks, "every")
    keyed_q = warp_error(tmp_path, clip, keyed, masks, "keyed")
    assert keyed_q.warp_error <= 1.1 * every_q.warp_error
    assert keyed_q.background_psnr_db == 100.0


def test_adaptive_keyframes_come_where_the_carried_edit_stops_being_trustworthy(tmp_path):
    """The flow follows a moving object well: keyframes only at the longest interval (16). When
    the object turns (another texture from frame 10 on), nothing of the last keyframe can be
    carried any more: a new keyframe there."""
    steady = edit_video(
        tmp_path / "steady", moving_object_clip(tmp_path / "steady.mkv", speed=2), {"keyframes": "adaptive"}
    )[1]
    assert [i for i, key in enumerate(steady) if key] == [0, 16, 31]
    turning = edit_video(
        tmp_path / "turning",
        moving_object_clip(tmp_path / "turning.mkv", speed=2, turns_at=10),
        {"keyframes": "adaptive"},
    )[1]
    assert [i for i, key in enumerate(turning) if key] == [0, 10, 26, 31]


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"keyframe_interval": "0"}, "extra[keyframe_interval]"),
        ({"keyframe_interval": "1001"}, "extra[keyframe_interval]"),
        ({"keyframe_interval": "four"}, "extra[keyframe_interval]"),
        ({"keyframes": "sometimes"}, "extra[keyframes]"),
    ],
)
def test_bad_keyframe_options_name_the_key(extra, field):
    from orchestrator.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        parse_extra(extra)
    assert caught.value.field == field


def test_cross_frame_consistency_sends_the_jobs_first_crop_with_every_edit_call(tmp_path):
    clip = moving_object_clip(tmp_path / "clip.mkv", speed=2)
    _, _, models, _ = edit_video(tmp_path / "cross", clip, {"consistency": "cross_frame", "edit_batch_size": "4"})
    anchors = [call.anchor for call in models.edit_calls]
    assert len(anchors) == N // 4 and anchors[0] is not None
    assert all(a is anchors[0] for a in anchors) and anchors[0].shape == (128, 128, 3)
    _, _, plain, _ = edit_video(tmp_path / "plain", clip, {})
    assert all(call.anchor is None for call in plain.edit_calls)
