"""Edit-quality metrics of an edited video against its input, with no model weights.

All metrics stream the three videos frame by frame (memory does not grow with length).

- Background preservation: PSNR and SSIM over the pixels *outside* the mask dilated by
  `dilate_px` (the feathered seam is excluded), edited vs decoded input, pooled over all frames.
  PSNR = 10·log10(255² / MSE) over all channels, capped at 100 dB (identical pixels). SSIM is
  the standard Wang et al. index (Gaussian window σ=1.5, on luma), averaged over those pixels.
- Warp error (temporal consistency inside the mask): DIS optical flow of the *input* from frame
  t to t+1 and back, computed on the area around the masks of t and t+1 (orchestrator.vision.
  optical_flow.FlowArea: a small object in an HD frame keeps its resolution, where whole-frame
  flow at 480 px would not see it move); pixels that fail the forward-backward check
  |f(x) + b(x + f(x))|² > 0.01·(|f|² + |b(x+f(x))|²) + 0.5 are occluded and skipped. Error =
  mean |edited_{t+1}(x + f(x)) − edited_t(x)| over non-occluded pixels inside mask_t, in grey
  levels (0-255, all channels). The same number for the input itself is reported beside it: it is
  what flow errors and lighting changes alone give, so an edit is temporally consistent when its
  warp error is close to the input's.
- Flicker index: mean over t of |mean luma inside mask_t of frame t − mean luma inside mask_t of
  frame t−1| (grey levels), for the output and for the input.
- Mask temporal IoU: mean IoU of consecutive mask frames (1 = a static mask; lower for moving
  objects too, so compare like with like). `mask_continuity` splits it at given frames (where
  one Segment chunk's tracking hands over to the next) from the rest.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import zip_longest
from pathlib import Path

import av
import cv2
import numpy as np

from orchestrator.media.decode import rgb_of
from orchestrator.vision.crop import mask_bbox
from orchestrator.vision.optical_flow import FlowArea

PSNR_CAP_DB = 100.0


@dataclass
class EditQuality:
    frames: int
    background_psnr_db: float
    background_ssim: float
    warp_error: float  # output, inside the mask
    source_warp_error: float  # input, same pixels
    flicker: float
    source_flicker: float
    mask_temporal_iou: float
    mask_coverage: float  # mean fraction of the frame inside the mask

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MaskContinuity:
    boundary_iou: float  # mean IoU of mask t-1 and t over the given boundary frames t
    interior_iou: float  # the same over every other pair of consecutive frames
    frames_with_mask: float  # fraction of frames with any mask pixel

    def to_dict(self) -> dict:
        return asdict(self)


def mask_continuity(mask_video: Path, boundaries: set[int]) -> MaskContinuity:
    """How much the mask jumps at the `boundaries` (frame indices) against everywhere else."""
    at_boundary, inside, with_mask = [], [], 0
    previous = None
    for index, rgb in enumerate(frames_of(mask_video)):
        mask = rgb.mean(axis=2) > 127
        with_mask += bool(mask.any())
        if previous is not None:
            union = (mask | previous).sum()
            iou = float((mask & previous).sum() / union) if union else 1.0
            (at_boundary if index in boundaries else inside).append(iou)
        previous = mask
    frames = index + 1 if previous is not None else 0
    return MaskContinuity(
        boundary_iou=float(np.mean(at_boundary)) if at_boundary else math.nan,
        interior_iou=float(np.mean(inside)) if inside else math.nan,
        frames_with_mask=with_mask / frames if frames else 0.0,
    )


def frames_of(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield rgb_of(frame)  # as the pipeline decodes: no conversion error of its own


def evaluate(input_video: Path, output_video: Path, mask_video: Path, dilate_px: int = 8) -> EditQuality:
    """Metrics of `output_video` (and its `mask_video`) against `input_video`."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1,) * 2) if dilate_px else None
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    sq_err = bg_pixels = 0.0
    ssim_sum = 0.0
    warp, source_warp, warp_pixels = 0.0, 0.0, 0
    flicker, source_flicker, ious, coverage = [], [], [], []
    previous = None  # (source, output, mask) of frame t-1
    count = 0
    for source, output, mask_rgb in zip_longest(frames_of(input_video), frames_of(output_video), frames_of(mask_video)):
        if source is None or output is None or mask_rgb is None:
            raise ValueError(f"the videos differ in length (after {count} frames)")
        h, w = source.shape[:2]
        output, mask_rgb = output[:h, :w], mask_rgb[:h, :w]  # outputs of odd-sized inputs are padded
        if output.shape != source.shape or mask_rgb.shape[:2] != (h, w):
            raise ValueError(f"frame {count}: output {output.shape} / mask {mask_rgb.shape} vs input {source.shape}")
        mask = mask_rgb.mean(axis=2) > 127
        background = ~(cv2.dilate(mask.astype(np.uint8), kernel) > 0 if kernel is not None else mask)
        diff = output.astype(np.float64) - source
        sq_err += float((diff[background] ** 2).sum())
        bg_pixels += float(background.sum()) * 3
        ssim_sum += float(_ssim_map(_luma(source), _luma(output))[background].sum())
        coverage.append(float(mask.mean()))
        if previous is not None:
            p_source, p_output, p_mask = previous
            if p_mask.any():
                area = FlowArea.around(mask_bbox(p_mask | mask), w, h)  # type: ignore[arg-type]
                valid, coords = _consistent_flow(dis, area, p_source, source)
                x0, y0, x1, y1 = area.box
                region = valid & p_mask[y0:y1, x0:x1]
                if region.any():
                    warped_out = cv2.remap(output, *coords, cv2.INTER_LINEAR)
                    warped_src = cv2.remap(source, *coords, cv2.INTER_LINEAR)
                    before_out, before_src = p_output[y0:y1, x0:x1], p_source[y0:y1, x0:x1]
                    warp += float(np.abs(warped_out.astype(np.float64) - before_out)[region].sum()) / 3
                    source_warp += float(np.abs(warped_src.astype(np.float64) - before_src)[region].sum()) / 3
                    warp_pixels += int(region.sum())
                flicker.append(abs(_luma(output)[p_mask].mean() - _luma(p_output)[p_mask].mean()))
                source_flicker.append(abs(_luma(source)[p_mask].mean() - _luma(p_source)[p_mask].mean()))
            union = (mask | p_mask).sum()
            ious.append(float((mask & p_mask).sum() / union) if union else 1.0)
        previous = (source, output, mask)
        count += 1
    if count == 0:
        raise ValueError(f"{input_video} has no frames")
    mse = sq_err / bg_pixels if bg_pixels else 0.0
    return EditQuality(
        frames=count,
        background_psnr_db=min(PSNR_CAP_DB, 10 * math.log10(255.0**2 / mse)) if mse > 0 else PSNR_CAP_DB,
        background_ssim=ssim_sum / (bg_pixels / 3) if bg_pixels else 1.0,
        warp_error=warp / warp_pixels if warp_pixels else 0.0,
        source_warp_error=source_warp / warp_pixels if warp_pixels else 0.0,
        flicker=float(np.mean(flicker)) if flicker else 0.0,
        source_flicker=float(np.mean(source_flicker)) if source_flicker else 0.0,
        mask_temporal_iou=float(np.mean(ious)) if ious else 1.0,
        mask_coverage=float(np.mean(coverage)),
    )


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)


