"""Decoding and validation of ModelService requests, before any model runs.

Limits are the ones the orchestrator checks too (videoedit.v1.contract). Each error names the
field and the bad value (-> INVALID_ARGUMENT).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from videoedit.v1 import contract, wire
from videoedit.v1 import model_service_pb2 as pb


class InvalidInput(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Limits:
    """Per-call limits of this server (`--max-segment-frames`, `--max-edit-batch`)."""

    max_segment_frames: int = contract.MAX_SEGMENT_FRAMES
    max_edit_batch: int = contract.MAX_EDIT_BATCH


@dataclass(frozen=True)
class SessionRef:
    id: str
    first_frame: int
    close: bool


@dataclass
class SegmentCall:
    frames: list[np.ndarray]
    prompts: list[str]
    session: SessionRef | None = None  # carries on a tracking session (sessions.py)
    # frame_index counted within the session (within the call without one), checked against it
    visual_prompts: list[contract.FramePrompt] = field(default_factory=list)


@dataclass
class EditCall:
    images: list[np.ndarray]
    instruction: str
    params: contract.EditParams  # what the engine batches by (with the images' size)
    seeds: list[int]  # one per image
    anchor: np.ndarray | None = None  # cross-frame consistency: every crop also attends to this one


def decode_segment(request: pb.SegmentRequest, limits: Limits) -> SegmentCall:
    # A session may have no text: its objects may come from visual prompts, on a later call too.
    if not request.prompts and not request.visual_prompts and not request.HasField("session"):
        raise InvalidInput("prompts", "at least one prompt is required without visual_prompts or a session")
    for i, prompt in enumerate(request.prompts):
        _check_text(f"prompts[{i}]", prompt)
    if len(request.visual_prompts) > contract.MAX_VISUAL_PROMPTS:
        raise InvalidInput(
            "visual_prompts", f"{len(request.visual_prompts)} prompts; at most {contract.MAX_VISUAL_PROMPTS} per call"
        )
    session = None
    if request.HasField("session"):
        ref = request.session
        if not 1 <= len(ref.id) <= contract.MAX_SESSION_ID_CHARS:
            raise InvalidInput("session.id", f"{ref.id[:40]!r} must have 1-{contract.MAX_SESSION_ID_CHARS} characters")
        if ref.first_frame < 0:
            raise InvalidInput("session.first_frame", f"{ref.first_frame} is negative")
        session = SessionRef(ref.id, ref.first_frame, ref.close)
        if ref.close and not request.frames and not request.visual_prompts:  # ending a session needs no frames
            return SegmentCall([], list(request.prompts), session)
    frames = _decode_images("frames", request.frames, limits.max_segment_frames, contract.MAX_FRAME_SIDE)
    first = session.first_frame if session is not None else 0
    prompts = _decode_visual_prompts(request.visual_prompts, range(first, first + len(frames)), frames[0].shape)
    return SegmentCall(frames, list(request.prompts), session, prompts)


def _decode_visual_prompts(messages, frames: range, shape: tuple[int, ...]) -> list[contract.FramePrompt]:
    """The call's visual prompts, each on one of its `frames` (session numbering) and inside them."""
    height, width = shape[:2]
    prompts: list[contract.FramePrompt] = []
    tracked: dict[tuple[int, int], int] = {}  # (frame, object id) -> the prompt that has it
    for i, message in enumerate(messages):
        prompt = wire.decode_frame_prompt(message)
        if prompt.frame_index not in frames:
            raise InvalidInput(
                f"visual_prompts[{i}].frame_index",
                f"{prompt.frame_index} is not one of this call's frames {frames.start}-{frames.stop - 1}",
            )
        if problem := prompt.problem(width, height):
            raise InvalidInput(f"visual_prompts[{i}]", problem)
        if prompt.object_id is not None:
            if prompt.object_id < 0:
                raise InvalidInput(f"visual_prompts[{i}].object_id", f"{prompt.object_id} is negative")
            key = (prompt.frame_index, prompt.object_id)
            if key in tracked:
                raise InvalidInput(
                    f"visual_prompts[{i}]",
                    f"object {prompt.object_id} on frame {prompt.frame_index} has a prompt already "
                    f"(visual_prompts[{tracked[key]}]); send its points and box in one",
                )
            tracked[key] = i
        prompts.append(prompt)
    return prompts


def decode_edit(request: pb.EditRequest, limits: Limits, size_multiple: int) -> EditCall:
    _check_text("instruction", request.instruction)
    images = _decode_images("images", request.images, limits.max_edit_batch, contract.MAX_CROP_SIDE)
    height, width = images[0].shape[:2]
    if height % size_multiple or width % size_multiple:
        raise InvalidInput("images", f"{width}x{height} is not a multiple of {size_multiple} on both sides")
    if len(request.seeds) != len(images):
        raise InvalidInput("seeds", f"{len(request.seeds)} seeds for {len(images)} images; send one per image")
    params = contract.EditParams(
        request.image_guidance_scale, request.guidance_scale, request.num_inference_steps, request.scheduler
    )
    try:
        params.check()
    except contract.InvalidParam as err:
        raise InvalidInput(err.field, err.message) from None
    anchor = None
    if request.HasField("anchor"):
        anchor = _decode_images("anchor", [request.anchor], 1, contract.MAX_CROP_SIDE)[0]
        if anchor.shape != images[0].shape:
            raise InvalidInput(
                "anchor",
                f"{anchor.shape[1]}x{anchor.shape[0]} differs from the images' "
                f"{width}x{height}; send the anchor crop at the same size",
            )
    return EditCall(images, request.instruction, params, list(request.seeds), anchor)


def _decode_images(field: str, images, max_count: int, max_side: int) -> list[np.ndarray]:
    if not images:
        raise InvalidInput(field, "at least one image is required")
    if len(images) > max_count:
        raise InvalidInput(field, f"{len(images)} images; at most {max_count} per call")
    decoded = []
    for i, image in enumerate(images):
        try:
            rgb = wire.decode_image(image, max_side)
        except ValueError as err:
            raise InvalidInput(f"{field}[{i}]", str(err)) from None
        if rgb.shape[:2] != (decoded[0].shape[:2] if decoded else rgb.shape[:2]):
            raise InvalidInput(
                f"{field}[{i}]",
                f"is {rgb.shape[1]}x{rgb.shape[0]}, but {field}[0] is "
                f"{decoded[0].shape[1]}x{decoded[0].shape[0]}; all must be the same size",
            )
        decoded.append(rgb)
    return decoded


def _check_text(field: str, value: str) -> None:
    if not value.strip():
        raise InvalidInput(field, "must not be blank")
    if len(value) > contract.MAX_PROMPT_CHARS:
        raise InvalidInput(field, f"is {len(value)} characters; at most {contract.MAX_PROMPT_CHARS}")
