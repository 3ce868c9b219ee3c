"""JSON <-> protobuf for the HTTP API, in the original worker's shapes.

A job's status is the original worker's `VideoEditStatus.to_dict()` (status as a lowercase word, paths as
strings, times as unix seconds). A request is the original worker's REST example: `job_id`,
`input_video_path`, `output_dir`, `mask_prompt`, `edit_prompt` (or `objects`: a list of
`{mask_prompt, edit_prompt, instances}`, several objects each with its instruction) and `params`, whose keys are
further request fields (`num_inference_steps`, `seed`, ...) or, for anything else, `extra`
options (`edit_size`, `smoothing_mode`, `masks_from`, ...). Which prompts a job needs depends on
its mode and options (a masks job has no instruction; one with `masks_from` may leave out what to
find): the orchestrator decides, so here a prompt may be absent, but not anything but a string.
"""

from __future__ import annotations

import math
from typing import Any

from clients.follow import status_name
from videoedit.v1 import geometry_pb2
from videoedit.v1 import video_edit_pb2 as pb

from .errors import ApiError

# Request fields `params` may set, with their type on the wire (proto/videoedit/v1/video_edit.proto);
# the rest of `params` goes to `extra`.
FIELDS: dict[str, str] = {
    "mode": "string",
    "max_frames": "int32",
    "image_guidance_scale": "float",
    "guidance_scale": "float",
    "erode_kernel": "int32",
    "num_inference_steps": "int32",
    "apply_smoothing": "bool",
    "smoothing_window": "int32",
    "smoothing_alpha": "float",
    "seed": "int64",
}
INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
FLOAT32_MAX = 3.4028234663852886e38


class BadRequest(ApiError):
    """The JSON itself is wrong (-> 400), before anything reaches the orchestrator."""

    def __init__(self, message: str):
        super().__init__(400, message)


def text(field: str, value: str) -> str:
    """`value`, which goes into a proto string: refused when it holds a NUL (the orchestrator would
    fail on it as a path, and no field has a use for one)."""
    if "\0" in value:
        raise BadRequest(f"{field}: {value!r} contains a NUL character")
    return value


def request_from_json(data: Any) -> pb.VideoEditRequest:
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    if not isinstance(data.get("input_video_path"), str):
        raise BadRequest("input_video_path: a string is required")
    for key in ("mask_prompt", "edit_prompt"):
        if not isinstance(data.get(key, ""), str):
            raise BadRequest(f"{key}: {data[key]!r} is not a string")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest("params: must be an object")
    extra_given = params.get("extra") or {}
    if not isinstance(extra_given, dict):
        raise BadRequest("params.extra: must be an object")
    fields: dict[str, Any] = {}
    extra = {str(k): str(v) for k, v in extra_given.items()}
    for key, value in params.items():
        if key == "extra":
            continue
        if key in FIELDS:
            fields[key] = _typed(key, value, FIELDS[key])
        else:
            extra[key] = str(value).lower() if isinstance(value, bool) else str(value)
    for key, value in extra.items():
        text(f"params.extra[{key!r}]", key)
        text(f"params.{key}", value)
    strings = {key: str(data.get(key) or "") for key in ("job_id", "output_dir")}
    strings |= {key: data.get(key, "") for key in ("input_video_path", "mask_prompt", "edit_prompt")}
    return pb.VideoEditRequest(
        **{key: text(key, value) for key, value in strings.items()},
        objects=_objects(data.get("objects", [])),
        visual_prompts=_visual_prompts("visual_prompts", data.get("visual_prompts", [])),
        extra=extra,
        **fields,
    )


def _objects(given: Any) -> list[pb.ObjectEdit]:
    """`objects` as ObjectEdit messages: each an object of strings (instances also a count)."""
    if not isinstance(given, list):
        raise BadRequest("objects: must be a list of {mask_prompt, edit_prompt, instances}")
    edits = []
    for i, item in enumerate(given):
        if not isinstance(item, dict):
            raise BadRequest(f"objects[{i}]: must be an object with mask_prompt, edit_prompt, instances")
        unknown = set(item) - {"mask_prompt", "edit_prompt", "instances", "visual_prompts"}
        if unknown:
            raise BadRequest(f"objects[{i}]: unknown key(s) {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {
            "visual_prompts": _visual_prompts(f"objects[{i}].visual_prompts", item.get("visual_prompts", []))
        }
        for key in ("mask_prompt", "edit_prompt", "instances"):
            value = item.get(key, "")
            if key == "instances" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                raise BadRequest(f"objects[{i}].{key}: {value!r} is not a string")
            values[key] = text(f"objects[{i}].{key}", value)
        edits.append(pb.ObjectEdit(**values))
    return edits


