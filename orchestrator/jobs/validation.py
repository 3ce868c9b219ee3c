"""All request validation, in one place, before anything touches a path.

`check_request` returns a normalised copy of the request (job id filled in,
paths resolved) and the typed `extra` options. Each error names the field and
its bad value, and says what would be accepted.
"""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from pathlib import Path

from videoedit.v1 import contract

from ..config import Settings, is_within
from ..errors import InvalidArgument, NotFound, PermissionDenied
from ..media.probe import NotAVideo, VideoProbe, probe_video
from ..request import (
    CheckedRequest,
    Consistency,
    Detail,
    EditOptions,
    Keyframes,
    Mode,
    SeedMode,
    SmoothingMode,
    VideoEditRequest,
    VisualPrompt,
)
from .callback_urls import CallbackRefused, parse_callback_url
from .tenants import OWNER, TENANTS_DIR, Caller, TenantPaths, check_tenant

JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
MODES = tuple(Mode)


# key -> (parser, lowest, highest)
_EXTRA_RANGES: dict[str, tuple[type, float, float]] = {
    "edit_size": (int, 64, 1024),
    "crop_margin": (float, 0.0, 2.0),
    "chunk_size": (int, contract.CHUNK_SIZE.low, contract.CHUNK_SIZE.high),
    "chunk_overlap": (int, 0, 32),
    "max_gap": (int, 0, 30),
    "edit_batch_size": (int, contract.EDIT_BATCH_SIZE.low, contract.EDIT_BATCH_SIZE.high),
    "frame_index": (int, 0, 10_000_000),
    "keyframe_interval": (int, 1, 1000),
}
# key -> accepted words: an enum's members, or the contract's scheduler names
_EXTRA_CHOICES: dict[str, tuple[str, ...]] = {
    "seed_mode": tuple(SeedMode),
    "smoothing_mode": tuple(SmoothingMode),
    "scheduler": contract.SCHEDULERS,
    "keyframes": tuple(Keyframes),
    "consistency": tuple(Consistency),
    "detail": tuple(Detail),
}
# Adaptive keyframes without an explicit keyframe_interval: at most this many frames apart.
ADAPTIVE_MAX_INTERVAL = 16
MAX_INSTANCES = 100
MAX_PROMPTED_OBJECT = 1000  # highest `object` a visual prompt may name
MAX_OBJECTS = 16  # objects one job may pick from reused masks, or edit (`objects`)


def check_request(request: VideoEditRequest, settings: Settings, paths: TenantPaths | None = None) -> CheckedRequest:
    """Validate `request` against `settings`; raise InvalidArgument/NotFound/PermissionDenied.
    `paths`: where its tenant may read and write (None: anywhere the settings allow)."""
    paths = paths or TenantPaths.of(settings, OWNER)
    _check_no_nul(request)
    job_id = request.job_id or _new_job_id()
    check_job_id(job_id)

    if request.mode not in MODES:
        raise InvalidArgument("mode", f"{request.mode!r} is not one of {', '.join(MODES)}")
    options = parse_extra(request.extra)
    if options.masks_from is not None and request.mode != Mode.VIDEO:
        raise InvalidArgument("extra[masks_from]", f"reuses masks in a video job, not in mode {request.mode!r}")
    if request.objects:
        _check_objects(request, options)
    else:
        # Reused masks come with their prompt; visual prompts alone may define the object.
        if (options.masks_from is None and not request.visual_prompts) or request.mask_prompt:
            _check_text("mask_prompt", request.mask_prompt)
        if request.mode != Mode.MASKS or request.edit_prompt:  # a masks job edits nothing
            _check_text("edit_prompt", request.edit_prompt)
    if request.max_frames is not None:
        _check_range("max_frames", request.max_frames, 1, 10_000_000, integer=True)
    _check_range("image_guidance_scale", request.image_guidance_scale, *_bounds(contract.IMAGE_GUIDANCE_SCALE))
    _check_range("guidance_scale", request.guidance_scale, *_bounds(contract.GUIDANCE_SCALE))
    if problem := contract.guidance_problem(request.guidance_scale, request.image_guidance_scale):
        raise InvalidArgument("image_guidance_scale", problem)
    _check_range("erode_kernel", request.erode_kernel, 0, 255, integer=True)
    _check_range(
        "num_inference_steps", request.num_inference_steps, *_bounds(contract.NUM_INFERENCE_STEPS), integer=True
    )
    _check_range("smoothing_window", request.smoothing_window, 1, 120, integer=True)
    _check_range("smoothing_alpha", request.smoothing_alpha, 0.0, 1.0)
    _check_range("seed", request.seed, 0, 2**63 - 1, integer=True)
    _check_visual_prompts(request, options)

    input_path, probed = _resolve_input(request.input_video_path, paths)
    output_dir = _resolve_output_dir(request.output_dir, job_id, paths, settings)
    checked = dataclasses.replace(
        request,
        job_id=job_id,
        mode=Mode(request.mode),
        input_video_path=input_path,
        output_dir=output_dir,
        extra=dict(request.extra),
        objects=list(request.objects),
        visual_prompts=list(request.visual_prompts),
    )
    seconds = probed.processed_seconds(request.max_frames)
    return CheckedRequest(request=checked, options=options, processed_seconds=seconds)


