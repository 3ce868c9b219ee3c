"""Meta's `sam3.pt` (the original worker's SAM3_MODEL_PATH) -> a transformers Sam3VideoModel dir.

Meta's checkpoint holds the video model of its `sam3` package: 1,465 tensors under `detector.`
(the image detector: ViT, FPN necks, CLIP-style text encoder, geometry encoder, DETR encoder and
decoder, mask head) and `tracker.` (SAM2-style memory tracker), optionally inside {"model": ...}.
transformers' Sam3VideoModel holds the same weights under other names (1,797 tensors). Besides
the renames in RENAMES, five fixes are needed:

- the ViT's position table has a class-token row first (577 = 1 + 24 x 24) that transformers
  does not use: dropped;
- fused q/k/v projections (ViT `qkv`, nn.MultiheadAttention `in_proj_*`) are split in three;
- the text encoder's `text_projection` is a matrix applied as x @ P: a Linear weight is P.T;
- the tracker's four point embeddings (1 x 256 each) are one 4 x 256 embedding;
- the prompt encoder's random-Fourier matrix is also the tracker's `shared_image_embedding`.

What is left over is dropped and logged (LEFTOVERS): the ViT's 32 RoPE tables, which
transformers recomputes, and the detector geometry encoder's 6 point-prompt tensors, a path
transformers does not have (this server never prompts with points).

`ensure_converted` converts once into a cache dir named after the checkpoint's size and SHA-256,
so a changed checkpoint converts again and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from .tiny import build_once, sam3_processor

log = logging.getLogger(__name__)

CONVERTED_WEIGHTS = "model.safetensors"
_HASH_CHUNK = 16 << 20


class ConversionError(ValueError):
    """The file is not a checkpoint in Meta's SAM3 layout (the message says what is wrong)."""


def _layer(meta: str, hf: str, leaves: Mapping[str, str]) -> list[tuple[str, str]]:
    """Renames of one layer family: its renamed leaves first, then the rest under the new prefix."""
    return [(meta + m, hf + h) for m, h in leaves.items()] + [(meta, hf)]


_FFN = {"linear1.": "mlp.fc1.", "linear2.": "mlp.fc2."}
_NORMS3 = {"norm1.": "layer_norm1.", "norm2.": "layer_norm2.", "norm3.": "layer_norm3."}
# The detector's encoder layers (geometry and DETR encoders): self- and image cross-attention, FFN.
_ENCODER_LAYER = {
    "self_attn.out_proj.": "self_attn.o_proj.",
    "cross_attn_image.out_proj.": "cross_attn.o_proj.",
    "cross_attn_image.": "cross_attn.",
    **_FFN,
    **_NORMS3,
}
_VIT = "detector.backbone.vision_backbone."
_TEXT = "detector.backbone.language_backbone."
_HF_TEXT = "detector_model.text_encoder."
_GEO = "detector.geometry_encoder."
_DEC = "detector.transformer.decoder."
_HF_DEC = "detector_model.detr_decoder."
_SEG = "detector.segmentation_head."
_MEM = "tracker.maskmem_backbone."
_HF_MEM = "tracker_model.memory_encoder."
_PROMPT = "tracker.sam_prompt_encoder."
_MASK = "tracker.sam_mask_decoder."


def _mlp3(meta: str, hf: str) -> list[tuple[str, str]]:
    """Meta's 3-layer MLP (layers.0-2) -> transformers' SAM2-style one (proj_in, layers.0, proj_out)."""
    return [
        (meta + "layers.0.", hf + "proj_in."),
        (meta + "layers.1.", hf + "layers.0."),
        (meta + "layers.2.", hf + "proj_out."),
    ]


def _numbered(meta: str, hf: str, count: int) -> list[tuple[str, str]]:
    """Meta's MLP (layers.0..count-1) -> transformers' (layer1..layer<count>)."""
    return [(f"{meta}layers.{i}.", f"{hf}layer{i + 1}.") for i in range(count)]


def _fpn(meta: str, hf: str) -> list[tuple[str, str]]:
    leaves = {
        "dconv_2x2_0.": "scale_layers.0.",
        "dconv_2x2_1.": "scale_layers.2.",  # scale_layers.1 is the GELU between them
        "dconv_2x2.": "scale_layers.0.",
        "conv_1x1.": "proj1.",
        "conv_3x3.": "proj2.",
    }
    return _layer(meta + "{}.", hf + "{}.", leaves)


