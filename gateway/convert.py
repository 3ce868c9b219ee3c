"""JSON <-> protobuf for the HTTP API, in the original worker's shapes.

A job's status is the original worker's `VideoEditStatus.to_dict()` (status as a lowercase word, paths as
strings, times as unix seconds). A request is the original worker's REST example: `job_id`,
`input_video_path`, `output_dir`, `mask_prompt`, `edit_prompt` and `params`, whose keys are
further request fields (`num_inference_steps`, `seed`, ...) or, for anything else, `extra`
options (`edit_size`, `smoothing_mode`, ...).
"""

from __future__ import annotations

from typing import Any

from clients.follow import status_name
from videoedit.v1 import video_edit_pb2 as pb

# Request fields `params` may set (the rest of `params` goes to `extra`).
FIELDS: dict[str, type] = {
    "mode": str,
    "max_frames": int,
    "image_guidance_scale": float,
    "guidance_scale": float,
    "erode_kernel": int,
    "num_inference_steps": int,
    "apply_smoothing": bool,
    "smoothing_window": int,
    "smoothing_alpha": float,
    "seed": int,
}


class BadRequest(ValueError):
    """The JSON itself is wrong (-> 400), before anything reaches the orchestrator."""


def request_from_json(data: Any) -> pb.VideoEditRequest:
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    for key in ("input_video_path", "mask_prompt", "edit_prompt"):
        if not isinstance(data.get(key), str):
            raise BadRequest(f"{key}: a string is required")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest("params: must be an object")
    fields: dict[str, Any] = {}
    extra = {str(k): str(v) for k, v in (params.get("extra") or {}).items()}
    for key, value in params.items():
        if key == "extra":
            continue
        if key in FIELDS:
            fields[key] = _typed(key, value, FIELDS[key])
        else:
            extra[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return pb.VideoEditRequest(
        job_id=str(data.get("job_id") or ""),
        input_video_path=data["input_video_path"],
        output_dir=str(data.get("output_dir") or ""),
        mask_prompt=data["mask_prompt"],
        edit_prompt=data["edit_prompt"],
        extra=extra,
        **fields,
    )


def _typed(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise BadRequest(f"params.{key}: {value!r} is not true or false")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise BadRequest(f"params.{key}: {value!r} is not a string")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"params.{key}: {value!r} is not a number")
    if kind is int and value != int(value):
        raise BadRequest(f"params.{key}: {value!r} is not a whole number")
    return kind(value)


def job_status_from_word(word: str) -> int:
    """A job status as the API writes it (`running`, `completed`, ...; any case) -> JobStatus."""
    name = f"JOB_STATUS_{word.upper()}"
    if name not in pb.JobStatus.keys():
        raise BadRequest(f"status: {word!r} is not a job status")
    return pb.JobStatus.Value(name)


def status_to_dict(status: pb.VideoEditStatus) -> dict[str, Any]:
    """The original worker's VideoEditStatus.to_dict()."""

    def optional(field: str) -> Any:
        return getattr(status, field) if status.HasField(field) else None

    def seconds(field: str) -> float | None:
        return getattr(status, field).ToNanoseconds() / 1e9 if status.HasField(field) else None

    return {
        "job_id": status.job_id,
        "status": status_name(status.status),
        "progress": status.progress,
        "current_frame": optional("current_frame"),
        "total_frames": optional("total_frames"),
        "message": status.message or None,
        "error": status.error or None,
        "output_video_path": status.output_video_path or None,
        "mask_preview_path": status.mask_preview_path or None,
        "logs_path": status.logs_path or None,
        "output_dir": status.output_dir or None,
        "created_at": seconds("create_time"),
        "updated_at": seconds("update_time"),
    }
