"""Geometry through a whole job in-process with FakeModels: an anamorphic (SAR 40:33) clip is
tracked and edited in square pixels (a disc round to the viewer is round in what SAM3 and the
editor are given) and written at its stored size with its SAR; a clip whose display matrix
mirrors it (alone or after a quarter turn) comes out upright and unmirrored, like a rotated one."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from orchestrator.media.decode import orientation, rgb_of
from orchestrator.models.fake import FakeModels, red_regions
from orchestrator.vision.crop import mask_bbox
from tests.colour_clips import play
from tests.helpers import run_fake_job

FRAMES, W, H = 6, 352, 240
SAR = Fraction(40, 33)
RED = (210, 30, 40)


@dataclass
class Recording(FakeModels):
    """FakeModels that keeps what the models were given: SAM3's frames and the editor's crops."""

    frames: list[np.ndarray] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        def find(rgb: np.ndarray) -> np.ndarray:
            self.frames.append(rgb)
            return red_regions(rgb)

        self.find = find

    def edit(self, crops, instruction, params, *, seeds, anchor=None):
        self.crops.extend(crops)
        return super().edit(crops, instruction, params, seeds=seeds, anchor=anchor)


def clip_of(path: Path, images: list[np.ndarray], sar: Fraction = Fraction(1), turn: int = 0, hflip: bool = False):
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=24, options={"crf": "10"})
        video.height, video.width = images[0].shape[:2]
        video.pix_fmt = "yuv420p"
        video.codec_context.sample_aspect_ratio = sar
        if turn or hflip:
            video.set_display_rotation(turn, hflip=hflip)
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def scene(i: int, disc_width: int, disc_height: int) -> np.ndarray:
    """A red ellipse moving right on a blocky textured background, a dark marker in the top left."""
    blocks = np.random.default_rng(5).integers(70, 110, (H // 8, W // 8, 3), dtype=np.uint8)
    frame = np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)  # 8x8 blocks: 4:2:0 holds them
    frame[8:40, 8:80] = 20
    cv2.ellipse(frame, (140 + 4 * i, H // 2), (disc_width // 2, disc_height // 2), 0, 0, 360, RED, -1)
    return frame


def run(tmp_path: Path, clip: Path, models: FakeModels):
    extra = {"chunk_size": "6", "chunk_overlap": "2", "edit_size": "128"}
    return run_fake_job(tmp_path, clip, models, extra, job_id="geometry", mask_prompt="car", edit_prompt="make it blue")


def aspect(mask: np.ndarray) -> float:
    x0, y0, x1, y1 = mask_bbox(mask)
    return (x1 - x0) / (y1 - y0)


def test_an_anamorphic_clip_is_tracked_and_edited_in_square_pixels(tmp_path):
    diameter = 96  # on screen, in rows: stored 96 / SAR = 79 pixels wide
    images = [scene(i, round(diameter / SAR), diameter) for i in range(FRAMES)]
    clip = clip_of(tmp_path / "anamorphic.mp4", images, sar=SAR)
    models = Recording()
    paths, _ = run(tmp_path, clip, models)
    assert aspect(red_regions(images[0])) == pytest.approx(1 / SAR, abs=0.03)  # squeezed as stored
    assert models.frames and all(f.shape == (H, round(W * SAR), 3) for f in models.frames)
    assert all(aspect(red_regions(f)) == pytest.approx(1, abs=0.03) for f in models.frames), "SAM3 sees it round"
    assert len(models.crops) == FRAMES
    assert all(aspect(red_regions(c)) == pytest.approx(1, abs=0.03) for c in models.crops), "so does the editor"
    output = play(paths.video)
    assert output.sample_aspect_ratio == SAR and output.frames[0].shape == (H, W, 3)  # stored size and SAR kept
    for image, out, source in zip(images, output.frames, play(clip).frames, strict=True):
        disc = red_regions(image)
        inside = cv2.erode(disc.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        assert np.abs(out[inside].astype(int) - (255 - np.array(RED))).mean() <= 3, "the inverted edit, in place"
        outside = cv2.dilate(disc.astype(np.uint8), np.ones((11, 11), np.uint8)) == 0
        assert np.abs(out[outside].astype(int) - source[outside]).mean() < 1.5


@pytest.mark.parametrize("turn", [0, 90])
def test_a_mirrored_clip_comes_out_upright_and_unmirrored(tmp_path, turn):
    images = [scene(i, 60, 60) for i in range(FRAMES)]
    clip = clip_of(tmp_path / "mirrored.mp4", images, turn=turn, hflip=True)
    # As shown: the stored frames as a player decodes them (it ignores the display matrix here),
    # turned, then mirrored (PyAV's set_display_rotation mirrors after the rotation).
    shown = [np.ascontiguousarray(np.rot90(image, turn // 90)[:, ::-1]) for image in play(clip).frames]
    models = Recording()
    paths, _ = run(tmp_path, clip, models)
    assert all(f.shape == shown[0].shape for f in models.frames)
    with av.open(str(clip)) as source:
        stored = rgb_of(next(source.decode(video=0)))  # as stored, in the pipeline's own conversion
    assert np.array_equal(models.frames[0], np.rot90(stored, turn // 90)[:, ::-1]), "the models see it as shown"
    with av.open(str(paths.video)) as written:
        assert all(orientation(f) == (0, False) for f in written.decode(video=0)), "no display matrix left"
    output = play(paths.video).frames
    for image, out in zip(shown, output, strict=True):
        outside = cv2.dilate(red_regions(image).astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
        assert out.shape == image.shape
        difference = out[outside].astype(int) - image[outside]
        # Mirrored or turned wrongly, the blocks would be tens of levels off; x264 leaves ~1.5.
        assert np.abs(difference).mean() < 2.5, "upright and unmirrored"
        assert np.abs(difference.mean(axis=0)).max() <= 1.0, "no shift in level"
