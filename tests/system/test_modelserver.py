"""ModelService over real gRPC: info, bad input, and weights that cannot load."""

from __future__ import annotations

import subprocess
import sys

import cv2
import grpc
import numpy as np
import pytest

from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc
from videoedit.v1 import wire


@pytest.fixture(scope="module")
def models(stack):
    with grpc.insecure_channel(stack.modelserver_address) as channel:
        yield pb_grpc.ModelServiceStub(channel)


def image(height=64, width=64, seed=0):
    return wire.encode_image(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_info_says_the_models_are_tiny(models):
    info = models.GetInfo(pb.GetInfoRequest())
    assert info.segmenter.tiny and info.editor.tiny
    assert info.segmenter.architecture == "Sam3VideoModel"
    assert info.editor.architecture == "StableDiffusionInstructPix2PixPipeline"
    assert info.device == "cpu" and info.dtype == "float32" and info.segment_image_size > 0
    assert info.segmenter.settings["dtype"] == info.editor.settings["dtype"] == "float32"
    assert info.segmenter.random_weights and info.editor.random_weights and info.segmenter.revision == ""
    assert info.edit_max_batch_size == 8 and info.segment_frame_batch == 8 and info.warmup_seconds > 0


def test_segment_returns_one_entry_per_frame_with_masks_at_frame_size(models):
    frames = [image(84, 112, seed=i) for i in range(3)]
    response = models.Segment(pb.SegmentRequest(frames=frames, prompts=["car"]))
    assert [f.frame_index for f in response.frames] == [0, 1, 2]
    for frame in response.frames:
        for inst in frame.instances:
            assert wire.decode_mask(inst.mask).shape == (84, 112) and 0 <= inst.score <= 1


def test_edit_is_deterministic_per_seed(models):
    request = pb.EditRequest(
        images=[image(), image(seed=1)],
        instruction="make it red",
        image_guidance_scale=1.5,
        guidance_scale=7.5,
        num_inference_steps=2,
        seeds=[3, 4],
    )
    first, second = models.Edit(request), models.Edit(request)
    assert [i.data for i in first.images] == [i.data for i in second.images]
    assert wire.decode_image(first.images[0]).shape == (64, 64, 3)


def gray_image():
    return pb.Image(data=cv2.imencode(".png", np.zeros((16, 16), np.uint8))[1].tobytes())


@pytest.mark.parametrize(
    "rpc, message, words",
    [
        ("Segment", pb.SegmentRequest(frames=[], prompts=["car"]), "frames"),
        ("Segment", pb.SegmentRequest(frames=[image()], prompts=[]), "prompts"),
        ("Segment", pb.SegmentRequest(frames=[image()], prompts=[" "]), "prompts[0]"),
        ("Segment", pb.SegmentRequest(frames=[pb.Image(data=b"junk")], prompts=["car"]), "frames[0]"),
        ("Segment", pb.SegmentRequest(frames=[image(), image(32, 32)], prompts=["car"]), "same size"),
        (
            "Edit",
            pb.EditRequest(images=[image(), image(32, 32)], instruction="x", num_inference_steps=2, seeds=[1, 2]),
            "same size",
        ),
        (
            "Edit",
            pb.EditRequest(images=[image(60, 60)], instruction="x", num_inference_steps=2, seeds=[1]),
            "multiple of",
        ),
        (
            "Edit",
            pb.EditRequest(images=[image()], instruction="x", num_inference_steps=0, seeds=[1]),
            "num_inference_steps",
        ),
        (
            "Edit",
            pb.EditRequest(images=[image()], instruction="x", num_inference_steps=2, guidance_scale=-1, seeds=[1]),
            "guidance_scale",
        ),
        ("Edit", pb.EditRequest(images=[image()], instruction="x", num_inference_steps=2, seeds=[]), "seeds"),
        ("Edit", pb.EditRequest(images=[image()], instruction="", num_inference_steps=2, seeds=[1]), "instruction"),
        (
            "Edit",
            pb.EditRequest(images=[image()], instruction="x", num_inference_steps=10_000, seeds=[1]),
            "num_inference_steps",
        ),
        (
            "Edit",
            pb.EditRequest(
                images=[image()], instruction="x", num_inference_steps=2, image_guidance_scale=float("nan"), seeds=[1]
            ),
            "image_guidance_scale",
        ),
        (
            "Edit",
            pb.EditRequest(images=[image(4096, 8)], instruction="x", num_inference_steps=2, seeds=[1]),
            "larger than 2048",
        ),
        (
            "Edit",
            pb.EditRequest(
                images=[image()],
                instruction="x",
                num_inference_steps=2,
                guidance_scale=7.5,
                image_guidance_scale=0.5,
                seeds=[1],
            ),
            "drops all guidance",
        ),
        (
            "Edit",
            pb.EditRequest(
                images=[image()],
                instruction="x",
                num_inference_steps=2,
                guidance_scale=7.5,
                image_guidance_scale=1.5,
                seeds=[1],
                scheduler="ddim",
            ),
            "scheduler",
        ),
        (
            "Edit",
            pb.EditRequest(
                images=[image()],
                instruction="x",
                num_inference_steps=2,
                guidance_scale=7.5,
                image_guidance_scale=1.5,
                seeds=[1],
                anchor=image(32, 32),
            ),
            "anchor: 32x32 differs",
        ),
        (
            "Edit",
            pb.EditRequest(
                images=[image()],
                instruction="x",
                num_inference_steps=2,
                guidance_scale=7.5,
                image_guidance_scale=1.5,
                seeds=[1],
                anchor=pb.Image(data=b"junk"),
            ),
            "anchor[0]",
        ),
        ("Segment", pb.SegmentRequest(frames=[gray_image()], prompts=["car"]), "3-channel"),
        ("Segment", pb.SegmentRequest(frames=[image()] * 65, prompts=["car"]), "at most 64"),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(models, rpc, message, words):
    with pytest.raises(grpc.RpcError) as err:
        getattr(models, rpc)(message)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in err.value.details()
    assert models.GetInfo(pb.GetInfoRequest()).device  # still serving


def test_an_anchored_edit_returns_only_the_images(models):
    reply = models.Edit(
        pb.EditRequest(
            images=[image(), image(seed=1)],
            instruction="make it red",
            num_inference_steps=2,
            image_guidance_scale=1.5,
            guidance_scale=7.5,
            seeds=[1, 2],
            anchor=image(seed=2),
        )
    )
    assert len(reply.images) == 2


def test_a_long_segment_prompt_is_cut_to_the_text_window_and_said_so(models):
    info = models.GetInfo(pb.GetInfoRequest())
    prompt = " ".join(["red bicycle with a basket"] * 8)  # 40 words, far over 32 tokens
    reply = models.Segment(pb.SegmentRequest(frames=[image(), image(seed=1)], prompts=[prompt]))
    assert info.max_prompt_tokens == 32 and len(reply.frames) == 2
    [used] = reply.prompts_used
    assert prompt.startswith(used) and 0 < len(used.split()) < 40
    assert models.Segment(pb.SegmentRequest(frames=[image()], prompts=["car"])).prompts_used == ["car"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--sam3", "/nonexistent/sam3"], "no such file"),
        (["--pix2pix", "{tmp}"], "model_index.json is missing"),
        (["--sam3", "{tmp}/sam3.pt"], "cannot convert it"),
    ],
)
def test_unusable_weights_stop_the_server_with_a_clear_message(tmp_path, args, words):
    (tmp_path / "sam3.pt").write_bytes(b"not really a checkpoint")
    args = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "modelserver", "--port", "0", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert words in result.stderr
