"""What the engine needs from a model backend: the `Segmenter` and `Editor` contracts.

`sam3.Sam3Segmenter` and `instruct_pix2pix.InstructPix2PixEditor` implement them (loaded from
real checkpoints, tiny random ones from `tiny`, or full-size random ones from `random_weights`);
tests may put any object with the same methods behind the engine.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from videoedit.v1.contract import EditParams, FramePrompt


@dataclass
class Instance:
    """One object found on one frame.

    `box` is (x0, y0, x1, y1) in pixel-edge coordinates of the input frame: the mask lies within
    columns x0..x1-1 and rows y0..y1-1, so 0 <= x0 < x1 <= W and x1 - x0 is the box width.
    """

    object_id: int
    prompt: str  # the text prompt that found it; "" for an object defined by visual prompts alone
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray  # bool, (H, W) at the input frame size


class PromptKind(enum.StrEnum):
    """What a visual prompt did (the label of the model server's visual-prompt counter)."""

    EXEMPLAR = "exemplar"  # a box for the detector on its frame
    CORRECTION = "correction"  # the tracker's prompt for an object the session tracks
    NEW_OBJECT = "new_object"  # the tracker's prompt starting an object the session did not track


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
        visual_prompts: Sequence[FramePrompt] = (),
        on_prompt: Callable[[PromptKind], None] | None = None,
    ) -> list[list[Instance]]:
        """Find and track every instance of the prompts over consecutive same-size RGB frames;
        one list per frame. Object ids are stable within the call. `visual_prompts` (frames
        counted within the call) add box exemplars and tracker prompts; `prompts` may be empty
        when they are given. `on_prompt` is told what each visual prompt did."""
        ...

    def open_session(self, prompts: list[str]) -> object:
        """A tracking session for the prompts (maybe none: objects then come from visual prompts):
        `track` takes a video's frames over many calls."""
        ...

    def track(
        self,
        session: object,
        frames: list[np.ndarray],
        vision_batch_size: int = 1,
        visual_prompts: Sequence[FramePrompt] = (),
        on_prompt: Callable[[PromptKind], None] | None = None,
    ) -> list[list[Instance]]:
        """Like `segment`, for the session's next frames; ids stay stable across its calls, and
        `visual_prompts` count frames within the session (this call's first frame is the number
        of frames tracked before it)."""
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
