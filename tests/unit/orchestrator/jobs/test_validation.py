"""Request validation: property-based fuzzing (whatever comes in is refused with one of our
errors or comes out normalised and safe), and the limits shared with the model server."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.sample_clip import make_sample_clip
from orchestrator.config import Settings
from orchestrator.errors import InvalidArgument, VideoEditError
from orchestrator.jobs.validation import JOB_ID_PATTERN, check_request
from orchestrator.request import Keyframes, Mode, ObjectEdit, SeedMode, VideoEditRequest, VisualPrompt
from videoedit.v1 import contract


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("fuzz")
    make_sample_clip(root / "in" / "clip.mp4", frames=2, width=32, height=32, audio=False)
    return Settings(input_roots=(root / "in",), output_root=root / "out")


numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True))
texts = st.text(max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    job_id=texts,
    path=st.one_of(texts, st.just("clip.mp4"), st.just("../in/clip.mp4")),
    mask=texts,
    edit=texts,
    mode=st.one_of(texts, st.sampled_from(["video", "single_frame"])),
    guidance=numbers,
    steps=numbers,
    erode=numbers,
    window=numbers,
    alpha=numbers,
    seed=numbers,
    max_frames=st.one_of(st.none(), numbers),
    extra=st.dictionaries(
        st.one_of(texts, st.sampled_from(["edit_size", "chunk_size", "instances"])), texts, max_size=3
    ),
    output_dir=st.one_of(st.none(), texts),
)
def test_validation_fuzz(
    fuzz_settings,
    job_id,
    path,
    mask,
    edit,
    mode,
    guidance,
    steps,
    erode,
    window,
    alpha,
    seed,
    max_frames,
    extra,
    output_dir,
):
    root = fuzz_settings.input_roots[0]
    request = VideoEditRequest(
        job_id=job_id,
        input_video_path=root / path,
        mask_prompt=mask,
        edit_prompt=edit,
        mode=mode,
        guidance_scale=guidance,
        num_inference_steps=steps,
        erode_kernel=erode,
        smoothing_window=window,
        smoothing_alpha=alpha,
        seed=seed,
        max_frames=max_frames,
        extra=extra,
        output_dir=Path(output_dir) if output_dir else None,
    )
    try:
        checked = check_request(request, fuzz_settings)
    except VideoEditError:
        return  # refused with one of our errors (a gRPC code and a message): fine
    req = checked.request
    assert JOB_ID_PATTERN.fullmatch(req.job_id)
    assert fuzz_settings.output_root in req.output_dir.parents
    assert root in req.input_video_path.parents and req.input_video_path.is_file()
    assert math.isfinite(req.guidance_scale) and 1 <= req.num_inference_steps <= 500 and 0 <= req.smoothing_alpha <= 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_inference_steps", contract.NUM_INFERENCE_STEPS.high + 1),
        ("guidance_scale", contract.GUIDANCE_SCALE.high + 1),
        ("image_guidance_scale", contract.IMAGE_GUIDANCE_SCALE.high + 1),
        ("edit_prompt", "x" * (contract.MAX_PROMPT_CHARS + 1)),
    ],
)
def test_the_shared_limits_are_the_ones_enforced(fuzz_settings, field, value):
    root = fuzz_settings.input_roots[0]
    request = VideoEditRequest(input_video_path=root / "clip.mp4", mask_prompt="car", edit_prompt="red")
    setattr(request, field, value)
    with pytest.raises(InvalidArgument, match=field):
        check_request(request, fuzz_settings)


@pytest.mark.parametrize(
    "guidance, image_guidance, accepted",
    [
        (7.5, 1.5, True),
        (7.5, 1.0, True),
        (1.0, 1.0, True),
        (0.0, 1.0, True),
        (7.5, 0.5, False),  # diffusers would drop the text guidance too
        (1.0, 1.5, False),  # no guidance at guidance_scale <= 1: image_guidance_scale would be ignored
    ],
)
def test_guidance_scales_diffusers_would_ignore_are_refused(fuzz_settings, guidance, image_guidance, accepted):
    request = VideoEditRequest(
        input_video_path=fuzz_settings.input_roots[0] / "clip.mp4",
        mask_prompt="car",
        edit_prompt="red",
        guidance_scale=guidance,
        image_guidance_scale=image_guidance,
    )
    if accepted:
        check_request(request, fuzz_settings)
    else:
        with pytest.raises(InvalidArgument, match="image_guidance_scale: .*drops all guidance"):
            check_request(request, fuzz_settings)


def test_modes_and_choices_become_enum_members_that_read_and_serialise_as_their_words(fuzz_settings):
    request = VideoEditRequest(
        input_video_path=fuzz_settings.input_roots[0] / "clip.mp4",
        mask_prompt="car",
        edit_prompt="red",
        mode="single_frame",
        extra={"seed_mode": "per_frame", "keyframes": "adaptive", "scheduler": "unipc"},
    )
    checked = check_request(request, fuzz_settings)
    req, options = checked.request, checked.options
    assert req.mode is Mode.SINGLE_FRAME and options.seed_mode is SeedMode.PER_FRAME
    assert options.keyframes is Keyframes.ADAPTIVE and options.scheduler == "unipc"
    assert req.mode == "single_frame" and f"{options.seed_mode}" == "per_frame"  # as the plain strings were
    assert json.loads(json.dumps(req.to_dict()))["mode"] == "single_frame"
    assert "seed_mode='per_frame'" in repr(options)  # the job log's options line


def _objects_request(root: Path, objects: list[ObjectEdit], **fields) -> VideoEditRequest:
    values = dict(input_video_path=root / "clip.mp4", mask_prompt="", edit_prompt="", objects=objects)
    return VideoEditRequest(**(values | fields))


TWO = [ObjectEdit("car", "make it blue"), ObjectEdit("sky", "make it pink", 2)]


def test_several_objects_are_accepted_and_become_the_jobs_targets(fuzz_settings):
    checked = check_request(_objects_request(fuzz_settings.input_roots[0], TWO), fuzz_settings)
    assert checked.targets == tuple(TWO)
    one = check_request(
        VideoEditRequest(
            input_video_path=fuzz_settings.input_roots[0] / "clip.mp4",
            mask_prompt="car",
            edit_prompt="red",
            extra={"instances": "largest"},
        ),
        fuzz_settings,
    )
    assert one.targets == (ObjectEdit("car", "red", 1),)  # the one-object form is one target
    masks = check_request(
        _objects_request(fuzz_settings.input_roots[0], [ObjectEdit("car"), ObjectEdit("sky")], mode="masks"),
        fuzz_settings,
    )
    assert [t.edit_prompt for t in masks.targets] == ["", ""]  # a masks job edits nothing


@pytest.mark.parametrize(
    "objects, fields, field, says",
    [
        ([ObjectEdit(f"thing {i}", "red") for i in range(17)], {}, "objects", "at most 16"),
        (TWO, {"mask_prompt": "car"}, "mask_prompt", r"objects\[i\].mask_prompt"),
        (TWO, {"edit_prompt": "red"}, "edit_prompt", r"objects\[i\].edit_prompt"),
        (TWO, {"extra": {"instances": "2"}}, r"extra\[instances\]", r"objects\[i\].instances"),
        (TWO, {"mode": "single_frame"}, "objects", "single_frame"),
        (TWO, {"extra": {"masks_from": "job1"}}, "objects", "masks_from"),
        (TWO, {"extra": {"keyframe_interval": "4"}}, "objects", "keyframes"),
        (TWO, {"extra": {"keyframes": "adaptive"}}, "objects", "keyframes"),
        ([ObjectEdit("car", "red"), ObjectEdit(" ", "blue")], {}, r"objects\[1\].mask_prompt", "required"),
        ([ObjectEdit("car", "red"), ObjectEdit("sky", "")], {}, r"objects\[1\].edit_prompt", "required"),
        ([ObjectEdit("car", "red"), ObjectEdit("Car ", "blue")], {}, r"objects\[1\].mask_prompt", r"objects\[0\]"),
        ([ObjectEdit("car", "red", 0)], {}, r"objects\[0\].instances", "out of range"),
        ([ObjectEdit("car", "red" * 1000)], {}, r"objects\[0\].edit_prompt", "characters long"),
        ([ObjectEdit("car\0", "red")], {}, r"objects\[0\].mask_prompt", "NUL"),
    ],
)
def test_bad_objects_are_refused_naming_the_field(fuzz_settings, objects, fields, field, says):
    with pytest.raises(InvalidArgument, match=f"^{field}: .*{says}"):
        check_request(_objects_request(fuzz_settings.input_roots[0], objects, **fields), fuzz_settings)


def test_objects_round_trip_through_the_job_stores_json():
    request = _objects_request(Path("/in"), TWO)
    assert VideoEditRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


@pytest.mark.parametrize(
    "fields, error",
    [
        (dict(mode="masks", edit_prompt=""), None),  # a masks job edits nothing
        (dict(mode="video", edit_prompt=""), "edit_prompt"),
        (dict(mask_prompt="", extra={"masks_from": "found"}), None),  # the reused masks' prompt
        (dict(mode="masks", extra={"masks_from": "found"}), "extra[masks_from]"),
        (dict(mode="single_frame", extra={"masks_from": "found"}), "extra[masks_from]"),
        (dict(extra={"masks_from": "../x"}), "extra[masks_from]"),
        (dict(extra={"objects": "1"}), "extra[objects]"),
        (dict(extra={"masks_from": "found", "objects": "0"}), "extra[objects]"),
        (dict(extra={"masks_from": "found", "objects": " , "}), "extra[objects]"),
        (dict(extra={"masks_from": "found", "objects": ",".join(map(str, range(1, 18)))}), "extra[objects]"),
        (dict(job_id=".mask-cache"), "mask cache"),
        (dict(job_id="tenants"), "holds the tenants' folders"),
    ],
)
def test_masks_mode_and_reuse_options_are_checked_naming_the_field(fuzz_settings, fields, error):
    values = dict(input_video_path=fuzz_settings.input_roots[0] / "clip.mp4", mask_prompt="car", edit_prompt="red")
    request = VideoEditRequest(**{**values, **fields})
    if error is None:
        checked = check_request(request, fuzz_settings)
        assert checked.options.masks_from == fields.get("extra", {}).get("masks_from")
    else:
        with pytest.raises(VideoEditError, match=re.escape(error)):
            check_request(request, fuzz_settings)


ON = contract.PromptPoint(5, 5)
OFF = contract.PromptPoint(5, 5, positive=False)


@pytest.mark.parametrize(
    "fields, field, says",
    [
        (dict(visual_prompts=[VisualPrompt(0, (ON,))] * 65), "visual_prompts", "at most 64"),
        (dict(visual_prompts=[VisualPrompt(-1, (ON,))]), r"visual_prompts\[0\].frame_index", "out of range"),
        (dict(visual_prompts=[VisualPrompt(0)]), r"visual_prompts\[0\]", "neither points nor a box"),
        (dict(visual_prompts=[VisualPrompt(0, box=(4, 4, 4, 9))]), r"visual_prompts\[0\].box", "empty"),
        (dict(visual_prompts=[VisualPrompt(0, box=(0, 0, math.inf, 9))]), r"visual_prompts\[0\].box.x1", "range"),
        (
            dict(visual_prompts=[VisualPrompt(0, (contract.PromptPoint(-3, 1),))]),
            r"visual_prompts\[0\]\.points\[0\]\.x",
            "range",
        ),
        (dict(visual_prompts=[VisualPrompt(0, (ON,), object=0)]), r"visual_prompts\[0\].object", "out of range"),
        (dict(mask_prompt="", visual_prompts=[VisualPrompt(0, (OFF,))]), "visual_prompts", "only negative points"),
        (dict(mode="single_frame", visual_prompts=[VisualPrompt(0, (ON,))]), "visual_prompts", "single_frame"),
        (
            dict(extra={"masks_from": "found"}, visual_prompts=[VisualPrompt(0, box=(1, 1, 5, 5))]),
            r"visual_prompts\[0\]",
            "masks_from",
        ),
        (dict(mask_prompt=""), "mask_prompt", "required"),
    ],
)
def test_bad_visual_prompts_are_refused_naming_the_field(fuzz_settings, fields, field, says):
    values = dict(input_video_path=fuzz_settings.input_roots[0] / "clip.mp4", mask_prompt="car", edit_prompt="red")
    with pytest.raises(InvalidArgument, match=f"^{field}: .*{says}"):
        check_request(VideoEditRequest(**(values | fields)), fuzz_settings)


def test_visual_prompts_are_kept_and_round_trip_through_the_job_stores_json(fuzz_settings):
    prompts = [VisualPrompt(3, (ON, OFF), (1.0, 2.0, 8.0, 9.5)), VisualPrompt(7, (ON,), object=2)]
    request = VideoEditRequest(
        input_video_path=fuzz_settings.input_roots[0] / "clip.mp4",
        mask_prompt="",
        edit_prompt="red",
        visual_prompts=prompts,
        objects=[],
    )
    checked = check_request(request, fuzz_settings)  # clicks alone may define the object
    assert checked.targets[0].visual_prompts == tuple(prompts)
    assert VideoEditRequest.from_dict(json.loads(json.dumps(checked.request.to_dict()))) == checked.request
    several = _objects_request(
        fuzz_settings.input_roots[0],
        [ObjectEdit("car", "red", None, (VisualPrompt(0, (ON,)),)), ObjectEdit("sky", "x")],
    )
    assert check_request(several, fuzz_settings).targets[0].visual_prompts == (VisualPrompt(0, (ON,)),)
