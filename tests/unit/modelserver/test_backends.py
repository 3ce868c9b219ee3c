"""Model backends on tiny random-weight models: structure, determinism, offline behaviour.

The tiny models' pictures are meaningless; these tests check plumbing through the real
transformers/diffusers from_pretrained and inference paths.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")

from modelserver.backends import Instance  # noqa: E402
from modelserver.backends.instruct_pix2pix import InstructPix2PixEditor  # noqa: E402
from modelserver.backends.sam3 import Sam3Segmenter  # noqa: E402
from modelserver.backends.sam3_kernels import CvUtilsKernel  # noqa: E402
from modelserver.backends.tiny import TinyModelPaths, build_clip_tokenizer, ensure_tiny_models  # noqa: E402
from videoedit.v1.contract import EditParams  # noqa: E402

from . import moving_rectangle  # noqa: E402

ONE_STEP = EditParams(image_guidance_scale=1.5, guidance_scale=7.5, num_inference_steps=1)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # On a shared 2-core box, torch's OpenMP threads busy-wait at every op; when anything else
    # is using a core the tiny models run 10-20x slower with 2 threads than with 1 (measured).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_models(model_cache) -> TinyModelPaths:
    return ensure_tiny_models(model_cache / "tiny")


def _refuse_network(mp: pytest.MonkeyPatch) -> None:
    # Model servers run without network: loading from a local dir and inference (including the
    # SAM3 cv-utils kernel that transformers would fetch from the Hub) must never connect.
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def segmenter(tiny_models) -> Sam3Segmenter:
    with pytest.MonkeyPatch.context() as mp:
        _refuse_network(mp)
        return Sam3Segmenter.from_pretrained(tiny_models.sam3)


@pytest.fixture(scope="session")
def editor(tiny_models) -> InstructPix2PixEditor:
    with pytest.MonkeyPatch.context() as mp:
        _refuse_network(mp)
        return InstructPix2PixEditor.from_pretrained(tiny_models.instruct_pix2pix)


@pytest.fixture
def no_network(monkeypatch):
    _refuse_network(monkeypatch)


def test_ensure_tiny_models_is_a_noop_the_second_time(tiny_models):
    files = sorted(p for p in Path(tiny_models.sam3).parent.rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    start = time.monotonic()
    again = ensure_tiny_models(Path(tiny_models.sam3).parent)
    assert time.monotonic() - start < 1.0
    assert again == tiny_models
    assert {p: p.stat().st_mtime_ns for p in files} == before
    # Only the two finished model dirs: no temp dirs left behind by the build.
    assert sorted(p.name for p in Path(tiny_models.sam3).parent.iterdir()) == sorted(
        [tiny_models.sam3.name, tiny_models.instruct_pix2pix.name]
    )


def test_tokenizer_is_the_real_clip_bpe():
    tok = build_clip_tokenizer()
    assert len(tok) == 49408
    assert tok("a photo of a red car").input_ids == [49406, 320, 1125, 539, 320, 736, 1615, 49407]


def check_chunk(result: list[list[Instance]], frames: list[np.ndarray], prompt: str) -> None:
    assert isinstance(result, list) and len(result) == len(frames)
    h, w = frames[0].shape[:2]
    for instances in result:
        assert isinstance(instances, list)
        for inst in instances:
            assert isinstance(inst, Instance)
            assert inst.prompt == prompt and isinstance(inst.object_id, int)
            assert inst.mask.dtype == np.bool_ and inst.mask.shape == (h, w) and inst.mask.any()
            x0, y0, x1, y1 = inst.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            inside = np.zeros_like(inst.mask)
            inside[int(y0) : int(y1), int(x0) : int(x1)] = True
            assert not (inst.mask & ~inside).any()  # the box contains the mask


def test_segment_structure(segmenter, no_network):
    assert segmenter.image_size == 112
    frames = moving_rectangle(6)
    result = segmenter.segment(frames, ["car"])
    check_chunk(result, frames, "car")
    # Zero detection thresholds in the tiny model: something is found, so postprocessing ran.
    assert any(result)


def test_segment_returns_every_frame_of_short_and_long_chunks(segmenter, tiny_models):
    # One frame (much shorter than hotstart_delay) still gets its output ...
    one = moving_rectangle(1)
    check_chunk(segmenter.segment(one, ["car"]), one, "car")
    # ... and so does a chunk longer than the delay, where outputs leave the buffer one by one.
    short_delay = Sam3Segmenter.from_pretrained(tiny_models.sam3, hotstart_delay=3)
    assert short_delay.model.config.hotstart_unmatch_thresh <= 3
    frames = moving_rectangle(6)
    check_chunk(short_delay.segment(frames, ["car"]), frames, "car")
    assert segmenter.segment([], ["car"]) == []


def test_segment_rejects_bad_input(segmenter):
    with pytest.raises(ValueError):
        segmenter.segment([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)], ["car"])
    with pytest.raises(ValueError):
        segmenter.segment(moving_rectangle(1), [])


def test_sam3_uses_the_local_cv_utils_kernel(segmenter):
    from transformers.models.sam3_video import modeling_sam3_video

    assert isinstance(modeling_sam3_video.cv_utils_kernel, CvUtilsKernel)


def test_kernel_nms_is_greedy_on_the_iou_matrix():
    ious = torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.05], [0.0, 0.05, 1.0]])
    scores = torch.tensor([0.5, 0.9, 0.7])
    kept = CvUtilsKernel.generic_nms(ious, scores, 0.1, use_iou_matrix=True)
    assert kept.dtype == torch.int64 and kept.tolist() == [1, 2]  # 0 overlaps the better 1


def test_kernel_connected_components_counts_areas():
    mask = torch.zeros(2, 1, 5, 7, dtype=torch.uint8)
    mask[0, 0, 0:2, 0:2] = 1  # area 4
    mask[0, 0, 2, 2] = 1  # touches diagonally: same component with 8-connectivity -> area 5
    mask[0, 0, 4, 6] = 1  # isolated, area 1
    labels, counts = CvUtilsKernel.cc_2d(mask, get_counts=True)
    assert labels.shape == counts.shape == mask.shape and counts.dtype == torch.int32
    assert counts[0, 0, 0, 0] == 5 and counts[0, 0, 2, 2] == 5 and counts[0, 0, 4, 6] == 1
    assert counts[0, 0, 3, 3] == 0 and labels[0, 0, 3, 3] == 0  # background
    assert not counts[1].any()  # empty mask


def test_edit_shapes_and_per_seed_determinism(editor, no_network):
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    params = EditParams(image_guidance_scale=1.5, guidance_scale=7.5, num_inference_steps=2)
    batch = editor.edit(crops, "make it red", params, seeds=[1, 2])
    assert len(batch) == 2
    for out in batch:
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    for i, seed in enumerate([1, 2]):
        single = editor.edit([crops[i]], "make it red", params, seeds=[seed])[0]
        # Equal up to float rounding across batch sizes: a few pixels may differ by one level.
        diff = np.abs(batch[i].astype(int) - single.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    other_seed = editor.edit([crops[0]], "make it red", params, seeds=[3])[0]
    assert np.abs(other_seed.astype(int) - batch[0].astype(int)).mean() > 1.0


CROP = np.zeros((64, 64, 3), np.uint8)


@pytest.mark.parametrize(
    "images, instructions, params, seeds, anchors, words",
    [
        ([CROP] * 2, "x", ONE_STEP, [0], None, "seeds: 1 for 2 images"),
        ([CROP] * 2, ["x"] * 3, ONE_STEP, [0, 1], None, "instructions: 3 for 2 images"),
        ([CROP, CROP[:, :56]], "x", ONE_STEP, [0, 1], None, r"images\[1\]: uint8 of shape \(64, 56, 3\)"),
        ([CROP.astype(np.float32)], "x", ONE_STEP, [0], None, r"images\[0\]: float32"),
        ([CROP[:60]], "x", ONE_STEP, [0], None, "images: size 64x60 must be a multiple of 8"),
        ([CROP], "x", EditParams(1.5, 7.5, 1, "ddim"), [0], None, "scheduler: 'ddim' is not one of"),
        ([CROP], "x", EditParams(1.5, 7.5, 0), [0], None, r"num_inference_steps: 0 is out of range"),
        ([CROP] * 2, "x", ONE_STEP, [0, 1], [5, None], r"anchors: \[5, None\]; need one anchor index \(0..1\)"),
        ([CROP] * 2, "x", ONE_STEP, [0, 1], [1], r"anchors: \[1\]"),
    ],
)
def test_edit_checks_its_inputs_first_naming_the_argument_and_value(
    editor, images, instructions, params, seeds, anchors, words
):
    with pytest.raises(ValueError, match=words):
        editor.edit(images, instructions, params, seeds=seeds, anchors=anchors)


def test_edit_of_no_images_is_no_images(editor):
    assert editor.edit([], "x", ONE_STEP, seeds=[]) == []


def _summary(result: list[list[Instance]]) -> list[list[tuple]]:
    return [[(i.object_id, i.box, round(i.score, 5), int(i.mask.sum())) for i in frame] for frame in result]


def test_a_session_fed_in_chunks_tracks_like_one_whole_video_call(tiny_models):
    # hotstart_delay 0: with hold-back, a whole-video call hides later-removed objects on earlier
    # frames that a chunked session has already returned; everything else must be equal.
    seg = Sam3Segmenter.from_pretrained(tiny_models.sam3, hotstart_delay=0)
    frames = moving_rectangle(40)
    whole = seg.segment(frames, ["car"], vision_batch_size=4)
    session = seg.open_session(["car"], video_frames=len(frames))
    chunked = [
        found
        for start in range(0, 40, 8)
        for found in seg.track(session, frames[start : start + 8], vision_batch_size=4)
    ]
    assert any(whole) and _summary(chunked) == _summary(whole)
    assert all(np.array_equal(a.mask, b.mask) for fa, fb in zip(whole, chunked) for a, b in zip(fa, fb))
    assert session.frames_seen == 40


def test_a_session_holds_a_bounded_window_of_state(segmenter):
    session = segmenter.open_session(["car"])
    frames = moving_rectangle(48)
    for start in range(0, 48, 16):
        check_chunk(segmenter.track(session, frames[start : start + 16]), frames[start : start + 16], "car")
    state = session.state
    config = segmenter.model.tracker_model.config
    window = max(config.num_maskmem, config.max_object_pointers_in_encoder)
    assert dict.__len__(state.processed_frames) == 0  # no frame kept once tracked
    assert len(state.processed_frames) == 48  # but the video's length as SAM3 reads it
    assert state.output_dict_per_obj  # objects are being tracked ...
    for outputs in state.output_dict_per_obj.values():  # ... over a bounded window of frames
        assert all(f > 47 - window - 1 for f in outputs["non_cond_frame_outputs"])
        old_cond = [f for f in outputs["cond_frame_outputs"] if f < 47 - window]
        assert len(old_cond) <= config.max_cond_frame_num
    assert all(f > 47 - window - 1 for f in state.obj_id_to_tracker_score_frame_wise)
    assert all(len(v) <= segmenter.model.hotstart_unmatch_thresh for v in state.unmatched_frame_inds.values())


def test_a_session_refuses_frames_of_another_size(segmenter):
    session = segmenter.open_session(["car"])
    segmenter.track(session, moving_rectangle(2))
    with pytest.raises(ValueError, match="this tracking session's are 128x96"):
        segmenter.track(session, moving_rectangle(2, h=64))


LONG_PROMPT = (
    "the old red bicycle with a wicker basket full of flowers leaning against the brick wall next to the "
    "green door of the bakery on the corner of the street in the warm golden evening light of a late summer"
)


def test_a_prompt_longer_than_the_text_window_is_cut_to_whole_words_and_still_segments(segmenter):
    assert len(LONG_PROMPT.split()) == 40 and segmenter.max_prompt_tokens == 32
    fitted = segmenter.fit_prompt(LONG_PROMPT)
    assert LONG_PROMPT.startswith(fitted) and len(fitted.split()) < 40
    assert segmenter._tokens(fitted) <= 32 < segmenter._tokens(" ".join(LONG_PROMPT.split()[: len(fitted.split()) + 1]))
    assert segmenter.fit_prompt("car") == "car"
    assert segmenter._tokens(segmenter.fit_prompt("x" * 500)) <= 32  # one endless "word"
    frames = moving_rectangle(2)
    assert len(segmenter.segment(frames, [LONG_PROMPT])) == 2  # no ValueError from the text encoder


def test_a_vae_decode_that_overflows_is_redone_in_float32_and_never_returned(editor, caplog):
    """fp16 overflow in SD's VAE shows as NaN/inf pixels; the first decode is made to overflow."""
    overflows = {"left": 1}

    def overflow(module, inputs, output):
        if overflows["left"]:
            overflows["left"] -= 1
            return output * float("nan")
        return output

    crop = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    [clean] = editor.edit([crop], "x", ONE_STEP, seeds=[5])
    hook = editor.pipe.vae.decoder.register_forward_hook(overflow)
    try:
        with caplog.at_level(logging.WARNING):
            [retried] = editor.edit([crop], "x", ONE_STEP, seeds=[5])
        assert "decoding again in float32" in caplog.text
        assert np.abs(retried.astype(int) - clean.astype(int)).max() <= 1
        overflows["left"] = 2  # overflows in float32 too
        with pytest.raises(FloatingPointError, match="non-finite"):
            editor.edit([crop], "x", ONE_STEP, seeds=[5])
    finally:
        hook.remove()
    assert editor.pipe.vae.dtype == torch.float32


