"""What the services and clients agree on beyond the .proto: value limits, the edit parameters
(EditParams) and the job stages.

Defined once here; the orchestrator validates requests against the same limits the model
server enforces (so a job is refused up front, not failed halfway), both sides pass an Edit's
settings as one EditParams, and the orchestrator's progress, the CLI's bars and the benchmarks
walk the same stage list.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """An inclusive range of accepted values."""

    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


# --- Request limits (checked by the orchestrator and again by the model server) ---
MAX_PROMPT_CHARS = 2000  # mask_prompt, edit_prompt, Segment prompts, Edit instruction
MAX_SESSION_ID_CHARS = 128  # Segment tracking session ids
IMAGE_GUIDANCE_SCALE = Range(0.0, 30.0)
GUIDANCE_SCALE = Range(0.0, 50.0)
NUM_INFERENCE_STEPS = Range(1, 500)


def guidance_problem(guidance_scale: float, image_guidance_scale: float) -> str | None:
    """Why InstructPix2Pix would not apply these guidance scales as asked, or None.

    diffusers guides only when guidance_scale > 1 and image_guidance_scale >= 1; otherwise it
    silently drops classifier-free guidance altogether, so both scales lose their meaning.
    """
    if image_guidance_scale < 1:
        return (
            f"image_guidance_scale {image_guidance_scale:g} is below 1, where InstructPix2Pix drops all "
            "guidance (the text's too); use 1 (follow the text freely) or more (stay closer to the frame)"
        )
    if guidance_scale <= 1 and image_guidance_scale != 1:
        return (
            f"guidance_scale {guidance_scale:g} is 1 or less, where InstructPix2Pix drops all guidance, "
            f"so image_guidance_scale {image_guidance_scale:g} would have no effect; raise guidance_scale "
            "above 1 (7.5-9 is usual) or set image_guidance_scale to 1"
        )
    return None


# Diffusion schedulers an Edit may ask for ("" = the checkpoint's own: Euler Ancestral for
# timbrooks/instruct-pix2pix). DPM-Solver++ 2M and UniPC reach a comparable result in ~20 steps.
SCHEDULERS = ("euler_ancestral", "dpmpp_2m", "unipc")


class InvalidParam(ValueError):
    """An edit parameter outside what the contract accepts: `field` names it, `message` says why."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class EditParams:
    """How an Edit denoises: the settings every crop of one InstructPix2Pix call must share.

    Frozen, so hashable: equal EditParams (and equal crop sizes) is exactly what lets the model
    server merge crops of concurrent calls into one diffusers call, so it is (part of) its batch
    key. What differs per call or per crop (the instruction, the seeds, the anchor crop) is left
    out on purpose, or no two calls could share a batch; every `edit` takes those beside it, the
    seeds and anchor by keyword. Field names are EditRequest's.
    """

    image_guidance_scale: float
    guidance_scale: float
    num_inference_steps: int
    scheduler: str = ""  # one of SCHEDULERS; "": the checkpoint's own

    def check(self) -> None:
        """Raise InvalidParam naming the first field outside the limits, and its value."""
        for field, accepted in (
            ("image_guidance_scale", IMAGE_GUIDANCE_SCALE),
            ("guidance_scale", GUIDANCE_SCALE),
            ("num_inference_steps", NUM_INFERENCE_STEPS),
        ):
            value = getattr(self, field)
            if not math.isfinite(value) or value not in accepted:
                raise InvalidParam(field, f"{value} is out of range [{accepted.low}, {accepted.high}]")
        if problem := guidance_problem(self.guidance_scale, self.image_guidance_scale):
            raise InvalidParam("image_guidance_scale", problem)
        if self.scheduler and self.scheduler not in SCHEDULERS:
            raise InvalidParam(
                "scheduler",
                f"{self.scheduler!r} is not one of {', '.join(SCHEDULERS)} (or empty for the checkpoint's own)",
            )


# --- Visual prompts (clicks and boxes on frames) ---
MAX_VISUAL_PROMPTS = 64  # per job (VideoEditRequest.visual_prompts, objects included) and per Segment call
MAX_PROMPT_POINTS = 64  # points of one prompt