def _check_objects(request: VideoEditRequest, options: EditOptions) -> None:
    """Several objects, each with its own instruction: 1-MAX_OBJECTS of them, each prompt given and
    unlike the others' (detections come back to their object by prompt), and none of the one-object
    form's fields beside them."""
    if len(request.objects) > MAX_OBJECTS:
        raise InvalidArgument("objects", f"names {len(request.objects)} objects; at most {MAX_OBJECTS}")
    for name in ("mask_prompt", "edit_prompt"):
        if getattr(request, name):
            raise InvalidArgument(name, f"must be empty with objects: give each object's as objects[i].{name}")
    if options.instances is not None:
        raise InvalidArgument("extra[instances]", "must be unset with objects: give objects[i].instances")
    if request.mode == Mode.SINGLE_FRAME:
        raise InvalidArgument("objects", "several objects are not supported in mode 'single_frame' yet")
    if options.masks_from is not None:
        raise InvalidArgument("objects", "several objects cannot reuse masks (extra[masks_from]) yet")
    if options.uses_keyframes:
        raise InvalidArgument("objects", "several objects cannot be edited with keyframes yet")
    seen: dict[str, int] = {}
    for i, obj in enumerate(request.objects):
        # Clicks alone define an object in the one-object form only: their object ids would clash.
        _check_text(f"objects[{i}].mask_prompt", obj.mask_prompt)
        if request.mode != Mode.MASKS or obj.edit_prompt:
            _check_text(f"objects[{i}].edit_prompt", obj.edit_prompt)
        if obj.instances is not None:
            _check_range(f"objects[{i}].instances", obj.instances, 1, MAX_INSTANCES, integer=True)
        same = " ".join(obj.mask_prompt.split()).lower()
        if same in seen:
            raise InvalidArgument(
                f"objects[{i}].mask_prompt", f"{obj.mask_prompt[:140]!r} is objects[{seen[same]}]'s prompt too"
            )
        seen[same] = i


