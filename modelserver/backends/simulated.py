"""An Editor that takes as long as a GPU would: for benchmarking the orchestrator against a
model server that is the bottleneck, on a machine without one (`--simulate-edit-delay-ms`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from videoedit.v1.contract import EditParams

from .base import Editor


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
        started = time.monotonic()
        edited = self.editor.edit(images, instructions, params, seeds=seeds, anchors=anchors)
        time.sleep(max(0.0, self.seconds_per_item * len(images) - (time.monotonic() - started)))
        return edited
