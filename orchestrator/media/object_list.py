"""`{job_id}_objects.json`: what a job tracked, object by object, for people (which object is
which, to pick by id) and for the jobs that reuse its masks (media.object_masks holds the masks).

Object ids are the tracker's video-wide ids plus one, as listed here and as `extra.objects` takes
them. `edited` names the objects the job edits (or, for a masks job, would edit): every object,
or the largest ones `extra.instances` asked for; a job reusing the masks edits those unless
`extra.objects` picks others.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..vision.crop import stretches
from .object_masks import ObjectMasks

FORMAT = 1


@dataclass(frozen=True)
class ObjectSummary:
    id: int
    score: float | None  # its highest detection score (None: the segmenter gave none)
    frames: list[list[int]]  # the stretches of frames it is on: [first, last] each
    frame_count: int
    best_frame: int  # where its mask is largest (its preview's frame)
    area: int  # mean mask pixels over its frames
    boxes: list[list[int]]  # [frame, x0, y0, x1, y1, area] per frame it is on (x1, y1 exclusive)
    prompt: str = ""  # the mask prompt that found it (one of the job's objects'; "": not known)


@dataclass(frozen=True)
class ObjectList:
    job_id: str
    mask_prompt: str  # several objects': "; " apart
    input_sha256: str  # of the input's content: masks are reused only on the same content
    segmenter: str  # the models' identity (GetInfo): masks are reused only from the same one
    frames: int  # the video's frame count, width and height
    width: int
    height: int
    edited: list[int]  # ids the job edits
    objects: list[ObjectSummary]

    @property
    def ids(self) -> list[int]:
        return [o.id for o in self.objects]

    def picked(self, objects: tuple[int, ...] | None) -> tuple[int, ...]:
        """The ids a job reusing these masks edits: `objects` (extra.objects), else the ones this
        job edited. ValueError naming the ids that are not in the list."""
        if objects is None:
            return tuple(self.edited)
        if missing := sorted(set(objects) - set(self.ids)):
            listed = ", ".join(str(i) for i in self.ids) or "none"
            raise ValueError(
                f"job {self.job_id!r} has no object {', '.join(map(str, missing))} (its objects: {listed})"
            )
        return objects

    def reusable_for(self, input_sha256: str) -> str | None:
        """Why a job on the input with this content cannot reuse these masks (None: it can)."""
        if input_sha256 != self.input_sha256:
            return f"job {self.job_id!r} tracked another input (its content's SHA-256 differs)"
        return None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({"format": FORMAT, **asdict(self)}, indent=1))

    @classmethod
    def read(cls, path: Path) -> ObjectList:
        """ValueError when `path` is not an objects list this code wrote."""
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            if data.pop("format", None) != FORMAT:
                raise ValueError(f"{path.name} is not in format {FORMAT}")
            objects = [ObjectSummary(**o) for o in data.pop("objects")]
            return cls(**data, objects=objects)
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path.name} cannot be read: {err}") from None


def summarize(
    masks: ObjectMasks, scores: Mapping[int, float], prompts: Mapping[int, str] | None = None
) -> list[ObjectSummary]:
    """Every object of `masks` (tracker ids; listed with ids one higher), in order of id.
    `scores` and `prompts` (the one that found it): by tracker id."""
    prompts = prompts or {}
    tracks: dict[int, list[list[int]]] = {}
    for r in masks.records:
        tracks.setdefault(r.object_id, []).append([r.frame, *r.box, r.area])
    summaries = []
    for object_id in sorted(tracks):
        boxes = tracks[object_id]
        on_frame: list[list[int] | None] = [None] * (boxes[-1][0] + 1)
        for box in boxes:
            on_frame[box[0]] = box
        best = max(boxes, key=lambda b: (b[5], -b[0]))
        summaries.append(
            ObjectSummary(
                id=object_id + 1,
                score=round(scores[object_id], 4) if object_id in scores else None,
                frames=[list(run) for run in stretches(on_frame)],
                frame_count=len(boxes),
                best_frame=best[0],
                area=round(sum(b[5] for b in boxes) / len(boxes)),
                boxes=boxes,
                prompt=prompts.get(object_id, ""),
            )
        )
    return summaries