def _ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two luma images (Wang et al. 2004, Gaussian window σ=1.5)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


def _consistent_flow(dis, area: FlowArea, source_t: np.ndarray, source_next: np.ndarray) -> tuple[np.ndarray, tuple]:
    """(the pixels of `area` of frame t whose flow passes the forward-backward check, their remap
    coordinates in frame t+1)."""
    x0, y0, x1, y1 = area.box
    width, height = x1 - x0, y1 - y0
    gray_t, gray_next = area.gray(source_t), area.gray(source_next)
    forward, backward = (_area_sized(dis.calc(a, b, None), area) for a, b in ((gray_t, gray_next), (gray_next, gray_t)))
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = grid_x + forward[..., 0], grid_y + forward[..., 1]
    back_at_target = cv2.remap(backward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    round_trip = forward + back_at_target
    bound = 0.01 * ((forward**2).sum(axis=2) + (back_at_target**2).sum(axis=2)) + 0.5
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return ((round_trip**2).sum(axis=2) <= bound) & inside, (map_x + x0, map_y + y0)


def _area_sized(flow: np.ndarray, area: FlowArea) -> np.ndarray:
    """A working-size flow of `area` at the area's full size, in full-size pixels."""
    x0, y0, x1, y1 = area.box
    sx, sy = area.scale
    if (sx, sy) == (1.0, 1.0):
        return flow
    full = cv2.resize(flow, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    full[..., 0] /= sx
    full[..., 1] /= sy
    return full
