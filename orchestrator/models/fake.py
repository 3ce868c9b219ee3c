"""`FakeModels`: deterministic in-process models, so stages can be tested without a model server.

Segmenting finds saturated red regions (the sample clip's car), or for a prompt in `finders`
what its finder finds: each connected region of at least `min_area` pixels is one object. A
tracker keeps an object's id while its region overlaps the one its prompt found on the frame
before (like a SAM3 tracking session with every prompt), and can be told to lose its session on
given calls (`lose_tracking`), as when a model-server replica dies. Editing inverts the crop's
colours, or for an instruction in `paints` fills it with that colour, taking `edit_seconds` per
crop if asked to (a slow GPU). Both are pure functions of their input,
and every call is recorded for the test to inspect, with how many edit() calls ran at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from videoedit.v1.contract import EditParams, FramePrompt

from ..errors import TrackingLost
from .base import Detection, ModelsInfo, Segmentation
from .calls import ModelCalls


def coloured_regions(rgb: np.ndarray) -> np.ndarray:
    """Bool mask of saturated pixels (any colour): what a click or a box can pick out."""
    return (rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)) > 60


def colour_like(rgb: np.ndarray, colour: np.ndarray, tolerance: int = 40) -> np.ndarray:
    """Bool mask of pixels within `tolerance` of `colour` on every channel."""
    return (np.abs(rgb.astype(np.int16) - colour.astype(np.int16)) <= tolerance).all(axis=2)


def red_regions(rgb: np.ndarray) -> np.ndarray:
    """Bool mask of strongly red pixels."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    return (r > 120) & (r - g > 60) & (r - b > 60)


@dataclass
class EditCall:
    crops: int
    instruction: str
    params: EditParams
    seeds: list[int]
    anchor: np.ndarray | None = None


