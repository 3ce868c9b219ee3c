"""What a job is, in plain Python (no protobuf): the original worker's request and status types,
and the typed `extra` options that validation derives from a request.

Field names, order and defaults of VideoEditRequest/VideoEditStatus are the original worker
API's; `seed` is ours.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from videoedit.v1.contract import PromptPoint


def job_key(tenant: str, job_id: str) -> str:
    """What names a job in the job store and the orchestrator's logs: `tenant/job_id`, or the bare
    job id for the default tenant "" (one-user setups, and every job made before tenants). Job ids
    are unique per tenant; neither a tenant name nor a job id holds a "/", so a key is unambiguous."""
    return f"{tenant}/{job_id}" if tenant else job_id


class JobStatus(StrEnum):
    """Job stages in the order a successful job passes them (the original worker's strings)."""

    QUEUED = "queued"
    EXTRACTING = "extracting"
    MASKING = "masking"
    PROPAGATING = "propagating"
    EDITING = "editing"
    SMOOTHING = "smoothing"
    SAVING = "saving"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:  # so f"{status}" prints "editing", as the original worker's strings did
        return self.value

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELLED)


class Word(StrEnum):
    """A word of the API (`mode`, the `extra` choices). A str: it equals, hashes and serialises
    (JSON, protobuf) as its word, and prints as it (str and repr), so comparisons with the plain
    strings, status files and the job log read as they did before the enums."""

    def __repr__(self) -> str:
        return repr(self.value)


class Mode(Word):
    VIDEO = "video"
    SINGLE_FRAME = "single_frame"  # one frame (extra.frame_index) into a png, for tuning prompts
    MASKS = "masks"  # find and track only: the mask video and the objects, to check (and reuse) before editing


class SeedMode(Word):
    SHARED = "shared"  # the job seed on every frame
    PER_FRAME = "per_frame"  # seed + frame index


class SmoothingMode(Word):
    EMA = "ema"  # the original worker's EMA
    FLOW = "flow"  # EMA along DIS optical flow


class Keyframes(Word):
    INTERVAL = "interval"  # every keyframe_interval-th frame
    ADAPTIVE = "adaptive"  # a new keyframe where the carried edit is untrustworthy


class Consistency(Word):
    NONE = "none"
    CROSS_FRAME = "cross_frame"  # every crop's self-attention also attends to the job's first edited crop


class Detail(Word):
    MODEL = "model"  # the model's crop as it is, resized
    SOURCE = "source"  # the source's fine detail, lost to the model's working size, put back (vision.detail)


@dataclass(frozen=True)
class VisualPrompt:
    """Clicks and a box on one frame of the video, in pixels of the upright source frame
    (VideoEditRequest.visual_prompts; their meaning: vision.prompts)."""

    frame_index: int
    points: tuple[PromptPoint, ...] = ()
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1
    object: int | None = None  # an object's id as in {job_id}_objects.json (1, 2, ...)

    def to_dict(self) -> dict[str, Any]:
        """The HTTP API's shape: points as {x, y, positive}, the box as {x0, y0, x1, y1}."""
        box = None if self.box is None else dict(zip(("x0", "y0", "x1", "y1"), self.box, strict=True))
        points = [dataclasses.asdict(p) for p in self.points]
        return {"frame_index": self.frame_index, "points": points, "box": box, "object": self.object}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VisualPrompt:
        """From to_dict's shape (a box also as [x0, y0, x1, y1])."""
        box = data.get("box")
        if isinstance(box, dict):
            box = tuple(box[k] for k in ("x0", "y0", "x1", "y1"))
        return cls(
            frame_index=data["frame_index"],
            points=tuple(PromptPoint(**p) for p in data.get("points", ())),
            box=None if box is None else tuple(box),
            object=data.get("object"),
        )


