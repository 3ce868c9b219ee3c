"""Checkpoints in the layout of Meta's sam3.pt, for the converter's tests (unit and system).

The tiny random-weight SAM3 the tests use everywhere, written as Meta's package would save it:
the converter's key map inverted (names, fused q/k/v, the ViT's class-token row, the transposed
text projection, one Fourier matrix), wrapped in {"model": ...}, with two of the leftovers Meta's
checkpoint has and transformers does not use. Converting it must give the tiny model back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from modelserver.backends import sam3_convert
from modelserver.backends.sam3_convert import RENAMES
from tests.unit.modelserver.make_sam3_meta_layout import FIXTURE, expand

LAYER_NUMBER = re.compile(r"(?<=\.)\d+(?=\.)")


def meta_layout() -> dict[str, list[int]]:
    """Every tensor name and shape of Meta's released checkpoint (the JSON fixture)."""
    return expand(json.loads(FIXTURE.read_text()))


_INVERSE = [(re.compile(re.escape(hf).replace(r"\{\}", r"(\d+)")), meta) for meta, hf in RENAMES]
_QKV = re.compile(r"(?P<prefix>.*?\.)(?P<vit>attention\.)?(?P<proj>[qkv])_proj\.(?P<leaf>weight|bias)")


def _inverse_name(hf_key: str, patterns: set[str]) -> str:
    """The Meta name whose renaming gives `hf_key` and whose pattern is in Meta's real layout."""
    for pattern, meta in _INVERSE:
        match = pattern.match(hf_key)
        if match:
            candidate = meta.format(*match.groups()) + hf_key[match.end() :]
            if LAYER_NUMBER.sub("{}", candidate) in patterns:
                return candidate
    raise KeyError(hf_key)


def to_meta_layout(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' Sam3VideoModel tensors under Meta's names and shapes (the converter inverted)."""
    patterns = {LAYER_NUMBER.sub("{}", k) for k in meta_layout()}
    meta: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in hf.items():
        if key == "tracker_model.shared_image_embedding.positional_embedding":
            continue  # Meta's model has one matrix for both: the prompt encoder's
        qkv = _QKV.fullmatch(key)
        if qkv:
            leaf = qkv["leaf"]
            fused_name = f"{qkv['prefix']}{'attention.' if qkv['vit'] else 'in_proj_'}{leaf}"
            try:
                name = _inverse_name(fused_name, patterns)
            except KeyError:
                name = None  # q/k/v kept apart in Meta's model too
            if name is not None:
                fused.setdefault(name, {})[qkv["proj"]] = tensor
                continue
        if key.endswith(".point_embed.weight"):
            for i, row in enumerate(tensor):
                meta[_inverse_name(f"{key}.{i}", patterns)] = row[None].clone()
            continue
        name = _inverse_name(key, patterns)
        if name.endswith("trunk.pos_embed"):
            tensor = torch.cat([torch.randn_like(tensor[:, :1]), tensor], dim=1)  # the class-token row
        elif name.endswith("encoder.text_projection"):
            tensor = tensor.t()
        meta[name] = tensor.clone()
    for name, parts in fused.items():
        meta[name] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return meta


def write_tiny_meta_checkpoint(tiny_sam3: Path, path: Path) -> Path:
    """Save the tiny SAM3 at `tiny_sam3` as Meta's sam3.pt would hold it, at `path`."""
    from transformers import Sam3VideoModel

    meta = to_meta_layout(Sam3VideoModel.from_pretrained(tiny_sam3).state_dict())
    meta["detector.backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis"] = torch.zeros(4, 4)
    meta["detector.geometry_encoder.points_direct_project.weight"] = torch.zeros(4, 2)
    torch.save({"model": meta}, path)
    return path


def convert_to_the_tiny_config(monkeypatch, tiny_sam3: Path) -> None:
    """Make the converter (in this process) build the tiny model's config instead of the released
    model's: the one thing a tiny checkpoint cannot share with the real one."""
    from transformers import Sam3VideoConfig

    monkeypatch.setattr(sam3_convert, "sam3_video_config", lambda: Sam3VideoConfig.from_pretrained(tiny_sam3))