@dataclass
class FakeModels:
    find: Callable[[np.ndarray], np.ndarray] = red_regions  # frame -> bool mask of what the prompt names
    finders: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)  # by prompt, else `find`
    paints: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # instruction -> the RGB its edit fills
    min_area: int = 4
    prompt_words: int = 32  # the text window, in words: longer prompts are cut (as SAM3 cuts to 32 tokens)
    max_segment_frames: int = 64
    max_edit_batch: int = 16
    edit_seconds: float = 0.0  # per crop
    segment_calls: list[int] = field(default_factory=list)  # frames per segment call
    sessions: bool = True  # False: like a model server without tracking sessions (ids per call)
    lose_tracking: set[int] = field(default_factory=set)  # tracker calls (0, 1, ... over all trackers) that fail
    trackers: list[FakeTracker] = field(default_factory=list)  # every tracker opened, in order
    tracker_calls: int = 0
    edit_calls: list[EditCall] = field(default_factory=list)
    most_edits_at_once: int = 0
    calls: ModelCalls = field(default_factory=ModelCalls)
    _running_edits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self, wait_s: float = 0.0) -> ModelsInfo:
        return ModelsInfo(
            tiny=True,
            max_edit_batch=self.max_edit_batch,
            description="FakeModels (in-process: red regions, inverted colours)",
            identity="FakeModels",
        )

    def unready(self) -> str | None:
        return None

    def track(self, prompts: Sequence[str]) -> FakeTracker:
        read = [" ".join(prompt.split()[: self.prompt_words]) for prompt in prompts]
        with self._lock:
            tracker = FakeTracker(self, read, persistent=self.sessions)
            self.trackers.append(tracker)
        return tracker

    def edit(
        self,
        crops: Sequence[np.ndarray],
        instruction: str,
        params: EditParams,
        *,
        seeds: Sequence[int],
        anchor: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        if len(crops) > self.max_edit_batch or len(seeds) != len(crops):
            raise ValueError(f"edit() got {len(crops)} crops and {len(seeds)} seeds; at most {self.max_edit_batch}")
        with self._lock:
            self.edit_calls.append(EditCall(len(crops), instruction, params, list(seeds), anchor))
            self._running_edits += 1
            self.most_edits_at_once = max(self.most_edits_at_once, self._running_edits)
        time.sleep(self.edit_seconds * len(crops))
        with self._lock:
            self._running_edits -= 1
        if instruction in self.paints:
            return [np.full_like(crop, self.paints[instruction]) for crop in crops]
        return [255 - crop for crop in crops]

    def close(self) -> None:
        self.calls.wait(5.0)

    def _detections(self, frame: np.ndarray, prompt: str) -> list[Detection]:
        return self._regions(self.finders.get(prompt, self.find)(frame), prompt)

    def _regions(self, found: np.ndarray, prompt: str) -> list[Detection]:
        """Each connected region of `found` of at least min_area pixels, left to right."""
        count, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
        regions = sorted(
            (stats[i, cv2.CC_STAT_LEFT], i) for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= self.min_area
        )
        detections = []
        for object_id, (_, label) in enumerate(regions):
            x, y, w, h = (
                int(stats[label, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT)
            )
            detections.append(Detection(object_id, prompt, 1.0, (x, y, x + w, y + h), labels == label))
        return detections


@dataclass
class FakeTracker:
    models: FakeModels
    prompts: list[str]
    persistent: bool = True
    calls: list[tuple[int, int]] = field(default_factory=list)  # (first_frame, frames) per call
    visual: list[FramePrompt] = field(default_factory=list)  # every visual prompt received, in order
    closed: bool = False
    _tracked: int = 0
    _last: dict[int, Detection] = field(default_factory=dict)  # id -> its detection on the last frame tracked
    _next_id: int = 0
    _exemplars: list[np.ndarray] = field(default_factory=list)  # colours of exemplar boxes: found like the text
    _prompted: dict[int, np.ndarray] = field(default_factory=dict)  # clicked object id -> its colour
    _turn: threading.Condition = field(default_factory=threading.Condition)

    def segment(
        self, frames: Sequence[np.ndarray], first_frame: int, visual: Sequence[FramePrompt] = ()
    ) -> Segmentation:
        models = self.models
        if len(frames) > models.max_segment_frames:
            raise ValueError(f"{len(frames)} frames in one segment call; at most {models.max_segment_frames}")
        if not self.persistent:  # every call stands alone: ids numbered afresh
            with self._turn:
                self._last, self._next_id, self._tracked = {}, 0, first_frame
        with self._turn:  # like the model server: a call that arrives early waits for the one before
            while self._tracked < first_frame and not self.closed:
                self._turn.wait()
            with models._lock:  # numbered in the session's order, not by which thread came first
                call = models.tracker_calls
                models.tracker_calls += 1
                models.segment_calls.append(len(frames))
            if call in models.lose_tracking or self.closed:
                self.closed = True
                self._turn.notify_all()
                raise TrackingLost(f"fake tracking session lost at call {call}")
            if first_frame != self._tracked:
                raise ValueError(f"first_frame {first_frame}, but {self._tracked} frames tracked")
            self.calls.append((first_frame, len(frames)))
            self.visual += visual
            found = []
            for offset, frame in enumerate(frames):
                on_frame = [v for v in visual if v.frame_index == first_frame + offset]
                for prompt in on_frame:
                    self._take(frame, prompt)
                prompted = self._follow_prompted(frame)
                taken = np.zeros(frame.shape[:2], bool)
                for det in prompted:
                    taken |= det.mask
                detected = [d for d in self._detected(frame) if not (d.mask & taken).any()]
                found.append(self._identify(detected) + prompted)
            self._tracked += len(frames)
            self._turn.notify_all()
        return Segmentation(found, list(self.prompts))

    def close(self) -> None:
        with self._turn:
            self.closed = True
            self._turn.notify_all()

    def _detected(self, frame: np.ndarray) -> list[Detection]:
        """What the text prompts (and the exemplar boxes' colours, under the first prompt) find."""
        detections = [d for prompt in self.prompts for d in self.models._detections(frame, prompt)]
        for colour in self._exemplars:
            like = colour_like(frame, colour) & coloured_regions(frame)
            for det in self.models._regions(like, self.prompts[0] if self.prompts else ""):
                if not any((d.mask & det.mask).any() for d in detections):
                    detections.append(det)
        return detections

    def _take(self, frame: np.ndarray, prompt: FramePrompt) -> None:
        """A visual prompt on `frame`: an exemplar's colour is found from now on; a click or box for
        an object makes it the region they pick (its colour followed from now on)."""
        if prompt.box is not None:
            x0, y0, x1, y1 = (round(v) for v in prompt.box)
            inside = frame[y0:y1, x0:x1].reshape(-1, 3)
            saturated = inside[(inside.max(axis=1).astype(np.int16) - inside.min(axis=1)) > 60]
            colour = np.median(saturated if len(saturated) else inside, axis=0)
        else:
            point = next(p for p in prompt.points if p.positive)
            colour = frame[min(int(point.y), frame.shape[0] - 1), min(int(point.x), frame.shape[1] - 1)]
        if prompt.object_id is None:
            self._exemplars.append(np.asarray(colour))
        else:
            self._prompted[prompt.object_id] = np.asarray(colour)
            self._last.pop(prompt.object_id, None)  # a detected object corrected: the click decides now

    def _follow_prompted(self, frame: np.ndarray) -> list[Detection]:
        """Each clicked object on `frame`: the largest region of its colour."""
        found = []
        for object_id, colour in self._prompted.items():
            regions = self.models._regions(colour_like(frame, colour) & coloured_regions(frame), "")
            if regions:
                det = max(regions, key=lambda d: int(d.mask.sum()))
                det.object_id = object_id
                det.prompt = self.prompts[0] if self.prompts else ""
                found.append(det)
        return found

    def _identify(self, detections: list[Detection]) -> list[Detection]:
        """Each region keeps the id of the region of its prompt it overlaps most on the frame before."""
        taken: set[int] = set()
        for det in detections:
            overlaps = {
                i: int((last.mask & det.mask).sum())
                for i, last in self._last.items()
                if i not in taken and last.prompt == det.prompt
            }
            best = max(overlaps, key=overlaps.get, default=None)
            if best is not None and overlaps[best] > 0:
                det.object_id = best
            else:
                while self._next_id in self._prompted:
                    self._next_id += 1
                det.object_id, self._next_id = self._next_id, self._next_id + 1
            taken.add(det.object_id)
        self._last = {d.object_id: d for d in detections}
        return detections