def _check_visual_prompts(request: VideoEditRequest, options: EditOptions) -> None:
    """Clicks and boxes: at most MAX_VISUAL_PROMPTS in all, each on a frame index, with points or a
    box in pixels (x0 < x1, y0 < y1), `object` an objects-list id; picks only (points without
    `object`) on reused masks; not in single_frame mode; an object without a text prompt needs a
    positive point or a box. Whether they fit the video (frames, size) is checked once it is probed."""
    fields = [("visual_prompts", request.mask_prompt, request.visual_prompts)] + [
        (f"objects[{i}].visual_prompts", obj.mask_prompt, obj.visual_prompts) for i, obj in enumerate(request.objects)
    ]
    total = sum(len(prompts) for _, _, prompts in fields)
    if not total:
        return
    if total > contract.MAX_VISUAL_PROMPTS:
        raise InvalidArgument(fields[0][0], f"{total} visual prompts; at most {contract.MAX_VISUAL_PROMPTS} per job")
    if request.mode == Mode.SINGLE_FRAME:
        raise InvalidArgument(fields[0][0], "are not supported in mode 'single_frame' yet; use a masks job")
    for name, text, prompts in fields:
        for i, prompt in enumerate(prompts):
            _check_visual_prompt(f"{name}[{i}]", prompt)
            if options.masks_from is not None and (prompt.box is not None or prompt.object is not None):
                raise InvalidArgument(
                    f"{name}[{i}]",
                    "with extra[masks_from] only points without an object pick among the reused objects; "
                    "boxes and corrections need tracking (leave masks_from out)",
                )
        if not text.strip() and prompts:
            _check_defined_objects(name, prompts)


def _check_visual_prompt(name: str, prompt: VisualPrompt) -> None:
    _check_range(f"{name}.frame_index", prompt.frame_index, 0, 10_000_000, integer=True)
    if prompt.object is not None:
        _check_range(f"{name}.object", prompt.object, 1, MAX_PROMPTED_OBJECT, integer=True)
    if len(prompt.points) > contract.MAX_PROMPT_POINTS:
        raise InvalidArgument(f"{name}.points", f"{len(prompt.points)} points; at most {contract.MAX_PROMPT_POINTS}")
    for j, point in enumerate(prompt.points):
        for axis in ("x", "y"):
            _check_range(f"{name}.points[{j}].{axis}", getattr(point, axis), 0, contract.MAX_FRAME_SIDE * 4)
    if prompt.box is not None:
        for axis, value in zip(("x0", "y0", "x1", "y1"), prompt.box, strict=True):
            _check_range(f"{name}.box.{axis}", value, 0, contract.MAX_FRAME_SIDE * 4)
        x0, y0, x1, y1 = prompt.box
        if not (x0 < x1 and y0 < y1):
            raise InvalidArgument(
                f"{name}.box", f"({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty: needs x0 < x1 and y0 < y1"
            )
    elif not prompt.points:
        raise InvalidArgument(name, "has neither points nor a box")


def _check_defined_objects(name: str, prompts: list[VisualPrompt]) -> None:
    """Without a text prompt, the prompts define objects: each needs something on it (a positive
    point or a box), not only points off it."""
    shown: dict[int, bool] = {}
    for prompt in prompts:
        obj = prompt.object or 1
        shown[obj] = shown.get(obj, False) or prompt.box is not None or any(p.positive for p in prompt.points)
    if missing := sorted(obj for obj, ok in shown.items() if not ok):
        raise InvalidArgument(
            name,
            f"object {missing[0]} has only negative points and there is no mask_prompt: add a positive point "
            "or a box on it, or a mask_prompt to find it by",
        )


def _check_no_nul(request: VideoEditRequest) -> None:
    texts = [
        ("job_id", request.job_id),
        ("input_video_path", request.input_video_path),
        ("output_dir", request.output_dir),
        ("mask_prompt", request.mask_prompt),
        ("edit_prompt", request.edit_prompt),
        ("mode", request.mode),
    ]
    for i, obj in enumerate(request.objects):
        texts += [(f"objects[{i}].mask_prompt", obj.mask_prompt), (f"objects[{i}].edit_prompt", obj.edit_prompt)]
    for key, value in request.extra.items():
        texts += [("extra", key), (f"extra[{key}]", value)]
    for name, value in texts:
        check_no_nul(name, value)


def check_no_nul(name: str, value: object) -> None:
    """A text field (or path) must not hold a NUL: the OS cannot take it in a path (Python raises
    a bare ValueError), and in a prompt or option it is a truncated or smuggled string."""
    text = str(value) if isinstance(value, (str, Path)) else ""
    if (at := text.find("\0")) >= 0:
        raise InvalidArgument(name, f"contains a NUL character (at {at}): {text[:140]!r}")


