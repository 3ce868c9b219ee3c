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
from .tiny import CLIP_VOCAB_SIZE, build_clip_tokenizer, sam3_processor

log = logging.getLogger(__name__)


def full_size_sam3(device: str, dtype: torch.dtype, **config_overrides) -> Sam3Segmenter:
    from transformers import Sam3VideoConfig, Sam3VideoModel

    config = Sam3VideoConfig(**config_overrides)
    with torch.device(device):
        model = Sam3VideoModel(config).to(dtype).eval()
    log.warning("FULL-SIZE RANDOM-WEIGHT SAM3 (%.0fM parameters): timing only, outputs are meaningless",
                sum(p.numel() for p in model.parameters()) / 1e6)
    return Sam3Segmenter(model, sam3_processor(config.image_size, config.low_res_mask_size), device, dtype)


def full_size_instruct_pix2pix(device: str, dtype: torch.dtype) -> InstructPix2PixEditor:
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device(device):
        unet = UNet2DConditionModel(  # SD 1.5, with InstructPix2Pix's 8 input channels
            sample_size=64, in_channels=8, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(  # CLIP ViT-L/14's text tower
            vocab_size=CLIP_VOCAB_SIZE, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        ))
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=build_clip_tokenizer(), unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).to(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    log.warning("FULL-SIZE RANDOM-WEIGHT InstructPix2Pix (%.0fM parameters): timing only, outputs are meaningless",
                sum(p.numel() for m in (unet, vae, text_encoder) for p in m.parameters()) / 1e6)
    return InstructPix2PixEditor(pipe, device=device)