def _visual_prompts(field: str, given: Any) -> list[pb.VisualPrompt]:
    """Clicks and boxes as VisualPrompt messages: [{frame_index, points: [{x, y, positive}],
    box: {x0, y0, x1, y1}, object}], numbers checked against their wire types (the orchestrator
    checks what they mean)."""
    if not isinstance(given, list):
        raise BadRequest(f"{field}: must be a list of {{frame_index, points, box, object}}")
    prompts = []
    for i, item in enumerate(given):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: must be an object with frame_index, points, box, object")
        if unknown := set(item) - {"frame_index", "points", "box", "object"}:
            raise BadRequest(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        prompt = pb.VisualPrompt(frame_index=_number(f"{where}.frame_index", item.get("frame_index", 0), "int64"))
        points = item.get("points", [])
        if not isinstance(points, list):
            raise BadRequest(f"{where}.points: must be a list of {{x, y, positive}}")
        for j, point in enumerate(points):
            at = f"{where}.points[{j}]"
            if not isinstance(point, dict) or set(point) - {"x", "y", "positive"}:
                raise BadRequest(f"{at}: must be an object with x, y and positive")
            positive = point.get("positive", True)
            if not isinstance(positive, bool):
                raise BadRequest(f"{at}.positive: {positive!r} is not true or false")
            x, y = (_number(f"{at}.{axis}", point.get(axis), "float") for axis in ("x", "y"))
            prompt.points.add(x=x, y=y, positive=positive)
        if (box := item.get("box")) is not None:
            if not isinstance(box, dict) or set(box) != {"x0", "y0", "x1", "y1"}:
                raise BadRequest(f"{where}.box: must be an object with x0, y0, x1 and y1")
            prompt.box.CopyFrom(
                geometry_pb2.Box(**{k: _number(f"{where}.box.{k}", box[k], "float") for k in ("x0", "y0", "x1", "y1")})
            )
        if (obj := item.get("object")) is not None:
            prompt.object = _number(f"{where}.object", obj, "int32")
        prompts.append(prompt)
    return prompts


def _number(field: str, value: Any, wire: str) -> Any:
    """A number of a visual prompt as its wire type takes it (400 naming `field` otherwise)."""
    return _typed(field, value, wire, field=field)


def _typed(key: str, value: Any, wire: str, field: str = "") -> Any:
    """`value` as the proto field of type `wire` takes it; 400 naming `field` (default
    params.`key`) when it is not one, or does not fit (an int32 past 2^31, a float past float32,
    inf, nan)."""
    field = field or f"params.{key}"
    if wire == "bool":
        if not isinstance(value, bool):
            raise BadRequest(f"{field}: {value!r} is not true or false")
        return value
    if wire == "string":
        if not isinstance(value, str):
            raise BadRequest(f"{field}: {value!r} is not a string")
        return text(field, value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{field}: {value!r} is not a number")
    if not math.isfinite(value):
        raise BadRequest(f"{field}: {value!r} is not a finite number")
    if wire == "float":
        if abs(value) > FLOAT32_MAX:
            raise BadRequest(f"{field}: {value!r} is past the largest float ({FLOAT32_MAX:.4g})")
        return float(value)
    if value != int(value):
        raise BadRequest(f"{field}: {value!r} is not a whole number")
    low, high = INT_RANGE[wire]
    if not low <= int(value) <= high:
        raise BadRequest(f"{field}: {value!r} is outside {wire} ({low}..{high})")
    return int(value)


def job_status_from_word(word: str) -> int:
    """A job status as the API writes it (`running`, `completed`, ...; any case) -> JobStatus."""
    name = f"JOB_STATUS_{word.upper()}"
    if name not in pb.JobStatus.keys():
        raise BadRequest(f"status: {word!r} is not a job status")
    return pb.JobStatus.Value(name)


def status_to_dict(status: pb.VideoEditStatus) -> dict[str, Any]:
    """The original worker's VideoEditStatus.to_dict(), with what this service adds: the
    request's prompts and mode, the seconds the run took so far and its estimate of those left
    (as of `updated_at`), the objects it tracked (once tracking ended), and whose job it is."""

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
        "mask_prompt": status.mask_prompt or None,
        "edit_prompt": status.edit_prompt or None,
        "mode": status.mode or None,
        "elapsed_seconds": optional("elapsed_seconds"),
        "eta_seconds": optional("eta_seconds"),
        "stage_eta_seconds": optional("stage_eta_seconds"),
        "objects_found": optional("objects_found"),
        "tenant": status.tenant,
        "media": {f.name: getattr(status.media, f.name) for f in pb.MediaSummary.DESCRIPTOR.fields}
        if status.HasField("media")
        else None,
    }
