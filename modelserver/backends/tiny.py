"""Tiny random-weight SAM3 and InstructPix2Pix models, built from configs in code.

No weights can be downloaded here (nor on CI), yet tests and the default demo must run the real
loading path. So we build small models with the real classes, `save_pretrained` them once into a
cache dir and load them back through the same `from_pretrained` code used for real checkpoints.
They prove the plumbing, not the picture: their output is meaningless.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

logger = logging.getLogger(__name__)

# Fixed seed so every build of the tiny models has the same weights (reproducible test output).
TINY_SEED = 0
TINY_SAM3_IMAGE_SIZE = 112  # multiple of the patch size 14; keeps CPU runs at ~0.1 s/frame
CLIP_VOCAB_SIZE = 49408  # the real CLIP BPE: 256 bytes x2 + 48894 merges + 2 specials
_WARNING = "tiny random-weight %s model in %s: its output is MEANINGLESS (plumbing tests/demo only)"


@dataclass(frozen=True)
class TinyModelPaths:
    sam3: Path
    instruct_pix2pix: Path


def ensure_tiny_models(cache_dir: Path) -> TinyModelPaths:
    """Build the tiny models into `cache_dir` once; later calls return at once."""
    cache_dir = Path(cache_dir)
    paths = TinyModelPaths(sam3=cache_dir / "tiny-sam3", instruct_pix2pix=cache_dir / "tiny-instruct-pix2pix")
    build_once(paths.sam3, _build_tiny_sam3)
    build_once(paths.instruct_pix2pix, _build_tiny_instruct_pix2pix)
    logger.warning(_WARNING, "SAM3", paths.sam3)
    logger.warning(_WARNING, "InstructPix2Pix", paths.instruct_pix2pix)
    return paths


def build_once(target: Path, build: Callable[[Path], None]) -> None:
    # A finished model dir only ever appears through one atomic rename, so a dir that exists is
    # complete: interrupted builds leave only a temp dir, and concurrent builders race harmlessly
    # (the loser sees the target exist and discards its own copy).
    if target.is_dir():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it 0700; the cache may be shared with other users/containers
        build(tmp)
        try:
            os.rename(tmp, target)  # atomic; fails if another builder already renamed into place
        except OSError:
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """The real CLIP BPE tokenizer (49408 tokens), built offline from open_clip's vocab file.

    Both SAM3 (CLIP text encoder) and Stable Diffusion use this exact vocabulary, so tiny models
    tokenize prompts like the real ones do. We only read the data file shipped in the
    open_clip_torch wheel; importing open_clip would pull in torchvision/timm for nothing.
    """
    from transformers import CLIPTokenizer

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip_torch is required for its CLIP BPE vocab file (pip install open_clip_torch)")
    bpe_path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.decompress(bpe_path.read_bytes()).decode("utf-8").split("\n")
    # Same slicing as OpenAI's/open_clip's SimpleTokenizer: header line, then 48894 merges.
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == CLIP_VOCAB_SIZE, len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level mapping: printable bytes map to themselves, the rest to 256+n.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


# The tiny SAM3's sizes: hidden sizes must be multiples of 64 and > 64.
TINY_SAM3_HIDDEN, TINY_SAM3_PATCH = 128, 14


def _build_tiny_sam3(out_dir: Path) -> None:
    import torch
    from transformers import Sam3VideoConfig, Sam3VideoModel

    grid = TINY_SAM3_IMAGE_SIZE // TINY_SAM3_PATCH
    mask_side = 4 * grid  # the highest FPN level; 288 for the real 1008-pixel model
    config = Sam3VideoConfig(
        detector_config=_tiny_sam3_detector(),
        tracker_config=_tiny_sam3_tracker(),
        low_res_mask_size=mask_side,
        # Random weights score everything near 0.5; zero thresholds make the tiny model find
        # (and keep) objects so the whole detect -> track -> postprocess path is exercised.
        score_threshold_detection=0.0,
        new_det_thresh=0.0,
    )
    torch.manual_seed(TINY_SEED)
    model = Sam3VideoModel(config).eval()
    keep_tracks_alive(model)
    model.save_pretrained(out_dir)

    sam3_processor(TINY_SAM3_IMAGE_SIZE, mask_side).save_pretrained(out_dir)


def _tiny_sam3_vision():
    """The vision backbone's config: a fresh object per user, as configs are mutated by their parents."""
    from transformers import Sam3VisionConfig, Sam3ViTConfig

    size, hidden, patch = TINY_SAM3_IMAGE_SIZE, TINY_SAM3_HIDDEN, TINY_SAM3_PATCH
    grid = size // patch
    vit = Sam3ViTConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=size,
        patch_size=patch,
        pretrain_image_size=size,
        window_size=grid // 2,
        global_attn_indexes=[1],
    )
    return Sam3VisionConfig(
        backbone_config=vit,
        fpn_hidden_size=hidden,
        backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2],
    )