# (Meta prefix, transformers prefix), first match wins; "{}" is a layer number. A key is renamed
# by its longest listed prefix, so families list their specific leaves before their catch-all.
RENAMES: list[tuple[str, str]] = [
    (_VIT + "trunk.pos_embed", "detector_model.vision_encoder.backbone.embeddings.position_embeddings"),
    (
        _VIT + "trunk.patch_embed.proj.",
        "detector_model.vision_encoder.backbone.embeddings.patch_embeddings.projection.",
    ),
    (_VIT + "trunk.ln_pre.", "detector_model.vision_encoder.backbone.layer_norm."),
    *_layer(
        _VIT + "trunk.blocks.{}.",
        "detector_model.vision_encoder.backbone.layers.{}.",
        {
            "norm1.": "layer_norm1.",
            "norm2.": "layer_norm2.",
            "attn.proj.": "attention.o_proj.",
            "attn.qkv.": "attention.",
        },
    ),
    *_fpn(_VIT + "convs.", "detector_model.vision_encoder.neck.fpn_layers."),
    *_fpn(_VIT + "sam2_convs.", "tracker_neck.fpn_layers."),
    (_TEXT + "encoder.positional_embedding", _HF_TEXT + "text_model.embeddings.position_embedding.weight"),
    (_TEXT + "encoder.token_embedding.", _HF_TEXT + "text_model.embeddings.token_embedding."),
    (_TEXT + "encoder.text_projection", _HF_TEXT + "text_projection.weight"),
    (_TEXT + "encoder.ln_final.", _HF_TEXT + "text_model.final_layer_norm."),
    *_layer(
        _TEXT + "encoder.transformer.resblocks.{}.",
        _HF_TEXT + "text_model.encoder.layers.{}.",
        {
            "attn.in_proj_": "self_attn.in_proj_",
            "attn.out_proj.": "self_attn.out_proj.",
            "ln_1.": "layer_norm1.",
            "ln_2.": "layer_norm2.",
            "mlp.c_fc.": "mlp.fc1.",
            "mlp.c_proj.": "mlp.fc2.",
        },
    ),
    (_TEXT + "resizer.", "detector_model.text_projection."),
    (_GEO + "norm.", "detector_model.geometry_encoder.prompt_layer_norm."),
    (_GEO + "img_pre_norm.", "detector_model.geometry_encoder.vision_layer_norm."),
    (_GEO + "encode_norm.", "detector_model.geometry_encoder.output_layer_norm."),
    *_layer(
        _GEO + "encode.{}.",
        "detector_model.geometry_encoder.layers.{}.",
        _ENCODER_LAYER,
    ),
    (_GEO, "detector_model.geometry_encoder."),
    *_layer(
        "detector.transformer.encoder.layers.{}.",
        "detector_model.detr_encoder.layers.{}.",
        _ENCODER_LAYER,
    ),
    *_layer(
        _DEC + "layers.{}.",
        _HF_DEC + "layers.{}.",
        {
            "cross_attn.out_proj.": "vision_cross_attn.o_proj.",
            "cross_attn.": "vision_cross_attn.",
            "norm1.": "vision_cross_attn_layer_norm.",
            "ca_text.out_proj.": "text_cross_attn.o_proj.",
            "ca_text.": "text_cross_attn.",
            "catext_norm.": "text_cross_attn_layer_norm.",
            "self_attn.out_proj.": "self_attn.o_proj.",
            "norm2.": "self_attn_layer_norm.",
            "norm3.": "mlp_layer_norm.",
            **_FFN,
        },
    ),
    (_DEC + "norm.", _HF_DEC + "output_layer_norm."),
    (_DEC + "presence_token_out_norm.", _HF_DEC + "presence_layer_norm."),
    *_numbered(_DEC + "bbox_embed.", _HF_DEC + "box_head.", 3),
    *_numbered(_DEC + "presence_token_head.", _HF_DEC + "presence_head.", 3),
    *_numbered(_DEC + "ref_point_head.", _HF_DEC + "ref_point_head.", 2),
    *_numbered(_DEC + "boxRPB_embed_x.", _HF_DEC + "box_rpb_embed_x.", 2),
    *_numbered(_DEC + "boxRPB_embed_y.", _HF_DEC + "box_rpb_embed_y.", 2),
    (_DEC, _HF_DEC),
    (_SEG + "mask_predictor.mask_embed.", "detector_model.mask_decoder.mask_embedder."),
    (_SEG + "cross_attend_prompt.out_proj.", "detector_model.mask_decoder.prompt_cross_attn.o_proj."),
    (_SEG + "cross_attend_prompt.", "detector_model.mask_decoder.prompt_cross_attn."),
    (_SEG + "cross_attn_norm.", "detector_model.mask_decoder.prompt_cross_attn_norm."),
    (_SEG + "semantic_seg_head.", "detector_model.mask_decoder.semantic_projection."),
    (_SEG + "instance_seg_head.", "detector_model.mask_decoder.instance_projection."),
    (_SEG, "detector_model.mask_decoder."),
    *_numbered("detector.dot_prod_scoring.prompt_mlp.", "detector_model.dot_product_scoring.text_mlp.", 2),
    ("detector.dot_prod_scoring.prompt_mlp.out_norm.", "detector_model.dot_product_scoring.text_mlp_out_norm."),
    ("detector.dot_prod_scoring.prompt_proj.", "detector_model.dot_product_scoring.text_proj."),
    ("detector.dot_prod_scoring.hs_proj.", "detector_model.dot_product_scoring.query_proj."),
    ("tracker.maskmem_tpos_enc", "tracker_model.memory_temporal_positional_encoding"),
    ("tracker.no_mem_embed", "tracker_model.no_memory_embedding"),
    ("tracker.no_mem_pos_enc", "tracker_model.no_memory_positional_encoding"),
    ("tracker.no_obj_ptr", "tracker_model.no_object_pointer"),
    ("tracker.no_obj_embed_spatial", "tracker_model.occlusion_spatial_embedding_parameter"),
    ("tracker.mask_downsample.", "tracker_model.mask_downsample."),
    ("tracker.transformer.encoder.norm.", "tracker_model.memory_attention.layer_norm."),
    *_layer(
        "tracker.transformer.encoder.layers.{}.",
        "tracker_model.memory_attention.layers.{}.",
        {
            "self_attn.out_proj.": "self_attn.o_proj.",
            "cross_attn_image.out_proj.": "cross_attn_image.o_proj.",
            **_NORMS3,
        },
    ),
    *[(f"{_MEM}mask_downsampler.encoder.{3 * i}.", f"{_HF_MEM}mask_downsampler.layers.{i}.conv.") for i in range(4)],
    *[
        (f"{_MEM}mask_downsampler.encoder.{3 * i + 1}.", f"{_HF_MEM}mask_downsampler.layers.{i}.layer_norm.")
        for i in range(4)
    ],
    (_MEM + "mask_downsampler.encoder.12.", _HF_MEM + "mask_downsampler.final_conv."),
    (_MEM + "pix_feat_proj.", _HF_MEM + "feature_projection."),
    (_MEM + "out_proj.", _HF_MEM + "projection."),
    *_layer(
        _MEM + "fuser.layers.{}.",
        _HF_MEM + "memory_fuser.layers.{}.",
        {
            "gamma": "scale",
            "dwconv.": "depthwise_conv.",
            "norm.": "layer_norm.",
            "pwconv1.": "pointwise_conv1.",
            "pwconv2.": "pointwise_conv2.",
        },
    ),
    (_PROMPT + "mask_downscaling.0.", "tracker_model.prompt_encoder.mask_embed.conv1."),
    (_PROMPT + "mask_downscaling.1.", "tracker_model.prompt_encoder.mask_embed.layer_norm1."),
    (_PROMPT + "mask_downscaling.3.", "tracker_model.prompt_encoder.mask_embed.conv2."),
    (_PROMPT + "mask_downscaling.4.", "tracker_model.prompt_encoder.mask_embed.layer_norm2."),
    (_PROMPT + "mask_downscaling.6.", "tracker_model.prompt_encoder.mask_embed.conv3."),
    (
        _PROMPT + "pe_layer.positional_encoding_gaussian_matrix",
        "tracker_model.prompt_encoder.shared_embedding.positional_embedding",
    ),
    (_PROMPT + "point_embeddings.{}.weight", "tracker_model.prompt_encoder.point_embed.weight.{}"),
    (_PROMPT, "tracker_model.prompt_encoder."),
    *_layer(
        _MASK + "transformer.layers.{}.",
        "tracker_model.mask_decoder.transformer.layers.{}.",
        {
            "self_attn.out_proj.": "self_attn.o_proj.",
            "cross_attn_token_to_image.out_proj.": "cross_attn_token_to_image.o_proj.",
            "cross_attn_image_to_token.out_proj.": "cross_attn_image_to_token.o_proj.",
            "norm1.": "layer_norm1.",
            "norm2.": "layer_norm2.",
            "norm3.": "layer_norm3.",
            "norm4.": "layer_norm4.",
            "mlp.lin1.": "mlp.proj_in.",
            "mlp.lin2.": "mlp.proj_out.",
        },
    ),
    (
        _MASK + "transformer.final_attn_token_to_image.out_proj.",
        "tracker_model.mask_decoder.transformer.final_attn_token_to_image.o_proj.",
    ),
    (_MASK + "transformer.norm_final_attn.", "tracker_model.mask_decoder.transformer.layer_norm_final_attn."),
    (_MASK + "output_upscaling.0.", "tracker_model.mask_decoder.upscale_conv1."),
    (_MASK + "output_upscaling.1.", "tracker_model.mask_decoder.upscale_layer_norm."),
    (_MASK + "output_upscaling.3.", "tracker_model.mask_decoder.upscale_conv2."),
    *_mlp3(_MASK + "output_hypernetworks_mlps.{}.", "tracker_model.mask_decoder.output_hypernetworks_mlps.{}."),
    *_mlp3(_MASK + "iou_prediction_head.", "tracker_model.mask_decoder.iou_prediction_head."),
    *_mlp3(_MASK + "pred_obj_score_head.", "tracker_model.mask_decoder.pred_obj_score_head."),
    (_MASK, "tracker_model.mask_decoder."),
    *_mlp3("tracker.obj_ptr_proj.", "tracker_model.object_pointer_proj."),
    ("tracker.obj_ptr_tpos_proj.", "tracker_model.temporal_positional_encoding_projection_layer."),
]

