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


def test_segment_and_track_reach_the_detector_with_the_class_token(model_cache):
    """Sam3VideoModel's own detection step (the tracking and the single-frame path) goes through the
    patched forward: a change in how transformers calls its detector would show here, not silently
    drop the token."""
    import numpy as np

    segmenter = Sam3Segmenter.from_pretrained(model_cache / "tiny" / "tiny-sam3")
    calls = []
    encoder = segmenter.model.detector_model.geometry_encoder
    hook = encoder.register_forward_hook(lambda module, args, kwargs, out: calls.append(kwargs), with_kwargs=True)
    frames = [np.random.default_rng(i).integers(0, 255, (64, 80, 3), dtype=np.uint8) for i in range(3)]
    try:
        segmenter.segment(frames[:1], ["car"])  # one frame: the single-frame path
        assert len(calls) == 1 and calls[0]["box_embeddings"].shape[1] == 0  # no boxes, the class token only
        session = segmenter.open_session(["car"])
        segmenter.track(session, frames[1:], vision_batch_size=2)
        assert len(calls) == 3
    finally:
        hook.remove()


def test_confident_tracks_are_reseeded_from_the_detector_as_metas_video_model_does(model_cache):
    from modelserver.cli import parse_args
    from modelserver.loading import sam3_settings

    settings = sam3_settings(parse_args(["--tiny"]))
    assert settings["recondition_on_trk_masks"] is False  # Meta's _recondition_masklets: the detector's mask
    assert sam3_settings(parse_args(["--tiny", "--sam3-recondition", "tracks"]))["recondition_on_trk_masks"]
    segmenter = Sam3Segmenter.from_pretrained(model_cache / "tiny" / "tiny-sam3", **settings)
    assert segmenter.model.recondition_on_trk_masks is False
    assert segmenter.settings["recondition_on_trk_masks"] == "False"
