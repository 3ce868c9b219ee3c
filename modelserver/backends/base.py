"""What the engine needs from a model backend: the `Segmenter` and `Editor` contracts.

`sam3.Sam3Segmenter` and `instruct_pix2pix.InstructPix2PixEditor` implement them (loaded from
real checkpoints, tiny random ones from `tiny`, or full-size random ones from `random_weights`);
tests may put any object with the same methods behind the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from videoedit.v1.contract import EditParams


@dataclass
class Instance:
    """One object found on one frame.

    `box` is (x0, y0, x1, y1) in pixel-edge coordinates of the input frame: the mask lies within
    columns x0..x1-1 and rows y0..y1-1, so 0 <= x0 < x1 <= W and x1 - x0 is the box width.
    """

    object_id: int
    prompt: str
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray  # bool, (H, W) at the input frame size


class Backend(Protocol):
    """What GetInfo reports of a loaded model."""

    @property
    def architecture(self) -> str:
        """The model class, e.g. Sam3VideoModel."""
        ...

    @property
    def settings(self) -> dict[str, str]:
        """Settings worth reporting (thresholds, device map and the like)."""
        ...


class Segmenter(Backend, Protocol):
    @property
    def image_size(self) -> int:
        """Square side every frame is resized to inside the model (callers may downscale to it)."""
        ...

    @property
    def max_prompt_tokens(self) -> int:
        """The text window: longest prompt the model reads, in tokens."""
        ...

    def fit_prompt(self, prompt: str) -> str:
        """`prompt` as the model reads it: cut to the whole words that fit its text window."""
        ...

    def segment(
        self,
        frames: list[np.ndarray],
        prompts: list[str],
        vision_batch_size: int = 1,
    ) -> list[list[Instance]]:
        """Find and track every instance of the prompts over consecutive same-size RGB frames;
        one list per frame. Object ids are stable within the call."""
        ...

    def open_session(self, prompts: list[str]) -> object:
        """A tracking session for the prompts: `track` takes a video's frames over many calls."""
        ...

    def track(
        self,
        session: object,
        frames: list[np.ndarray],
        vision_batch_size: int = 1,
    ) -> list[list[Instance]]:
        """Like `segment`, for the session's next frames; ids stay stable across its calls."""
        ...


class Editor(Backend, Protocol):
    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this."""
        ...

    def edit(
        self,
        images: list[np.ndarray],
        instructions: str | Sequence[str],
        params: EditParams,
        *,
        seeds: Sequence[int],
        anchors: Sequence[int | None] | None = None,
    ) -> list[np.ndarray]:
        """Edit same-size RGB uint8 images (one instruction, or one per image) in one batch, all
        with `params`; item i depends only on its image, instruction and seeds[i], and on image
        anchors[i] when that is set (cross-frame attention to that item of the batch)."""
        ...
