"""Slow, opt-in (`make test-sam3-reference`): the converted sam3.pt computes what Meta's code does.

Meta's `sam3` package (unpacked with --no-deps beside the venv, never installed into it; the dirs
in SAM3_REFERENCE_PATH) builds its video model with noise on every weight; the model server
converts the saved `sam3.pt` through its real path (weights.resolve_sources) and loads it as it
serves it (Sam3Segmenter). Both then run on the same prompt and frame on the CPU (about 3 min).
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
