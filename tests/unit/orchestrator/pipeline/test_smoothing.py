"""Smoothing as the saving pass applies it: EMA cuts flicker inside the mask, flow smoothing
follows motion, the background is untouched."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from orchestrator.media.crop_spool import CropSpool
from orchestrator.media.decode import VideoInfo
from orchestrator.media.mask_store import MaskStore
from orchestrator.models.fake import FakeModels
from orchestrator.pipeline.saving import Layer, output_frames
from orchestrator.pipeline.smoothing import Smoother
from orchestrator.request import EditOptions
from orchestrator.vision.crop import grow, region
from tests.helpers import as_rgb, job_context, write_lossless

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
        src[18:42, x : x + 24] = texture
        target = src.copy()
        target[18:42, x : x + 24] = texture // 2 + np.array([100, 0, 0], np.uint8)  # the "edit"
        flicker = target.copy()
        flicker[18:42, x : x + 24] = np.clip(target[18:42, x : x + 24].astype(int) + rng.integers(-40, 40), 0, 255)
        mask = np.zeros((H, W), bool)
        mask[18:42, x : x + 24] = True
        sources.append(src), edited.append(flicker), masks.append(mask), targets.append(target)
    return sources, edited, masks, targets


def smooth(tmp_path, sources, edited, masks, mode: str | None, window=4, alpha=0.6) -> list[np.ndarray]:
    """Smooth `edited` (full frames) as the saving pass does: edited boxes (larger than the mask,
    as a crop box is) pasted into the decoded source, then smoothed (`mode` None: not smoothed)."""
    source = write_lossless(tmp_path / "src.mkv", sources)  # lossless, so "decoded input" is exact
    store = MaskStore(tmp_path / "masks.npy", len(masks), H, W)
    for i, m in enumerate(masks):
        store.put(i, m)
    info = VideoInfo(source, W, H, Fraction(24), len(sources), "ffv1", False)
    ctx = job_context(
        tmp_path,
        info,
        FakeModels(),
        EditOptions(smoothing_mode=mode or "ema"),
        smoothing_window=window,
        smoothing_alpha=alpha,
        erode_kernel=0,
    )
    smoother = Smoother(ctx) if mode else None
    with CropSpool(tmp_path / "edited.crops", len(masks)) as boxes:
        for i, (frame, box) in enumerate(zip(edited, store.boxes())):
            if box is not None:
                box = grow(box, 6, W, H)
                boxes.put(i, box, region(frame, box).copy())
        out = as_rgb(list(output_frames(ctx, [Layer(store, boxes, place=smoother)])))
    assert smoother is None or smoother.finished.done()
    return out


def error_inside(frames, targets, masks) -> float:
    return float(
        np.mean(
            [np.abs(f.astype(int) - t.astype(int))[m].mean() for f, t, m in zip(frames[1:], targets[1:], masks[1:])]
        )
    )


def pasted_runs(tmp_path, sources, edited, masks, targets, *modes: str):
    """The flickering edit pasted unsmoothed, the flicker-free target pasted the same way, then
    the flickering edit smoothed in each of `modes`."""
    runs = []
    for name, frames, mode in [("off", edited, None), ("target", targets, None)] + [(m, edited, m) for m in modes]:
        (tmp_path / name).mkdir()
        runs.append(smooth(tmp_path / name, sources, frames, masks, mode))
    return runs


def test_smoothing_reduces_flicker_inside_the_mask_and_keeps_the_background(tmp_path):
    sources, edited, masks, targets = moving_object_clip(tmp_path, speed=0)  # still object
    unsmoothed, wanted, out = pasted_runs(tmp_path, sources, edited, masks, targets, "ema")

    def change(frames):  # mean frame-to-frame change inside the mask
        return np.mean(
            [np.abs(a.astype(int) - b.astype(int))[m].mean() for a, b, m in zip(frames[1:], frames[:-1], masks[1:])]
        )

    assert change(out) < 0.8 * change(unsmoothed)
    assert error_inside(out, wanted, masks) < 0.8 * error_inside(unsmoothed, wanted, masks)
    for o, source, m in zip(out, sources, masks):
        assert np.array_equal(o[~m], source[~m])  # outside the mask: untouched, bit for bit


def test_flow_smoothing_follows_a_moving_object_instead_of_ghosting(tmp_path):
    sources, edited, masks, targets = moving_object_clip(tmp_path, speed=3)
    unsmoothed, wanted, ema, flow = pasted_runs(tmp_path, sources, edited, masks, targets, "ema", "flow")
    unsmoothed, ema, flow = (error_inside(frames, wanted, masks) for frames in (unsmoothed, ema, flow))
    # EMA blends the square with where it was (a ghost) and gains nothing on a moving object;
    # flow blends it with itself and removes as much flicker as on a still one.
    assert flow < 0.8 * unsmoothed and flow < 0.8 * ema