def check_job_id(job_id: str) -> None:
    if not JOB_ID_PATTERN.fullmatch(job_id) or set(job_id) == {"."}:
        raise InvalidArgument(
            "job_id", f"{job_id[:140]!r} must be 1-128 characters of A-Z a-z 0-9 . _ - (not only dots)"
        )


def check_job_name(job_id: str, caller: Caller) -> None:
    """A job id as a call names a job: the caller's own job id, or for an admin also another
    tenant's job as `tenant/job_id`."""
    tenant, slash, own = job_id.rpartition("/")
    if slash and caller.admin:
        if tenant:
            check_tenant(tenant, "job_id")
        check_job_id(own)
    else:
        check_job_id(job_id)


def parse_extra(extra: dict[str, str]) -> EditOptions:
    values: dict[str, object] = {}
    known = sorted([*_EXTRA_RANGES, *_EXTRA_CHOICES, "instances", "masks_from", "objects", "callback_url"])
    for key, raw in extra.items():
        field = f"extra[{key}]"
        if key in ("model_path", "sam_path"):
            raise InvalidArgument(
                field,
                "models are chosen by the model server; set INSTRUCT_PIX2PIX_MODEL_PATH / "
                "SAM3_MODEL_PATH (or --pix2pix / --sam3) where videoedit-modelserver runs",
            )
        if key in _EXTRA_CHOICES:
            choices = _EXTRA_CHOICES[key]
            if raw not in choices:
                raise InvalidArgument(field, f"{raw!r} is not one of {', '.join(choices)}")
            values[key] = choices[choices.index(raw)]  # the member `raw` names
        elif key == "instances":
            values[key] = parse_instances(field, raw)
        elif key == "masks_from":
            if not JOB_ID_PATTERN.fullmatch(raw):
                raise InvalidArgument(field, f"{raw[:140]!r} is not a job id")
            values[key] = raw
        elif key == "objects":
            values[key] = _parse_objects(raw)
        elif key == "callback_url":
            values[key] = _parse_callback_url(field, raw)
        elif key in _EXTRA_RANGES:
            values[key] = _parse_number(field, raw, *_EXTRA_RANGES[key])
        else:
            raise InvalidArgument(field, f"unknown option; known: {', '.join(known)}")
    if "chunk_overlap" not in values:  # the default shrinks with small chunks instead of failing
        values["chunk_overlap"] = min(
            EditOptions.chunk_overlap, int(values.get("chunk_size", EditOptions.chunk_size)) - 1
        )
    if "objects" in values and "masks_from" not in values:
        raise InvalidArgument("extra[objects]", "picks objects of the job extra[masks_from] names; name that job too")
    if values.get("keyframes") == Keyframes.ADAPTIVE and "keyframe_interval" not in values:
        values["keyframe_interval"] = ADAPTIVE_MAX_INTERVAL
    options = EditOptions(**values)  # type: ignore[arg-type]
    if options.edit_size % 8:
        raise InvalidArgument("extra[edit_size]", f"{options.edit_size} must be a multiple of 8")
    if options.chunk_overlap >= options.chunk_size:
        raise InvalidArgument(
            "extra[chunk_overlap]", f"{options.chunk_overlap} must be smaller than chunk_size ({options.chunk_size})"
        )
    return options


def _parse_callback_url(field: str, raw: str) -> str:
    """The URL's form only (http or https, a host, no userinfo, not too long): where its host
    leads is checked at StartEdit and before every delivery (webhooks.py), never when a job is
    claimed (a DNS blip then must not fail the job)."""
    try:
        parse_callback_url(raw)
    except CallbackRefused as err:
        raise InvalidArgument(field, str(err)) from None
    return raw