def _tiny_sam3_detector():
    from transformers import CLIPTextConfig, Sam3Config

    hidden = TINY_SAM3_HIDDEN
    small = dict(hidden_size=hidden, num_attention_heads=2, intermediate_size=2 * hidden)
    return Sam3Config(
        vision_config=_tiny_sam3_vision(),
        # The real CLIP vocab size so the real tokenizer's ids are valid; everything else minimal.
        text_config=CLIPTextConfig(
            vocab_size=CLIP_VOCAB_SIZE,
            hidden_size=64,
            intermediate_size=128,
            projection_dim=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            hidden_act="gelu",
        ),
        geometry_encoder_config=dict(num_layers=1, **small),
        detr_encoder_config=dict(num_layers=1, **small),
        detr_decoder_config=dict(num_layers=1, num_queries=16, **small),
        mask_decoder_config=dict(hidden_size=hidden, num_attention_heads=2),
    )


def _tiny_sam3_tracker():
    from transformers import Sam3TrackerVideoConfig

    hidden, grid = TINY_SAM3_HIDDEN, TINY_SAM3_IMAGE_SIZE // TINY_SAM3_PATCH
    return Sam3TrackerVideoConfig(
        vision_config=_tiny_sam3_vision(),
        prompt_encoder_config=dict(hidden_size=hidden),
        mask_decoder_config=dict(
            hidden_size=hidden, mlp_dim=2 * hidden, num_attention_heads=2, iou_head_hidden_dim=hidden
        ),
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=2 * hidden,
        memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,  # 64 is hard-wired upstream
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=2 * hidden,
        memory_fuser_num_layers=1,
        image_size=TINY_SAM3_IMAGE_SIZE,  # keyword only: __post_init__ pops it and otherwise resets to 1008
    )


def instruct_pix2pix_pipeline(vae, text_encoder, unet):
    """An InstructPix2Pix pipeline of these models, with the real CLIP tokenizer and the
    checkpoint's scheduler (Euler Ancestral, SD 1.5's betas)."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionInstructPix2PixPipeline

    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    return StableDiffusionInstructPix2PixPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_clip_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def keep_tracks_alive(model) -> None:
    """Random weights give object-score logits just below 0 and the tracker drops every object
    after frame 0; a large constant "object present" logit keeps tracks alive."""
    import torch

    head = model.tracker_model.mask_decoder.pred_obj_score_head.proj_out
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(10.0)


def sam3_processor(size: int, mask_side: int):
    """A Sam3VideoProcessor for `size`-pixel frames, with the real CLIP tokenizer."""
    from transformers import Sam2VideoVideoProcessor, Sam3ImageProcessor, Sam3VideoProcessor

    # SAM3 normalises with mean/std 0.5 (like the real checkpoint's processor config).
    norm = dict(image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return Sam3VideoProcessor(
        image_processor=Sam3ImageProcessor(
            size={"height": size, "width": size}, mask_size={"height": mask_side, "width": mask_side}, **norm
        ),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}, **norm),
        tokenizer=build_clip_tokenizer(),
        target_size=size,
    )


def _build_tiny_instruct_pix2pix(out_dir: Path) -> None:
    import torch
    from diffusers import (
        AutoencoderKL,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    text_dim = 64
    torch.manual_seed(TINY_SEED)
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=8,  # InstructPix2Pix: 4 noisy latent channels + 4 channels of the encoded input image
        out_channels=4,
        # Cross-attention only at the lowest resolution (16x16 for a 64x64 latent): attention over
        # the full 64x64 latent made one UNet call ~10x slower on a CPU.
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_dim,
        attention_head_dim=8,
        norm_num_groups=16,
    )
    # Four blocks -> VAE scale factor 8 as in real SD: a 512x512 crop is a 64x64 latent, so sizes,
    # rounding and the UNet's work match production while staying cheap on a CPU.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 32),  # few channels at full resolution: CPU time
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=512,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=CLIP_VOCAB_SIZE,
            hidden_size=text_dim,
            intermediate_size=2 * text_dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
        )
    )
    instruct_pix2pix_pipeline(vae, text_encoder, unet).save_pretrained(out_dir)
