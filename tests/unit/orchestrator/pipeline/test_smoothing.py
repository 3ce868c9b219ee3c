"""Smoothing as the saving pass applies it: EMA cuts flicker inside the mask, flow smoothing
follows motion, the background is untouched."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from orchestrator.media.decode import VideoInfo
from orchestrator.media.mask_store import MaskStore
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline.smoothing import Smoother
from orchestrator.request import EditOptions
from orchestrator.vision.crop import grow, region
from tests.helpers import job_context

H, W = 60, 80


def moving_object_clip(tmp_path, frames=12, speed=3):
    """Source: a textured square moving right. Edited: the square recoloured, with flicker."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    background = np.full((H, W, 3), 90, np.uint8)
    sources, edited, masks, targets = [], [], [], []
    for i in range(frames):
        x = 4 + speed * i
        src = background.copy()
        src[18:42, x:x + 24] = texture
        target = src.copy()
        target[18:42, x:x + 24] = texture // 2 + np.array([100, 0, 0], np.uint8)  # the "edit"
        flicker = target.copy()
        flicker[18:42, x:x + 24] = np.clip(target[18:42, x:x + 24].astype(int) + rng.integers(-40, 40), 0, 255)
        mask = np.zeros((H, W), bool)
        mask[18:42, x:x + 24] = True
        sources.append(src), edited.append(flicker), masks.append(mask), targets.append(target)
    return sources, edited, masks, targets


def smooth(tmp_path, sources, edited, masks, mode: str, window=4, alpha=0.6) -> list[np.ndarray]:
    """Smooth `edited` (full frames) as the saving pass would: source frames in order, each with its
    edited box (larger than the mask, as a crop box is)."""
    store = MaskStore(tmp_path / "masks.npy", len(masks), H, W)
    for i, m in enumerate(masks):
        store.put(i, m)
    info = VideoInfo(tmp_path / "src.mkv", W, H, Fraction(24), len(sources), "ffv1", False)
    ctx = job_context(tmp_path, info, FakeModels(), EditOptions(smoothing_mode=mode), smoothing_window=window,
                      smoothing_alpha=alpha, erode_kernel=0)
    smoother = Smoother(ctx, store)
    out = []
    for i, (source, frame, box) in enumerate(zip(sources, edited, store.boxes())):
        edit = None
        if box is not None:
            box = grow(box, 6, W, H)
            edit = (box, region(frame, box).copy())
        out.append(source.copy())
        smoother(i, out[-1], edit)
    assert smoother.finished.done()
    return out


def error_inside(frames, targets, masks) -> float:
    return float(np.mean([np.abs(f.astype(int) - t.astype(int))[m].mean() for f, t, m in
                          zip(frames[1:], targets[1:], masks[1:])]))


def test_smoothing_reduces_flicker_inside_the_mask_and_keeps_the_background(tmp_path):
    sources, edited, masks, targets = moving_object_clip(tmp_path, speed=0)  # still object
    out = smooth(tmp_path, sources, edited, masks, "ema")

    def change(frames):  # mean frame-to-frame change inside the mask
        return np.mean([np.abs(a.astype(int) - b.astype(int))[m].mean() for a, b, m in
                        zip(frames[1:], frames[:-1], masks[1:])])

    assert change(out) < 0.8 * change(edited)
    assert error_inside(out, targets, masks) < 0.8 * error_inside(edited, targets, masks)
    for o, e, m in zip(out, edited, masks):
        assert np.array_equal(o[~m], e[~m])  # outside the mask: untouched, bit for bit


def test_flow_smoothing_follows_a_moving_object_instead_of_ghosting(tmp_path):
    sources, edited, masks, targets = moving_object_clip(tmp_path, speed=3)
    (tmp_path / "ema").mkdir(), (tmp_path / "flow").mkdir()
    ema = error_inside(smooth(tmp_path / "ema", sources, edited, masks, "ema"), targets, masks)
    flow = error_inside(smooth(tmp_path / "flow", sources, edited, masks, "flow"), targets, masks)
    unsmoothed = error_inside(edited, targets, masks)
    # EMA blends the square with where it was (a ghost) and gains nothing on a moving object;
    # flow blends it with itself and removes as much flicker as on a still one.
    assert flow < 0.8 * unsmoothed and flow < 0.8 * ema