# Meta tensors transformers has no place for (see the module docstring).
LEFTOVERS = re.compile(
    r"detector\.backbone\.vision_backbone\.trunk\.blocks\.\d+\.attn\.freqs_cis"
    r"|detector\.geometry_encoder\.points_(direct|pool|pos_enc)_project\.(weight|bias)"
)
# Fused q/k/v projections, by their name after renaming: nn.MultiheadAttention's and the ViT's.
_FUSED = re.compile(r"(?P<prefix>.*\.)(in_proj_(?P<mha>weight|bias)|attention\.(?P<vit>weight|bias))")
_POINT_EMBED = re.compile(r"(?P<name>.*point_embed\.weight)\.(?P<index>\d+)")
# Meta's prompt encoder has one random-Fourier matrix; transformers keeps a second for the image.
_FOURIER = "tracker_model.prompt_encoder.shared_embedding.positional_embedding"
_FOURIER_COPY = "tracker_model.shared_image_embedding.positional_embedding"


def _compile(template: str) -> re.Pattern:
    return re.compile(re.escape(template).replace(r"\{\}", r"(\d+)"))


_RENAME_PATTERNS = [(_compile(meta), hf) for meta, hf in RENAMES]


def rename(meta_key: str) -> str | None:
    """A Meta key's name in transformers' layout before the tensor fixes (None: no rule)."""
    for pattern, hf in _RENAME_PATTERNS:
        match = pattern.match(meta_key)
        if match:
            return hf.format(*match.groups()) + meta_key[match.end() :]
    return None


