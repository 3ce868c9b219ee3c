"""Slow, opt-in (`make test-sam3-reference`): the converted sam3.pt computes what Meta's code does.

Meta's `sam3` package (unpacked with --no-deps beside the venv, never installed into it; the dirs
in SAM3_REFERENCE_PATH) builds its video model with noise on every weight; the model server
converts the saved `sam3.pt` through its real path (weights.resolve_sources) and loads it as it
serves it (Sam3Segmenter). Both then run on the same prompt and frame on the CPU (about 4 min):
the text encoder, the ViT and necks, the detector, and the tracker's modules one by one.
Meta's CUDA-only lines are worked around here, not in the product: tensors it creates on "cuda"
go on the CPU (make_sam3_meta_layout) and pin_memory is a no-op.
"""

from __future__ import annotations

import os
import sys
from unittest import mock

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = [pytest.mark.slow, pytest.mark.sam3_reference]
if not os.environ.get("SAM3_REFERENCE_PATH"):
    pytest.skip("SAM3_REFERENCE_PATH (Meta's sam3 package and its deps) is not set", allow_module_level=True)

from modelserver.backends.sam3 import Sam3Segmenter  # noqa: E402
from modelserver.backends.tiny import build_clip_tokenizer  # noqa: E402
from modelserver.weights import resolve_sources  # noqa: E402
from tests.unit.modelserver.make_sam3_meta_layout import build_meta_video_model  # noqa: E402