@pytest.mark.parametrize(
    "asked, device, gpu_default, expected",
    [
        ("auto", "cpu", "bfloat16", torch.float32),
        ("auto", "cpu", "float16", torch.float32),
        ("auto", "cuda", "float16", torch.float16),
        ("float32", "cuda", "float16", torch.float32),
        ("bfloat16", "cpu", "float16", torch.bfloat16),
    ],
)
def test_each_model_gets_its_own_dtype(asked, device, gpu_default, expected):
    from modelserver.loading import pick_dtype

    assert pick_dtype(asked, device, gpu_default) == expected


@pytest.mark.parametrize("scheduler", ["", "euler_ancestral", "dpmpp_2m", "unipc"])
def test_every_scheduler_edits_reproducibly_per_seed(editor, scheduler):
    crop = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    params = EditParams(image_guidance_scale=1.5, guidance_scale=7.5, num_inference_steps=3, scheduler=scheduler)
    first, second = editor.edit([crop], "x", params, seeds=[9]), editor.edit([crop], "x", params, seeds=[9])
    assert first[0].shape == (64, 64, 3) and np.array_equal(first[0], second[0])
    name = type(editor.pipe.scheduler).__name__
    assert (
        name
        == {
            "": "EulerAncestralDiscreteScheduler",
            "euler_ancestral": "EulerAncestralDiscreteScheduler",
            "dpmpp_2m": "DPMSolverMultistepScheduler",
            "unipc": "UniPCMultistepScheduler",
        }[scheduler]
    )
    if scheduler == "dpmpp_2m":
        assert editor.pipe.scheduler.config.algorithm_type == "dpmsolver++"
        assert editor.pipe.scheduler.config.solver_order == 2


