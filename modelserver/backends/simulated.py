"""An Editor and a Segmenter that take as long as a GPU would: for benchmarking the orchestrator
against a model server that is the bottleneck, on a machine without one
(`--simulate-edit-delay-ms`, `--simulate-segment-delay-ms`)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from videoedit.v1.contract import EditParams

from .base import Editor, Instance, Segmenter


@contextmanager
def _taking_at_least(seconds: float) -> Iterator[None]:
    """The block, then a sleep for what is left of `seconds` (a GPU's time for the work)."""
    started = time.monotonic()
    yield
    time.sleep(max(0.0, seconds - (time.monotonic() - started)))


class DelayedEditor:
    """`editor`'s edits, each batch taking at least `seconds_per_item` x its size."""

    def __init__(self, editor: Editor, seconds_per_item: float) -> None:
        self.editor, self.seconds_per_item = editor, seconds_per_item

    @property
    def size_multiple(self) -> int:
        return self.editor.size_multiple

    @property
    def architecture(self) -> str:
        return self.editor.architecture

    @property
    def settings(self) -> dict[str, str]:
        return {**self.editor.settings, "simulated_delay_ms_per_item": f"{self.seconds_per_item * 1000:g}"}

    def edit(
        self,
        images: list[np.ndarray],
        instructions: str | Sequence[str],
        params: EditParams,
        *,
        seeds: Sequence[int],
        anchors: Sequence[int | None] | None = None,
    ) -> list[np.ndarray]:
        with _taking_at_least(self.seconds_per_item * len(images)):
            return self.editor.edit(images, instructions, params, seeds=seeds, anchors=anchors)


class DelayedSegmenter:
    """`segmenter`'s masks, each call taking at least `seconds_per_frame` x its frames."""

    def __init__(self, segmenter: Segmenter, seconds_per_frame: float) -> None:
        self.segmenter, self.seconds_per_frame = segmenter, seconds_per_frame

    def __getattr__(self, name: str):  # everything else (sizes, prompts, sessions) as the segmenter's
        return getattr(self.segmenter, name)

    @property
    def settings(self) -> dict[str, str]:
        return {**self.segmenter.settings, "simulated_delay_ms_per_frame": f"{self.seconds_per_frame * 1000:g}"}

    def segment(self, frames: list[np.ndarray], *args, **kwargs) -> list[list[Instance]]:
        with _taking_at_least(self.seconds_per_frame * len(frames)):
            return self.segmenter.segment(frames, *args, **kwargs)

    def track(self, session: object, frames: list[np.ndarray], *args, **kwargs) -> list[list[Instance]]:
        with _taking_at_least(self.seconds_per_frame * len(frames)):
            return self.segmenter.track(session, frames, *args, **kwargs)