PROMPT = "a red car"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(Meta's model, the model server's model converted from Meta's saved weights)."""
    sys.path[:0] = os.environ["SAM3_REFERENCE_PATH"].split(os.pathsep)
    meta = build_meta_video_model().eval()
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in meta.named_parameters():
            is_norm_scale = name.endswith("weight") and any(n in name for n in ("norm", "ln_"))
            weight.copy_(torch.randn(weight.shape, generator=noise) * 0.02 + (1.0 if is_norm_scale else 0.0))
    checkpoint = tmp_path_factory.mktemp("meta") / "sam3.pt"
    torch.save({"model": meta.state_dict()}, checkpoint)
    sam3, _ = resolve_sources(sam3=str(checkpoint), cache_dir=tmp_path_factory.mktemp("cache"))
    return meta, Sam3Segmenter.from_pretrained(sam3.path_or_id).model


def assert_agree(meta_out: torch.Tensor, ours: torch.Tensor) -> None:
    """Equal up to float32 rounding over 32 ViT layers: 1e-4 of the output's magnitude."""
    torch.testing.assert_close(ours, meta_out, rtol=0, atol=1e-4 * float(meta_out.abs().max()))


@torch.no_grad()
def test_the_text_encoder_agrees(models):
    meta, ours = models
    padding, meta_text, _ = meta.detector.backbone.language_backbone([PROMPT], device="cpu")
    tokens = build_clip_tokenizer()([PROMPT], padding="max_length", max_length=32, return_tensors="pt")
    text = ours.detector_model.get_text_features(
        input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, return_dict=True
    ).pooler_output
    valid = int(tokens.attention_mask.sum())
    assert int((~padding).sum()) == valid  # the same tokens (the padding differs, and is masked out)
    assert_agree(meta_text.transpose(0, 1)[:, :valid], text[:, :valid])


@pytest.fixture(scope="module")
def vision(models):
    """Both models' image features of one random 1008-pixel frame: (Meta's, ours)."""
    meta, ours = models
    pixels = torch.randn(1, 3, 1008, 1008, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return meta.detector.backbone.forward_image(pixels), ours.detector_model.get_vision_features(
            pixel_values=pixels
        )


@torch.no_grad()
def test_the_vision_backbone_and_both_necks_agree(models, vision):
    _, ours = models
    meta_out, vision = vision
    levels = meta_out["backbone_fpn"]
    assert len(levels) == 3
    for meta_level, level in zip(levels, vision.fpn_hidden_states, strict=False):
        assert_agree(meta_level, level)
    hidden = vision.last_hidden_state
    side = int(hidden.shape[1] ** 0.5)
    tracker_levels, _ = ours.tracker_neck(hidden.view(1, side, side, -1).permute(0, 3, 1, 2))
    for meta_level, level in zip(meta_out["sam2_backbone_out"]["backbone_fpn"], tracker_levels, strict=False):
        assert_agree(meta_level, level)


@torch.no_grad()
def test_the_detector_agrees_on_a_text_prompt(models, vision):
    """Scores, boxes and masks, the geometry encoder's class token included on both sides."""
    from types import SimpleNamespace

    meta, ours = models
    meta_vision, vision = vision
    detector = meta.detector
    backbone_out = {**meta_vision, **detector.backbone.forward_text([PROMPT], device="cpu")}
    find_input = SimpleNamespace(img_ids=torch.tensor([0]), text_ids=torch.tensor([0]))
    with mock.patch.object(torch.Tensor, "pin_memory", lambda tensor, *args, **kwargs: tensor):  # CUDA-only
        meta_out = detector.forward_grounding(backbone_out, find_input, None, detector._get_dummy_prompt())
    tokens = build_clip_tokenizer()([PROMPT], padding="max_length", max_length=32, return_tensors="pt")
    text = ours.detector_model.get_text_features(
        input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, return_dict=True
    )
    out = ours.detector_model(vision_embeds=vision, text_embeds=text, attention_mask=tokens.attention_mask)
    # Meta's scores are joint: sigmoid(class) x sigmoid(presence), as a logit.
    scores = out.pred_logits.sigmoid() * out.presence_logits.sigmoid()
    assert_agree(meta_out["pred_logits"].sigmoid().squeeze(-1), scores)
    assert_agree(meta_out["pred_boxes_xyxy"], out.pred_boxes)
    assert_agree(meta_out["pred_masks"], out.pred_masks)
    # transformers' own forward, which leaves the class token out for text alone, does not agree.
    plain = type(ours.detector_model).forward(
        ours.detector_model, vision_embeds=vision, text_embeds=text, attention_mask=tokens.attention_mask
    )
    with pytest.raises(AssertionError):
        assert_agree(meta_out["pred_masks"], plain.pred_masks)


# The tracker (SAM2-style) parts, each fed the same random inputs on both sides: a 72x72 image
# embedding (1008 / 14) with its two higher-resolution levels, as the tracker's neck makes them.
SIDE = 72


def _random(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_the_tracker_prompt_encoder_and_mask_decoder_agree_on_clicks(models):
    """Two positive clicks and a negative one: the three candidate masks, their IoU estimates, the
    chosen mask, the object pointer and the object score."""
    meta, ours = models
    image = _random(1, 256, SIDE, SIDE, seed=2)
    high_res = [_random(1, 32, SIDE * 4, SIDE * 4, seed=3), _random(1, 64, SIDE * 2, SIDE * 2, seed=4)]
    clicks = torch.tensor([[[300.0, 410.0], [520.0, 600.0], [800.0, 120.0]]])  # pixels of the 1008 input
    labels = torch.tensor([[1, 1, 0]], dtype=torch.int32)
    (meta_multi, _, meta_ious, meta_low, _, meta_pointer, meta_score) = meta.tracker._forward_sam_heads(
        image, {"point_coords": clicks, "point_labels": labels}, None, high_res, multimask_output=True
    )
    out = ours.tracker_model._single_frame_forward(
        input_points=clicks[:, None],
        input_labels=labels[:, None],
        image_embeddings=[*high_res, image],
        multimask_output=True,
    )
    assert_agree(meta_ious, out.iou_scores[:, 0])
    assert_agree(meta_score, out.object_score_logits[:, 0])
    assert_agree(meta_low, out.pred_masks)
    assert_agree(meta_pointer, out.object_pointer[:, 0])
    assert meta_multi.shape[1] == 3


@torch.no_grad()
def test_the_tracker_memory_encoder_agrees(models):
    """A frame's features and its predicted mask logits, as memory for the frames after it."""
    meta, ours = models
    features = _random(1, 256, SIDE, SIDE, seed=5)
    mask_for_memory = torch.sigmoid(_random(1, 1, SIDE * 16, SIDE * 16, seed=6)) * 20.0 - 10.0
    meta_out = meta.tracker.maskmem_backbone(features, mask_for_memory, skip_mask_sigmoid=True)
    memory, position = ours.tracker_model.memory_encoder(features, mask_for_memory)
    assert_agree(meta_out["vision_features"], memory)
    assert_agree(meta_out["vision_pos_enc"][0], position)


@torch.no_grad()
def test_the_tracker_memory_attention_agrees(models):
    """The current frame attending to two memory frames and eight object-pointer tokens (two
    pointers, each split into four 64-channel tokens), RoPE on all but the pointers."""
    meta, ours = models
    tokens = SIDE * SIDE
    current, current_position = _random(tokens, 1, 256, seed=7), _random(tokens, 1, 256, seed=8)
    memory, memory_position = _random(2 * tokens + 8, 1, 64, seed=9), _random(2 * tokens + 8, 1, 64, seed=10)
    meta_out = meta.tracker.transformer.encoder(
        src=[current],
        src_key_padding_mask=[None],
        src_pos=[current_position],
        prompt=memory,
        prompt_pos=memory_position,
        prompt_key_padding_mask=None,
        feat_sizes=[(SIDE, SIDE)],
        num_obj_ptr_tokens=8,
    )["memory"]
    out = ours.tracker_model.memory_attention(
        current_vision_features=current,
        memory=memory,
        current_vision_position_embeddings=current_position,
        memory_posision_embeddings=memory_position,
        num_object_pointer_tokens=8,
    )
    assert_agree(meta_out, out.squeeze(0).transpose(0, 1))  # transformers': (1, batch, tokens, channels)
