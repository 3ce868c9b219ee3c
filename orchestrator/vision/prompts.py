"""Clicks and boxes on frames (visual prompts): what each one asks of tracking.

With a text prompt (the target's `mask_prompt`):
- a point without `object` picks: a positive one keeps the objects whose mask contains it on its
  frame, a negative one drops them (decided once tracking has passed every picked frame; a
  positive point no object contains fails the job, naming it);
- a box without `object` is an exemplar for SAM3's detector on its frame (find things like this);
- points or a box with `object` correct that object: the tracker's prompt for it on that frame,
  its masks changed from there on.
Without a text prompt every point and box is the tracker's prompt for an object (`object`, 1 when
not given), which is tracked from its first prompted frame on (and back to the start by a second,
backward session).

The tracker's prompts travel as FramePrompts (videoedit.v1.contract) with the frame's index in the
tracking session and the object's id in that session: an object the session already tracks keeps
its id; any other is asked for as `PROMPTED_ID_BASE + its video-wide id`, which the stitcher maps
back (vision.stitching), apart from the ids SAM3's detector gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from videoedit.v1.contract import FramePrompt, PromptPoint

from ..request import VisualPrompt

PROMPTED_ID_BASE = 1_000_000  # session ids of objects asked for by prompt, clear of SAM3's detector's


@dataclass(frozen=True)
class Pick:
    """A click that keeps (positive) or drops the objects whose mask contains it on its frame."""

    field: str  # the request field it came from, for errors: "visual_prompts[2].points[0]"
    frame: int
    x: float
    y: float
    positive: bool

    def hits(self, mask: np.ndarray) -> bool:
        """Whether `mask` (the frame's size) contains the click (rounded to its pixel)."""
        height, width = mask.shape
        col, row = min(int(self.x), width - 1), min(int(self.y), height - 1)
        return bool(mask[row, col])


@dataclass(frozen=True)
class TargetPrompts:
    """One target's visual prompts by what they ask: picks after tracking, prompts to the model."""

    picks: tuple[Pick, ...] = ()
    model: tuple[FramePrompt, ...] = ()  # frame_index: the video's; object_id: the video-wide id

    @property
    def picked_frames(self) -> tuple[int, ...]:
        return tuple(sorted({p.frame for p in self.picks}))

    @property
    def first_prompted_frame(self) -> int:
        """The first frame with a prompt for the model (0 without any)."""
        return min((p.frame_index for p in self.model), default=0)


def target_prompts(prompts: Sequence[VisualPrompt], has_text: bool, field: str = "visual_prompts") -> TargetPrompts:
    """What `prompts` ask, for a target with (`has_text`) or without a text prompt."""
    picks: list[Pick] = []
    model: list[FramePrompt] = []
    for i, prompt in enumerate(prompts):
        where = f"{field}[{i}]"
        points = tuple(PromptPoint(p.x, p.y, p.positive) for p in prompt.points)
        if has_text and prompt.object is None:
            picks += [
                Pick(f"{where}.points[{j}]", prompt.frame_index, p.x, p.y, p.positive) for j, p in enumerate(points)
            ]
            if prompt.box is not None:
                model.append(FramePrompt(prompt.frame_index, box=prompt.box))
        else:
            obj = 1 if prompt.object is None else prompt.object
            model.append(FramePrompt(prompt.frame_index, points, prompt.box, object_id=obj - 1))
    return TargetPrompts(tuple(picks), tuple(model))


def picked(picks: Sequence[Pick], masks_on: Callable[[int], Mapping[int, np.ndarray]]) -> frozenset[int] | None:
    """The object ids the picks keep: those containing a positive click (every object when there
    is none), less those containing a negative one; None without picks. `masks_on(frame)`: the
    objects' masks on that frame by id. ValueError naming the click that no object contains."""
    if not picks:
        return None
    kept: set[int] | None = None
    dropped: set[int] = set()
    for pick in picks:
        under = {g for g, mask in masks_on(pick.frame).items() if pick.hits(mask)}
        if pick.positive:
            if not under:
                raise PickMissed(pick)
            kept = (kept or set()) | under
        else:
            dropped |= under
    if kept is None:
        kept = {g for frame in {p.frame for p in picks} for g in masks_on(frame)}
    return frozenset(kept - dropped)


class PickMissed(ValueError):
    """A positive click on a frame where no tracked object contains it."""

    def __init__(self, pick: Pick) -> None:
        super().__init__(
            f"no object found there: the point ({pick.x:g}, {pick.y:g}) on frame {pick.frame} is on none of "
            "the objects tracked; click inside one (a masks job shows them), or change the prompt"
        )
        self.pick = pick


def prompts_for_call(
    prompts: Sequence[FramePrompt],
    first: int,
    count: int,
    session_start: int,
    session_id: Callable[[int], int | None],
) -> list[FramePrompt]:
    """The model prompts on video frames [first, first + count) as one Segment call carries them:
    frame indices counted from the session's first frame (`session_start`), tracker prompts'
    objects by their id in the session (`session_id(video-wide id)`; None: not tracked there, then
    asked for as PROMPTED_ID_BASE + the video-wide id)."""
    out = []
    for prompt in prompts:
        if not first <= prompt.frame_index < first + count:
            continue
        object_id = prompt.object_id
        if object_id is not None:
            local = session_id(object_id)
            object_id = PROMPTED_ID_BASE + object_id if local is None else local
        out.append(FramePrompt(prompt.frame_index - session_start, prompt.points, prompt.box, object_id))
    return out
