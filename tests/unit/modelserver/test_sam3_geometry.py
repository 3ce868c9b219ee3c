"""The detector runs text prompts as Meta's does: with the geometry encoder's class token.

transformers' own geometry path is the reference: a box it masks out (label -10) adds nothing but
the class token, which is what Meta's detector appends to every text prompt without boxes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from modelserver.backends.sam3 import Sam3Segmenter  # noqa: E402


@pytest.fixture(scope="module")
def detector(model_cache):
    torch.set_num_threads(1)
    return Sam3Segmenter.from_pretrained(model_cache / "tiny" / "tiny-sam3").model.detector_model


def _inputs(detector, seed: int = 0):
    from modelserver.backends.tiny import build_clip_tokenizer

    tokens = build_clip_tokenizer()(["a red car"], padding="max_length", max_length=32, return_tensors="pt")
    pixels = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(seed))
    vision = detector.get_vision_features(pixel_values=pixels)
    text = detector.get_text_features(
        input_ids=tokens.input_ids, attention_mask=tokens.attention_mask, return_dict=True
    )
    return vision, text, tokens.attention_mask


@torch.no_grad()
def test_a_text_prompt_gets_the_class_token_transformers_adds_for_boxes(detector):
    vision, text, mask = _inputs(detector)
    ours = detector(vision_embeds=vision, text_embeds=text, attention_mask=mask)
    masked_box = detector(
        vision_embeds=vision,
        text_embeds=text,
        attention_mask=mask,
        input_boxes=torch.tensor([[[0.5, 0.5, 0.2, 0.2]]]),
        input_boxes_labels=torch.tensor([[-10]]),
    )
    for name in ("pred_logits", "pred_boxes", "pred_masks", "presence_logits"):
        torch.testing.assert_close(ours[name], masked_box[name], rtol=0, atol=1e-5)
    assert text.pooler_output.shape[1] == 32  # the per-prompt text cache is left text-only


@torch.no_grad()
def test_without_the_class_token_the_detector_computes_something_else(detector):
    vision, text, mask = _inputs(detector)
    ours = detector(vision_embeds=vision, text_embeds=text, attention_mask=mask)
    plain = type(detector).forward(detector, vision_embeds=vision, text_embeds=text, attention_mask=mask)
    assert (ours["pred_logits"] - plain["pred_logits"]).abs().max() > 1e-3
