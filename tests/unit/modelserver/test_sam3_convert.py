"""Meta's sam3.pt -> transformers' Sam3VideoModel (modelserver.backends.sam3_convert).

The key map is checked against the real layout of Meta's checkpoint (every tensor name and shape,
in sam3_meta_layout.json, generated from Meta's package by make_sam3_meta_layout.py) and the real
Sam3VideoModel, both on the `meta` device: nothing is allocated. The end-to-end test writes a
tiny random-weight checkpoint in Meta's layout (the map inverted, from the project's tiny SAM3),
gives it to the model server's weights resolution as a lone sam3.pt and checks the converted
model is the tiny model: the same tensors and the same masks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from modelserver.backends import sam3_convert  # noqa: E402
from modelserver.backends.sam3 import Sam3Segmenter  # noqa: E402
from modelserver.backends.sam3_convert import RENAMES, convert_state_dict  # noqa: E402
from modelserver.weights import WeightsError, resolve_sources  # noqa: E402
from tests.unit.modelserver.make_sam3_meta_layout import FIXTURE, expand  # noqa: E402

LAYER_NUMBER = re.compile(r"(?<=\.)\d+(?=\.)")


def meta_layout() -> dict[str, list[int]]:
    return expand(json.loads(FIXTURE.read_text()))


def test_the_key_map_turns_metas_layout_into_exactly_sam3videomodels():
    from transformers import Sam3VideoConfig, Sam3VideoModel

    layout = meta_layout()
    assert len(layout) == 1465
    converted = convert_state_dict({k: torch.empty(s, device="meta") for k, s in layout.items()})
    with torch.device("meta"):
        expected = {k: v.shape for k, v in Sam3VideoModel(Sam3VideoConfig()).state_dict().items()}
    got = {k: v.shape for k, v in converted.state_dict.items()}
    assert sorted(expected.keys() - got.keys()) == []
    assert sorted(got.keys() - expected.keys()) == []
    assert [k for k in expected if expected[k] != got[k]] == []
    assert len(expected) == 1797
    # The leftovers: 32 ViT RoPE tables (recomputed by transformers), 6 point-prompt tensors.
    assert sum("freqs_cis" in k for k in converted.dropped) == 32
    assert sorted(k for k in converted.dropped if "freqs_cis" not in k) == sorted(
        f"detector.geometry_encoder.points_{p}_project.{w}"
        for p in ("direct", "pool", "pos_enc")
        for w in ("weight", "bias")
    )


def test_a_tensor_meta_never_had_is_refused_by_name():
    with pytest.raises(sam3_convert.ConversionError, match="detector.extra.weight"):
        convert_state_dict({"detector.extra.weight": torch.zeros(2)})


# --- the map inverted: transformers' tensors -> Meta's layout (for the end-to-end test) --------------

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


@pytest.fixture(scope="module")
def tiny_checkpoint(model_cache, tmp_path_factory) -> Path:
    """The tiny SAM3 as Meta's sam3.pt would hold it ({"model": ...}, with the leftovers)."""
    from transformers import Sam3VideoModel

    meta = to_meta_layout(Sam3VideoModel.from_pretrained(model_cache / "tiny" / "tiny-sam3").state_dict())
    meta["detector.backbone.vision_backbone.trunk.blocks.0.attn.freqs_cis"] = torch.zeros(4, 4)
    meta["detector.geometry_encoder.points_direct_project.weight"] = torch.zeros(4, 2)
    path = tmp_path_factory.mktemp("meta") / "sam3.pt"
    torch.save({"model": meta}, path)
    return path


@pytest.fixture
def tiny_config(model_cache, monkeypatch):
    """The converter builds the tiny model's config instead of the released model's."""
    from transformers import Sam3VideoConfig

    monkeypatch.setattr(
        sam3_convert, "sam3_video_config", lambda: Sam3VideoConfig.from_pretrained(model_cache / "tiny" / "tiny-sam3")
    )