def _parse_number(field: str, raw: str, kind: type, low: float, high: float) -> int | float:
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidArgument(field, f"{raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    _check_range(field, value, low, high, integer=kind is int)
    return value


def parse_instances(field: str, raw: str, blank: bool = False) -> int | None:
    """ "all" -> None, "largest" -> 1, "N" -> N (the N largest); InvalidArgument naming `field`
    otherwise. `blank`: "" is "all" too (an unset proto string)."""
    if raw == "all" or (blank and raw == ""):
        return None
    if raw == "largest":
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_INSTANCES:
        raise InvalidArgument(field, f"{raw[:140]!r} must be 'all', 'largest' or a count 1-{MAX_INSTANCES}")
    return int(raw)


def _parse_objects(raw: str) -> tuple[int, ...]:
    """ "1,3" -> (1, 3): ids from a job's objects.json, 1 to MAX_OBJECTS of them."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise InvalidArgument("extra[objects]", f"{raw[:140]!r} must be object ids from the objects list, e.g. '1,3'")
    ids = tuple(sorted({int(p) for p in parts}))
    if len(ids) > MAX_OBJECTS:
        raise InvalidArgument("extra[objects]", f"names {len(ids)} objects; at most {MAX_OBJECTS}")
    return ids


def _new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def _check_text(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(name, "is required and must not be blank")
    if len(value) > contract.MAX_PROMPT_CHARS:
        raise InvalidArgument(name, f"is {len(value)} characters long; at most {contract.MAX_PROMPT_CHARS}")


def _bounds(accepted: contract.Range) -> tuple[float, float]:
    return accepted.low, accepted.high


def _check_range(name: str, value: float, low: float, high: float, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(name, f"{value!r} is not a number")
    if not math.isfinite(value) or not low <= value <= high:  # first: int() of NaN/inf would raise
        raise InvalidArgument(name, f"{value!r} is out of range [{low}, {high}]")
    if integer and int(value) != value:
        raise InvalidArgument(name, f"{value!r} must be a whole number")


def _resolve_input(path: Path | str, paths: TenantPaths) -> tuple[Path, VideoProbe]:
    if not str(path).strip():
        raise InvalidArgument("input_video_path", "is required")
    # resolve() follows symlinks and removes "..", so the root check sees the real file.
    resolved = Path(path).expanduser().resolve()
    if not any(is_within(resolved, root) for root in paths.input_roots):
        roots = ", ".join(str(r) for r in paths.input_roots)
        raise PermissionDenied(
            f"input_video_path {str(path)!r} is outside the allowed input roots ({roots}); "
            "upload the file (UploadVideo), or have the server's VIDEOEDIT_INPUT_ROOTS (a tenant's: "
            "videoedit-admin tenant set --input-root) include its folder"
        )
    if not resolved.exists():
        raise NotFound(f"input_video_path {str(path)!r} does not exist on the server")
    if not resolved.is_file():
        raise InvalidArgument("input_video_path", f"{str(path)!r} is not a file")
    try:
        return resolved, probe_video(resolved)
    except NotAVideo as err:
        raise InvalidArgument("input_video_path", f"{str(path)!r} is not a video: {err}") from None


def _resolve_output_dir(output_dir: Path | str | None, job_id: str, paths: TenantPaths, settings: Settings) -> Path:
    root = paths.output_root
    if output_dir is None or not str(output_dir).strip():
        resolved = paths.jobs_dir / job_id
    else:
        resolved = Path(output_dir).expanduser().resolve()
        if not is_within(resolved, root) or resolved == root:
            raise PermissionDenied(
                f"output_dir {str(output_dir)!r} must be a directory inside the output root {root} "
                "(UR_EDIT_OUTPUT_DIR on the server)"
            )
    if resolved == settings.output_root / TENANTS_DIR:  # every tenant's folder lies in it
        raise PermissionDenied(
            f"output_dir {str(resolved)!r} holds the tenants' folders; pick another job_id or output_dir"
        )
    if is_within(resolved, settings.mask_cache_dir):  # a job's files there could pass for cached masks
        raise PermissionDenied(f"output_dir {str(resolved)!r} is in the mask cache; pick another job_id or output_dir")
    return resolved