def test_batches_pad_to_the_compiled_sizes_and_results_do_not_change(editor):
    from modelserver.backends.instruct_pix2pix import padded_size

    assert [padded_size(n, (1, 2, 4, 8)) for n in (1, 2, 3, 5, 8, 9)] == [1, 2, 4, 8, 8, 9]
    assert padded_size(3, ()) == 3
    crops = [np.random.default_rng(s).integers(0, 256, (64, 64, 3), dtype=np.uint8) for s in range(3)]
    plain = editor.edit(crops, "x", ONE_STEP, seeds=[1, 2, 3])
    editor._batch_sizes = (4,)  # as compile() leaves it, without the slow compile
    try:
        padded = editor.edit(crops, "x", ONE_STEP, seeds=[1, 2, 3])
    finally:
        editor._batch_sizes = ()
    assert len(padded) == 3
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 1 for a, b in zip(plain, padded))


@pytest.mark.slow
def test_compile_runs_the_tiny_unet_compiled(tiny_models):
    """torch.compile on the CPU (minutes on 2 cores: `make test-slow`)."""
    editor = InstructPix2PixEditor.from_pretrained(tiny_models.instruct_pix2pix)
    editor.compile((1,))
    crop = np.full((64, 64, 3), 100, np.uint8)
    [out] = editor.edit([crop], "x", ONE_STEP, seeds=[0])
    assert out.shape == (64, 64, 3) and editor.batch_sizes == (1,)
    assert type(editor.pipe.unet).__name__ == "OptimizedModule"