def test_a_lone_sam3_pt_converts_once_and_segments_as_the_model_it_came_from(
    tiny_checkpoint, tiny_config, model_cache, tmp_path, monkeypatch
):
    monkeypatch.delenv("VIDEOEDIT_MODELS", raising=False)
    sam3, _ = resolve_sources(sam3=str(tiny_checkpoint), cache_dir=tmp_path)
    converted = Path(sam3.path_or_id)
    assert converted.parent == tmp_path / "sam3-converted"
    assert {"config.json", "model.safetensors", "processor_config.json"} <= {p.name for p in converted.iterdir()}
    stamp = (converted / "model.safetensors").stat().st_mtime_ns
    assert Path(resolve_sources(sam3=str(tiny_checkpoint), cache_dir=tmp_path)[0].path_or_id) == converted
    assert (converted / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not converted again

    torch.set_num_threads(1)
    ours = Sam3Segmenter.from_pretrained(converted)
    tiny = Sam3Segmenter.from_pretrained(model_cache / "tiny" / "tiny-sam3")
    tracker = tiny.model.tracker_model  # random init gave its two Fourier matrices apart; Meta's has one
    with torch.no_grad():
        tracker.shared_image_embedding.positional_embedding.copy_(
            tracker.prompt_encoder.shared_embedding.positional_embedding
        )
    theirs = tiny.model.state_dict()
    assert {k: v for k, v in ours.model.state_dict().items() if not torch.equal(v, theirs[k])} == {}
    frames = [np.random.default_rng(seed).integers(0, 256, (96, 128, 3), dtype=np.uint8) for seed in range(3)]
    got, want = ours.segment(frames, ["a red car"]), tiny.segment(frames, ["a red car"])
    assert [[(i.object_id, i.score, i.box) for i in f] for f in got] == [
        [(i.object_id, i.score, i.box) for i in f] for f in want
    ]
    assert all(
        np.array_equal(a.mask, b.mask) for fa, fb in zip(got, want, strict=True) for a, b in zip(fa, fb, strict=True)
    )
    assert sum(len(f) for f in got) > 0


def test_a_changed_checkpoint_is_converted_again(tiny_checkpoint, tiny_config, tmp_path):
    first = sam3_convert.ensure_converted(tiny_checkpoint, tmp_path)
    changed = tmp_path / "sam3.pt"
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["model"]["tracker.no_obj_ptr"] += 1
    torch.save(checkpoint, changed)
    assert sam3_convert.ensure_converted(changed, tmp_path) != first


def test_a_file_that_is_not_metas_checkpoint_is_refused_saying_why(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDEOEDIT_MODELS", raising=False)
    junk = tmp_path / "sam3.pt"
    junk.write_bytes(b"not really a checkpoint")
    with pytest.raises(WeightsError, match="cannot convert it: .* not a PyTorch checkpoint"):
        resolve_sources(sam3=str(junk), cache_dir=tmp_path)
    torch.save({"model": {"other.weight": torch.zeros(1)}}, junk)
    with pytest.raises(WeightsError, match="no `detector.` tensors"):
        resolve_sources(sam3=str(junk), cache_dir=tmp_path)


def test_convert_sam3_writes_a_directory_the_model_server_loads(tiny_checkpoint, tiny_config, tmp_path):
    from modelserver.cli import main

    main(["convert-sam3", str(tiny_checkpoint), str(tmp_path / "sam3")])
    sam3, _ = resolve_sources(sam3=str(tmp_path / "sam3"), cache_dir=tmp_path / "cache")
    assert Path(sam3.path_or_id) == (tmp_path / "sam3").resolve() and not (tmp_path / "cache").exists()
    assert Sam3Segmenter.from_pretrained(sam3.path_or_id).architecture == "Sam3VideoModel"
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(SystemExit) as stopped:
        main(["convert-sam3", str(tmp_path / "junk.pt"), str(tmp_path / "junk")])
    assert stopped.value.code == 2 and not (tmp_path / "junk").exists()
