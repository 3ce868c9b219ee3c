"""Decoding and validation of ModelService requests, before any model runs.

Limits are the ones the orchestrator checks too (videoedit.v1.contract). Each error names the
field and the bad value (-> INVALID_ARGUMENT).
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class EditCall:
    images: list[np.ndarray]
    instruction: str
    params: contract.EditParams  # what the engine batches by (with the images' size)
    seeds: list[int]  # one per image
    anchor: np.ndarray | None = None  # cross-frame consistency: every crop also attends to this one


def decode_segment(request: pb.SegmentRequest, limits: Limits) -> SegmentCall:
    if not request.prompts:
        raise InvalidInput("prompts", "at least one prompt is required")
    for i, prompt in enumerate(request.prompts):
        _check_text(f"prompts[{i}]", prompt)
    session = None
    if request.HasField("session"):
        ref = request.session
        if not 1 <= len(ref.id) <= contract.MAX_SESSION_ID_CHARS:
            raise InvalidInput("session.id", f"{ref.id[:40]!r} must have 1-{contract.MAX_SESSION_ID_CHARS} characters")
        if ref.first_frame < 0:
            raise InvalidInput("session.first_frame", f"{ref.first_frame} is negative")
        session = SessionRef(ref.id, ref.first_frame, ref.close)
        if ref.close and not request.frames:  # ending a session needs no frames
            return SegmentCall([], list(request.prompts), session)
    frames = _decode_images("frames", request.frames, limits.max_segment_frames, contract.MAX_FRAME_SIDE)
    return SegmentCall(frames, list(request.prompts), session)


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