@dataclass(frozen=True)
class ObjectEdit:
    """One object of a job and what to do with it (VideoEditRequest.objects; the one-object form
    is one of these too: CheckedRequest.targets)."""

    mask_prompt: str
    edit_prompt: str = ""  # may be empty in mode masks
    instances: int | None = None  # edit only its N largest instances (None: all, also later ones)
    visual_prompts: tuple[VisualPrompt, ...] = ()  # clicks and boxes picking, correcting or defining it

    def to_dict(self) -> dict[str, Any]:
        return {
            "mask_prompt": self.mask_prompt,
            "edit_prompt": self.edit_prompt,
            "instances": self.instances,
            "visual_prompts": [v.to_dict() for v in self.visual_prompts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectEdit:
        values = dict(data)
        values["visual_prompts"] = tuple(VisualPrompt.from_dict(v) for v in values.get("visual_prompts", ()))
        return cls(**values)


@dataclass(kw_only=True)
class VideoEditRequest:
    """One edit job. Keyword-only, so the original worker's calls work unchanged."""

    job_id: str = ""  # empty: one is made up
    input_video_path: Path
    output_dir: Path | None = None  # None: <UR_EDIT_OUTPUT_DIR>/<job_id>
    mask_prompt: str
    edit_prompt: str
    mode: Mode | str = Mode.VIDEO  # the original worker's strings work too; check_request makes it a Mode
    max_frames: int | None = None  # None: every frame
    image_guidance_scale: float = 1.5
    guidance_scale: float = 9.0
    erode_kernel: int = 10
    num_inference_steps: int = 50
    apply_smoothing: bool = True
    smoothing_window: int = 5
    smoothing_alpha: float = 0.3
    seed: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    # Several objects, each with its own instruction (then mask_prompt and edit_prompt are empty).
    objects: list[ObjectEdit] = field(default_factory=list)
    # Clicks and boxes on frames: pick or correct the object mask_prompt finds, or define it.
    visual_prompts: list[VisualPrompt] = field(default_factory=list)
    # Whose job it is: set by the server from the caller's API key, never by the client ("": the
    # default tenant, of one-user setups).
    tenant: str = ""

    @property
    def key(self) -> str:
        return job_key(self.tenant, self.job_id)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}
        out["objects"] = [o.to_dict() for o in self.objects]
        out["visual_prompts"] = [v.to_dict() for v in self.visual_prompts]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoEditRequest:
        values = dict(data)
        values["input_video_path"] = Path(values["input_video_path"])
        if values.get("output_dir") is not None:
            values["output_dir"] = Path(values["output_dir"])
        values["objects"] = [ObjectEdit.from_dict(o) for o in values.get("objects", [])]
        values["visual_prompts"] = [VisualPrompt.from_dict(v) for v in values.get("visual_prompts", [])]
        return cls(**values)


@dataclass
class VideoEditStatus:
    """What `status.json` holds and `get_video_edit_status` returns."""

    job_id: str
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    current_frame: int | None = None
    total_frames: int | None = None
    message: str | None = None
    error: str | None = None
    output_video_path: Path | None = None
    mask_preview_path: Path | None = None
    logs_path: Path | None = None
    output_dir: Path | None = None
    created_at: float | None = None  # unix seconds
    updated_at: float | None = None
    # The request's prompts and mode, so whoever shows the job can say what it does.
    mask_prompt: str | None = None
    edit_prompt: str | None = None
    mode: str | None = None
    elapsed_seconds: float | None = None  # of this run, from when it left the queue (jobs/reporter.py)
    eta_seconds: float | None = None  # left, as of updated_at (jobs/eta.py)
    stage_eta_seconds: float | None = None  # left in the current stage, as of updated_at
    media: dict[str, Any] | None = None  # what the input holds (media.summary.MediaSummary), once probed
    objects_found: int | None = None  # objects tracked ({job_id}_objects.json), once the job finished
    tenant: str = ""  # whose job it is (VideoEditRequest.tenant)

    _PATHS = ("output_video_path", "mask_preview_path", "logs_path", "output_dir")

    @property
    def key(self) -> str:
        return job_key(self.tenant, self.job_id)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["status"] = self.status.value
        for name in self._PATHS:
            if out[name] is not None:
                out[name] = str(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoEditStatus:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = JobStatus(values.get("status", "queued"))
        for name in cls._PATHS:
            if values.get(name) is not None:
                values[name] = Path(values[name])
        return cls(**values)


@dataclass(frozen=True)
class EditOptions:
    """Typed `extra` options (parsed by jobs.validation). Keys and meaning are listed in the README."""

    edit_size: int = 512  # side of the square InstructPix2Pix works at
    crop_margin: float = 0.15  # crop = mask bbox grown by this fraction per side
    chunk_size: int = 16  # frames per Segment call (a SAM3 tracking window)
    chunk_overlap: int = 2  # frames each chunk repeats from the previous one, to stitch object ids
    max_gap: int = 2  # an object missing for at most this many frames is filled from its last mask
    instances: int | None = None  # edit only the N largest objects found (None: all, also later ones)
    edit_batch_size: int = 8  # crops per Edit call (at most what the model server takes, GetInfo)
    seed_mode: SeedMode = SeedMode.SHARED
    smoothing_mode: SmoothingMode = SmoothingMode.EMA
    scheduler: str = ""  # diffusion scheduler (videoedit.v1.contract.SCHEDULERS); "": the checkpoint's
    frame_index: int = 0  # single_frame mode: which frame to edit
    # The model edits every k-th frame of each stretch where the object is visible (and its first
    # and last); the others carry the edit along the source's optical flow. 1: every frame.
    keyframe_interval: int = 1
    keyframes: Keyframes = Keyframes.INTERVAL
    consistency: Consistency = Consistency.NONE
    detail: Detail = Detail.MODEL
    # Edit with the masks another job tracked (a finished masks or video job on the same input):
    # no Segment call. `objects`: which of its objects (ids of its objects.json; None: the ones it edited).
    masks_from: str | None = None
    objects: tuple[int, ...] | None = None
    # Where the job's status is POSTed at every stage change and at its end (jobs/webhooks.py).
    # Out of repr: its query may carry the receiver's secrets, and options are logged.
    callback_url: str | None = field(default=None, repr=False)

    @property
    def uses_keyframes(self) -> bool:
        return self.keyframe_interval > 1 or self.keyframes == Keyframes.ADAPTIVE

    @property
    def detail_size(self) -> int | None:
        """The size the source's detail is restored from (vision.compositing.paste); None: not."""
        return self.edit_size if self.detail == Detail.SOURCE else None


@dataclass(frozen=True)
class CheckedRequest:
    """A validated request (job id filled in, paths resolved) and its typed options."""

    request: VideoEditRequest
    options: EditOptions
    # Seconds of the input the job processes (max_frames counted), from its headers as validation
    # read them; None: they do not say (a raw stream). Quotas judge it.
    processed_seconds: float | None = None

    @property
    def output_dir(self) -> Path:
        assert self.request.output_dir is not None  # validation always sets it
        return self.request.output_dir

    @property
    def targets(self) -> tuple[ObjectEdit, ...]:
        """The objects the job edits, in the order overlaps are resolved by (the earlier keeps the
        pixels): `objects`, or the one-object form's prompts and extra.instances."""
        req = self.request
        return tuple(req.objects) or (
            ObjectEdit(req.mask_prompt, req.edit_prompt, self.options.instances, tuple(req.visual_prompts)),
        )
