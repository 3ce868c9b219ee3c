"""Write sam3_meta_layout.json: every tensor name and shape of Meta's SAM3 video model (`sam3.pt`).

The fixture lets a fast test check the converter's key map without Meta's package or weights.
Regenerate it (after a new `sam3` release) with Meta's package and its two missing dependencies
unpacked beside, not installed into, the project's venv:

    pip download sam3 --no-deps -d /tmp/sam3pkg && unzip -q /tmp/sam3pkg/sam3-*.whl -d /tmp/sam3src
    pip install --no-deps --target /tmp/sam3deps iopath einops portalocker
    python tests/unit/modelserver/make_sam3_meta_layout.py /tmp/sam3src /tmp/sam3deps

It builds the model as `build_sam3_video_model` does (about 15 s, 3.5 GB of memory): weight
initialisation is skipped, and the few tensors Meta's code puts on "cuda" go on the CPU.
test_sam3_reference.py builds it the same way.
The JSON groups layers: {"pattern with {} for layer numbers": [[shape, [numbers...]], ...]}.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode

FIXTURE = Path(__file__).with_name("sam3_meta_layout.json")


class _CudaOnCpu(TorchFunctionMode):
    """Tensors Meta's code creates on "cuda" go on the CPU (the test's workaround, not the product's)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if "cuda" in str(kwargs.get("device", "")):
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


def build_meta_video_model():
    """Meta's video model as `build_sam3_video_model` builds it, weights left uninitialised (set
    them before use). Meta's `sam3` package and iopath/einops must be importable."""
    import open_clip

    # Training-data helpers Meta's model code imports but never calls when building the model.
    stubs = {n: mock.MagicMock() for n in ("pycocotools", "pycocotools.mask", "pycocotools.coco", "decord")}
    # Random initialisation of 860M weights: minutes for nothing.
    skip_init = {n: _unchanged for n in dir(torch.nn.init) if n.endswith("_") and not n.startswith("_")}
    bpe = Path(open_clip.__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
    with mock.patch.dict(sys.modules, stubs), mock.patch.multiple(torch.nn.init, **skip_init), _CudaOnCpu():
        from sam3.model_builder import build_sam3_video_model

        return build_sam3_video_model(bpe_path=str(bpe), load_from_HF=False, device="cpu")


def _unchanged(tensor, *args, **kwargs):
    return tensor


def meta_state_dict_shapes() -> dict[str, list[int]]:
    return {key: list(tensor.shape) for key, tensor in build_meta_video_model().state_dict().items()}


def compact(shapes: dict[str, list[int]]) -> dict[str, list]:
    groups: dict[str, list] = {}
    for key, shape in shapes.items():
        numbers = [int(n) for n in re.findall(r"(?<=\.)\d+(?=\.)", key)]
        pattern = re.sub(r"(?<=\.)\d+(?=\.)", "{}", key)
        entry = next((e for e in groups.setdefault(pattern, []) if e[0] == shape), None)
        if entry is None:
            entry = [shape, []]
            groups[pattern].append(entry)
        entry[1].append(numbers)
    return groups


def expand(groups: dict[str, list]) -> dict[str, list[int]]:
    """The fixture's {key: shape}."""
    return {
        pattern.format(*numbers): shape
        for pattern, entries in groups.items()
        for shape, all_numbers in entries
        for numbers in all_numbers
    }


if __name__ == "__main__":
    sys.path[:0] = sys.argv[1:]
    shapes = meta_state_dict_shapes()
    FIXTURE.write_text(json.dumps(compact(shapes), separators=(",", ":")) + "\n")
    print(f"{FIXTURE}: {len(shapes)} tensors, {sum(torch.Size(s).numel() for s in shapes.values())} elements")
