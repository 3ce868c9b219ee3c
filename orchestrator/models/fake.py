"""`FakeModels`: deterministic in-process models, so stages can be tested without a model server.

Segmenting finds saturated red regions (the sample clip's car): each connected region of at least
`min_area` pixels is one object, numbered left to right within a call, like SAM3's ids that are
stable only within one call. Editing inverts the crop's colours, taking `edit_seconds` per
crop if asked to (a slow GPU). Both are pure functions of their input, and every call is recorded
for the test to inspect, with how many edit() calls ran at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .base import Detection, ModelsInfo, Segmentation


def red_regions(rgb: np.ndarray) -> np.ndarray:
    """Bool mask of strongly red pixels."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return (r > 120) & (r - g > 60) & (r - b > 60)


@dataclass
class EditCall:
    crops: int
    instruction: str
    seeds: list[int]
    scheduler: str = ""
    anchor: np.ndarray | None = None


@dataclass
class FakeModels:
    find: Callable[[np.ndarray], np.ndarray] = red_regions  # frame -> bool mask of what the prompt names
    min_area: int = 4
    prompt_words: int = 32  # the text window, in words: longer prompts are cut (as SAM3 cuts to 32 tokens)
    max_segment_frames: int = 64
    max_edit_batch: int = 16
    edit_seconds: float = 0.0  # per crop
    segment_calls: list[int] = field(default_factory=list)  # frames per segment() call
    edit_calls: list[EditCall] = field(default_factory=list)
    most_edits_at_once: int = 0
    _running_edits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self, wait_s: float = 0.0) -> ModelsInfo:
        return ModelsInfo(tiny=True, max_edit_batch=self.max_edit_batch,
                          description="FakeModels (in-process: red regions, inverted colours)")

    def segment(self, frames: Sequence[np.ndarray], prompt: str) -> Segmentation:
        if len(frames) > self.max_segment_frames:
            raise ValueError(f"{len(frames)} frames in one segment() call; at most {self.max_segment_frames}")
        self.segment_calls.append(len(frames))
        prompt = " ".join(prompt.split()[:self.prompt_words])
        return Segmentation([self._detections(frame, prompt) for frame in frames], prompt)

    def edit(self, crops: Sequence[np.ndarray], instruction: str, image_guidance_scale: float,
             guidance_scale: float, num_inference_steps: int, seeds: Sequence[int], scheduler: str = "",
             anchor: np.ndarray | None = None) -> list[np.ndarray]:
        if len(crops) > self.max_edit_batch or len(seeds) != len(crops):
            raise ValueError(f"edit() got {len(crops)} crops and {len(seeds)} seeds; at most {self.max_edit_batch}")
        with self._lock:
            self.edit_calls.append(EditCall(len(crops), instruction, list(seeds), scheduler, anchor))
            self._running_edits += 1
            self.most_edits_at_once = max(self.most_edits_at_once, self._running_edits)
        time.sleep(self.edit_seconds * len(crops))
        with self._lock:
            self._running_edits -= 1
        return [255 - crop for crop in crops]

    def _detections(self, frame: np.ndarray, prompt: str) -> list[Detection]:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(self.find(frame).astype(np.uint8), connectivity=8)
        regions = sorted((stats[i, cv2.CC_STAT_LEFT], i) for i in range(1, count)
                         if stats[i, cv2.CC_STAT_AREA] >= self.min_area)
        detections = []
        for object_id, (_, label) in enumerate(regions):
            x, y, w, h = (int(stats[label, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                                         cv2.CC_STAT_HEIGHT))
            detections.append(Detection(object_id, prompt, 1.0, (x, y, x + w, y + h), labels == label))
        return detections
