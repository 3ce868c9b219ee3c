"""Full-size SAM3 and InstructPix2Pix with random weights, for timing on a GPU without weights.

The real architectures from their default configs (SAM3: the released 860M-parameter model at
1008 pixels; InstructPix2Pix: Stable Diffusion 1.5's UNet with 8 input channels, its VAE and
CLIP ViT-L/14 text encoder), initialised directly on the target device so no weights are saved
or loaded. Speed and memory match the real models; the pictures are meaningless.
"""

from __future__ import annotations

import logging

import torch

from .instruct_pix2pix import InstructPix2PixEditor
from .sam3 import Sam3Segmenter
from .tiny import CLIP_VOCAB_SIZE, instruct_pix2pix_pipeline, keep_tracks_alive, sam3_processor

log = logging.getLogger(__name__)

# Objects the random-weight SAM3 "detects" on every frame, so detection, tracking, hot-start
# vetting and the rest of a job do the work they do on a real video with a few objects.
INJECTED_OBJECTS = 3


def full_size_sam3(
    device: str, dtype: torch.dtype, objects: int = INJECTED_OBJECTS, **config_overrides
) -> Sam3Segmenter:
    from transformers import Sam3VideoConfig, Sam3VideoModel

    config = Sam3VideoConfig(**config_overrides)
    with torch.device(device):
        model = Sam3VideoModel(config).to(dtype).eval()
    inject_detections(model, objects)
    keep_tracks_alive(model)
    log.warning(
        "FULL-SIZE RANDOM-WEIGHT SAM3 (%.0fM parameters, %d injected detections per frame): timing only, "
        "outputs are meaningless",
        sum(p.numel() for p in model.parameters()) / 1e6,
        objects,
    )
    return Sam3Segmenter(model, sam3_processor(config.image_size, config.low_res_mask_size), device, dtype)


def inject_detections(model, objects: int) -> torch.utils.hooks.RemovableHandle:
    """Make a random-weight Sam3VideoModel's detector confident in its first `objects` queries
    (and in nothing else) on every frame. Random weights score every query near the threshold, so
    they find nothing, or hundreds of objects; with this the tracker carries a realistic few objects
    from frame to frame. Only the scores change: boxes and masks are the model's own."""

    def confident(_module, _inputs, output):
        logits = torch.full_like(output["pred_logits"], -10.0)
        logits[..., :objects] = 10.0
        output["pred_logits"] = logits
        output["presence_logits"] = torch.full_like(output["presence_logits"], 10.0)
        return output

    return model.detector_model.register_forward_hook(confident)


def full_size_instruct_pix2pix(device: str, dtype: torch.dtype) -> InstructPix2PixEditor:
    from diffusers import (
        AutoencoderKL,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device(device):
        unet = UNet2DConditionModel(  # SD 1.5, with InstructPix2Pix's 8 input channels
            sample_size=64,
            in_channels=8,
            out_channels=4,
            layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280),
            cross_attention_dim=768,
            attention_head_dim=8,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=2,
            sample_size=512,
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(  # CLIP ViT-L/14's text tower
                vocab_size=CLIP_VOCAB_SIZE,
                hidden_size=768,
                intermediate_size=3072,
                num_hidden_layers=12,
                num_attention_heads=12,
                max_position_embeddings=77,
                hidden_act="quick_gelu",
                projection_dim=768,
            )
        )
    pipe = instruct_pix2pix_pipeline(vae, text_encoder, unet).to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    log.warning(
        "FULL-SIZE RANDOM-WEIGHT InstructPix2Pix (%.0fM parameters): timing only, outputs are meaningless",
        sum(p.numel() for m in (unet, vae, text_encoder) for p in m.parameters()) / 1e6,
    )
    return InstructPix2PixEditor(pipe, device=device)