@dataclass(frozen=True)
class PromptPoint:
    """A click on a frame, in pixels: on the object (`positive`) or not on it."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True)
class FramePrompt:
    """Clicks and a box on one frame, as a Segment call carries them (FramePrompt in
    model_service.proto): a box alone without `object_id` is an exemplar for SAM3's detector;
    with `object_id`, points and box are the tracker's prompt for that object (a correction, or a
    new object when the session does not track that id). Pixels of the frame they belong to."""

    frame_index: int
    points: tuple[PromptPoint, ...] = ()
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1
    object_id: int | None = None

    @property
    def exemplar(self) -> bool:
        """A box for the detector (find things like this), not a prompt for the tracker."""
        return self.object_id is None

    def scaled(self, sx: float, sy: float, frame_offset: int = 0) -> FramePrompt:
        """The same prompt on the frame resized by (sx, sy), its index moved by `frame_offset`."""
        box = None if self.box is None else (self.box[0] * sx, self.box[1] * sy, self.box[2] * sx, self.box[3] * sy)
        points = tuple(PromptPoint(p.x * sx, p.y * sy, p.positive) for p in self.points)
        return FramePrompt(self.frame_index + frame_offset, points, box, self.object_id)

    def problem(self, width: int, height: int) -> str | None:
        """Why this prompt cannot apply to a width x height frame, or None (the caller names the
        field: every message starts with the part at fault)."""
        if not self.points and self.box is None:
            return "has neither points nor a box"
        if len(self.points) > MAX_PROMPT_POINTS:
            return f"points: {len(self.points)} is more than {MAX_PROMPT_POINTS}"
        for i, p in enumerate(self.points):
            if not (math.isfinite(p.x) and math.isfinite(p.y) and 0 <= p.x <= width and 0 <= p.y <= height):
                return f"points[{i}]: ({p.x:g}, {p.y:g}) is outside the {width}x{height} frame"
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not all(math.isfinite(v) for v in self.box) or not (x0 < x1 and y0 < y1):
                return f"box: ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not a box (needs x0 < x1 and y0 < y1)"
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                return f"box: ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the {width}x{height} frame"
        if self.object_id is None and self.points:
            return "points need an object_id (the object they prompt the tracker for)"
        return None


# --- Batch limits ---
# Frames per Segment call and crops per Edit call a model server accepts by default
# (`--max-segment-frames`, `--max-edit-batch`; GetInfo reports the values in force).
MAX_SEGMENT_FRAMES = 64
MAX_EDIT_BATCH = 16
# Largest `extra.chunk_size` / `extra.edit_batch_size` a job may ask for.
CHUNK_SIZE = Range(1, MAX_SEGMENT_FRAMES)
EDIT_BATCH_SIZE = Range(1, 32)

# --- Image sizes the model server decodes ---
MAX_FRAME_SIDE = 4096  # Segment frames (the orchestrator downscales to SAM3's input size first)
MAX_CROP_SIDE = 2048  # Edit crops


@dataclass(frozen=True)
class Stage:
    """One stage of a job, with the share of overall progress it covers."""

    name: str  # the original worker's status string
    progress_start: float
    progress_end: float


# The original worker's stages in the order a video job passes them.
STAGES: tuple[Stage, ...] = (
    Stage("extracting", 0.00, 0.05),
    Stage("masking", 0.05, 0.10),
    Stage("propagating", 0.10, 0.30),
    Stage("editing", 0.30, 0.85),
    Stage("smoothing", 0.85, 0.90),
    Stage("saving", 0.90, 1.00),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


# --- Where both services' Prometheus /metrics listen ---


def metrics_host(env: Mapping[str, str]) -> str:
    """VIDEOEDIT_METRICS_HOST, else loopback outside containers (metrics name jobs and load: no
    one else on the machine should read them) and every interface inside one (Kubernetes, Docker:
    the scraper comes from another pod or container, and the network is the pod's own)."""
    if env.get("VIDEOEDIT_METRICS_HOST"):
        return env["VIDEOEDIT_METRICS_HOST"]
    in_container = "KUBERNETES_SERVICE_HOST" in env or any(
        os.path.exists(marker) for marker in ("/.dockerenv", "/run/.containerenv")
    )
    return "0.0.0.0" if in_container else "127.0.0.1"