@dataclass
class Converted:
    """Sam3VideoModel's state dict, and the names of the Meta tensors left out (LEFTOVERS)."""

    state_dict: dict[str, torch.Tensor]
    dropped: list[str]


def convert_state_dict(meta: Mapping[str, torch.Tensor]) -> Converted:
    """Meta's video-model state dict (with `detector.`/`tracker.` prefixes) -> Sam3VideoModel's."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    points: dict[str, dict[int, torch.Tensor]] = {}
    for key, tensor in meta.items():
        if LEFTOVERS.fullmatch(key):
            dropped.append(key)
            continue
        name = rename(key)
        if name is None:
            raise ConversionError(f"tensor {key!r} {tuple(tensor.shape)} is not part of Meta's SAM3 video model")
        if name.endswith("position_embeddings") and "vision_encoder" in name:
            tensor = _drop_class_token(key, tensor)
        elif name.endswith("text_encoder.text_projection.weight"):
            tensor = tensor.t()  # Meta computes x @ P; a Linear computes x @ W.T
        if point := _POINT_EMBED.fullmatch(name):
            points.setdefault(point["name"], {})[int(point["index"])] = tensor
        elif fused := _FUSED.fullmatch(name):
            leaf = fused["mha"] or fused["vit"]
            for proj, part in zip(("q_proj", "k_proj", "v_proj"), _split3(key, tensor), strict=True):
                out[f"{fused['prefix']}{'attention.' if fused['vit'] else ''}{proj}.{leaf}"] = part
        else:
            out[name] = tensor
    for name, rows in points.items():
        out[name] = torch.cat([rows[i] for i in sorted(rows)])
    if _FOURIER in out:
        out[_FOURIER_COPY] = out[_FOURIER].clone()
    return Converted({k: v.contiguous() for k, v in out.items()}, dropped)


def _drop_class_token(key: str, table: torch.Tensor) -> torch.Tensor:
    side = round((table.shape[1] - 1) ** 0.5)
    if table.ndim != 3 or side * side != table.shape[1] - 1:
        raise ConversionError(f"{key} has shape {tuple(table.shape)}, not (1, 1 + n*n, hidden) with a class token")
    return table[:, 1:]


def _split3(key: str, tensor: torch.Tensor) -> tuple[torch.Tensor, ...]:
    if tensor.shape[0] % 3:
        raise ConversionError(f"{key} has shape {tuple(tensor.shape)}: not a fused q/k/v projection")
    return tuple(part.clone() for part in tensor.chunk(3))  # safetensors refuses shared storage


def load_meta_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a `sam3.pt`, unwrapped from {"model": ...} when wrapped."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a bad file; all mean "not one"
        raise ConversionError(f"{path} is not a PyTorch checkpoint torch.load can read: {err}") from err
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    if not isinstance(checkpoint, dict) or not any(str(k).startswith("detector.") for k in checkpoint):
        raise ConversionError(f"{path} holds no `detector.` tensors, so it is not Meta's SAM3 video checkpoint")
    return checkpoint


def sam3_video_config():
    """The config of Meta's released model: transformers' Sam3VideoConfig defaults are its sizes."""
    from transformers import Sam3VideoConfig

    return Sam3VideoConfig()


def convert_checkpoint(checkpoint: Path, out_dir: Path) -> Converted:
    """Write a transformers-format dir (config, model.safetensors, processor) for `checkpoint`.

    Every tensor of the model sam3_video_config() describes must come from the checkpoint with its shape,
    and nothing but LEFTOVERS may be left, else ConversionError: a partial conversion would load
    with randomly initialised parts and segment nonsense without a word.
    """
    from safetensors.torch import save_file
    from transformers import Sam3VideoModel

    config = sam3_video_config()
    converted = convert_state_dict(load_meta_checkpoint(Path(checkpoint)))
    with torch.device("meta"):
        expected = {k: v.shape for k, v in Sam3VideoModel(config).state_dict().items()}
    got = {k: v.shape for k, v in converted.state_dict.items()}
    missing, extra = sorted(expected.keys() - got.keys()), sorted(got.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
    if missing or extra or wrong:
        raise ConversionError(
            f"{checkpoint} does not fit transformers' Sam3VideoModel: {len(missing)} tensors missing "
            f"{missing[:3]}, {len(extra)} unexpected {extra[:3]}, {len(wrong)} of another shape "
            f"{[(k, tuple(got[k]), tuple(expected[k])) for k in wrong[:3]]}"
        )
    kinds = sorted({re.sub(r"\.\d+\.", ".N.", key) for key in converted.dropped})
    log.info("SAM3 conversion: dropped %d tensors transformers has no use for: %s", len(converted.dropped), kinds)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(converted.state_dict, str(out_dir / CONVERTED_WEIGHTS), metadata={"format": "pt"})
    config.save_pretrained(out_dir)
    sam3_processor(config.image_size, config.low_res_mask_size).save_pretrained(out_dir)
    return converted


def checkpoint_id(checkpoint: Path) -> str:
    """`<size>-<sha256 prefix>`: what names a checkpoint's converted dir."""
    digest = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return f"{checkpoint.stat().st_size}-{digest.hexdigest()[:32]}"


def convert_once(checkpoint: Path, target: Path) -> None:
    """Convert into `target` unless it exists: it appears complete or not at all (tiny.build_once)."""
    if target.exists() and not target.is_dir():
        raise ConversionError(f"{target} exists and is not a directory")
    if target.is_dir():
        log.info("%s: converted already", target)
    else:
        log.info("converting %s to the transformers format in %s", checkpoint, target)
        started = time.monotonic()
        build_once(target, lambda tmp: convert_checkpoint(checkpoint, tmp))
        log.info("converted %s in %.1f s", checkpoint, time.monotonic() - started)


def ensure_converted(checkpoint: Path, cache_dir: Path) -> Path:
    """The converted dir of `checkpoint` under `cache_dir`, converting it first if not there yet."""
    target = Path(cache_dir) / f"sam3-{checkpoint_id(Path(checkpoint))}"
    convert_once(Path(checkpoint), target)
    return target
