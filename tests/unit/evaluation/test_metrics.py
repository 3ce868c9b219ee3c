"""Edit-quality metrics on synthetic videos whose right answers are known (lossless FFV1 files,
so codec error does not blur them)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from evaluation import evaluate
from evaluation.metrics import mask_continuity
from tests.helpers import write_lossless

H, W, N = 96, 128, 8


def write(path: Path, frames) -> Path:
    return write_lossless(path, list(frames))


def scene(shift: int = 2) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A smooth textured background and a textured square moving `shift` px per frame; its masks."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W]
    background = np.stack([60 + 40 * np.sin(xx / 9.0) + 20 * np.cos(yy / 7.0)] * 3, axis=2)
    texture = np.clip(
        128
        + 60 * np.sin(np.arange(32)[:, None] / 3.0) * np.cos(np.arange(32)[None, :] / 4.0)
        + rng.normal(0, 5, (32, 32)),
        0,
        255,
    )[..., None] * np.array([1.0, 0.8, 0.6])
    frames, masks = [], []
    for i in range(N):
        frame = background.copy()
        x = 20 + shift * i
        frame[30:62, x : x + 32] = texture
        mask = np.zeros((H, W), bool)
        mask[30:62, x : x + 32] = True
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        masks.append(mask)
    return frames, masks


def mask_frames(masks):
    return [np.repeat(m[..., None] * np.uint8(255), 3, axis=2) for m in masks]


@pytest.fixture
def files(tmp_path):
    frames, masks = scene()
    return tmp_path, frames, masks, write(tmp_path / "in.mkv", frames), write(tmp_path / "mask.mkv", mask_frames(masks))


def test_identical_videos_score_perfectly(files):
    tmp, frames, masks, source, mask = files
    q = evaluate(source, source, mask)
    assert q.frames == N and q.background_psnr_db == 100.0 and q.background_ssim == pytest.approx(1.0)
    assert q.warp_error == pytest.approx(q.source_warp_error) and q.flicker == pytest.approx(q.source_flicker)
    assert q.mask_temporal_iou < 1.0 and 0.05 < q.mask_coverage < 0.15  # the object moves


def test_a_consistent_edit_of_a_moving_object_keeps_the_inputs_warp_error(files):
    tmp, frames, masks, source, mask = files
    edited = [np.where(m[..., None], 255 - f, f) for f, m in zip(frames, masks)]  # recoloured, moves with it
    q = evaluate(source, write(tmp / "out.mkv", edited), mask)
    assert q.background_psnr_db > 45  # dilation keeps the seam out; the rest is untouched
    assert q.source_warp_error < 3.0  # the flow follows a known 2-px shift
    assert q.warp_error < q.source_warp_error + 4.0


def test_flicker_inside_the_mask_shows_in_warp_error_and_flicker(files):
    tmp, frames, masks, source, mask = files
    offsets = [0, 30, 0, 30, 0, 30, 0, 30]  # brightness jumping by 30 levels every frame
    flickering = [
        np.where(m[..., None], np.clip(f.astype(int) + o, 0, 255), f).astype(np.uint8)
        for f, m, o in zip(frames, masks, offsets)
    ]
    q = evaluate(source, write(tmp / "out.mkv", flickering), mask)
    assert q.warp_error > q.source_warp_error + 15
    assert q.flicker > q.source_flicker + 15


def test_pure_noise_scores_badly(files):
    tmp, frames, masks, source, mask = files
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(N)]
    q = evaluate(source, write(tmp / "noise.mkv", noise), mask)
    assert q.background_psnr_db < 12 and q.background_ssim < 0.1
    assert q.warp_error > 5 * max(q.source_warp_error, 1.0)


def test_videos_of_different_length_are_refused(files):
    tmp, frames, masks, source, mask = files
    with pytest.raises(ValueError, match="differ in length"):
        evaluate(source, write(tmp / "short.mkv", frames[:4]), mask)


def test_mask_continuity_tells_a_jump_at_a_boundary_from_smooth_motion(tmp_path):
    """A mask moving 1 px per frame, except at frame 5 where it vanishes for one frame."""
    masks = []
    for t in range(10):
        m = np.zeros((32, 48), dtype=bool)
        if t != 5:
            m[8:24, 4 + t : 20 + t] = True
        masks.append(m)
    video = write(tmp_path / "mask.mkv", mask_frames(masks))
    found = mask_continuity(video, boundaries={5, 6})  # it vanishes at 5 and comes back at 6
    assert found.boundary_iou == 0.0 and found.interior_iou == pytest.approx(15 / 17, abs=0.02)
    assert found.frames_with_mask == 0.9
    assert math.isnan(mask_continuity(video, boundaries=set()).boundary_iou)


def test_a_small_object_in_an_hd_frame_is_followed_so_a_consistent_edit_keeps_a_low_warp_error(tmp_path):
    """Flow is computed around the mask: a 48 px object in a 1280x720 frame keeps its resolution
    (whole-frame flow at 480 px saw it barely move, and a consistent edit looked like flicker)."""
    height, width, side, frames_n = 720, 1280, 48, 5
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([90 + 30 * np.sin(xx / 23.0) + 20 * np.cos(yy / 17.0)] * 3, axis=2).astype(np.uint8)
    texture = (
        128
        + 80 * np.sin(np.arange(side)[:, None] / 2.0) * np.cos(np.arange(side)[None, :] / 2.5)
        + rng.normal(0, 4, (side, side))
    )[..., None] * np.array([1.0, 0.7, 0.5])
    frames, masks = [], []
    for i in range(frames_n):
        frame, mask = background.copy(), np.zeros((height, width), bool)
        x = 600 + 4 * i
        frame[300 : 300 + side, x : x + side] = np.clip(texture, 0, 255).astype(np.uint8)
        mask[300 : 300 + side, x : x + side] = True
        frames.append(frame)
        masks.append(mask)
    edited = [np.where(m[..., None], 255 - f, f) for f, m in zip(frames, masks)]
    q = evaluate(
        write(tmp_path / "in.mkv", frames),
        write(tmp_path / "out.mkv", edited),
        write(tmp_path / "mask.mkv", mask_frames(masks)),
    )
    assert q.source_warp_error < 3.0
    assert q.warp_error < q.source_warp_error + 4.0
