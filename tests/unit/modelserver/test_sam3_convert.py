"""Meta's sam3.pt -> transformers' Sam3VideoModel (modelserver.backends.sam3_convert).

The key map is checked against the real layout of Meta's checkpoint (every tensor name and shape,
in sam3_meta_layout.json, generated from Meta's package by make_sam3_meta_layout.py) and the real
Sam3VideoModel, both on the `meta` device: nothing is allocated. The end-to-end test writes a
tiny random-weight checkpoint in Meta's layout (the map inverted, from the project's tiny SAM3),
gives it to the model server's weights resolution as a lone sam3.pt and checks the converted
model is the tiny model: the same tensors and the same masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from modelserver.backends import sam3_convert  # noqa: E402
from modelserver.backends.sam3 import Sam3Segmenter  # noqa: E402
from modelserver.backends.sam3_convert import convert_state_dict  # noqa: E402
from modelserver.weights import WeightsError, resolve_sources  # noqa: E402
from tests.sam3_checkpoints import convert_to_the_tiny_config, meta_layout, write_tiny_meta_checkpoint  # noqa: E402


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


@pytest.fixture(scope="module")
def tiny_checkpoint(model_cache, tmp_path_factory) -> Path:
    """The tiny SAM3 as Meta's sam3.pt would hold it ({"model": ...}, with the leftovers)."""
    return write_tiny_meta_checkpoint(model_cache / "tiny" / "tiny-sam3", tmp_path_factory.mktemp("meta") / "sam3.pt")


@pytest.fixture
def tiny_config(model_cache, monkeypatch):
    convert_to_the_tiny_config(monkeypatch, model_cache / "tiny" / "tiny-sam3")


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


def test_a_bare_state_dict_converts_like_the_wrapped_one(tiny_checkpoint, tiny_config, tmp_path):
    bare = tmp_path / "bare" / "sam3.pt"
    bare.parent.mkdir()
    torch.save(torch.load(tiny_checkpoint, weights_only=True)["model"], bare)  # no {"model": ...} around it
    wrapped = load_file(sam3_convert.ensure_converted(tiny_checkpoint, tmp_path / "a") / "model.safetensors")
    unwrapped = load_file(sam3_convert.ensure_converted(bare, tmp_path / "b") / "model.safetensors")
    assert unwrapped.keys() == wrapped.keys() and all(torch.equal(unwrapped[k], wrapped[k]) for k in wrapped)


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
