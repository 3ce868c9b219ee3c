"""Cross-frame attention on the tiny InstructPix2Pix (real diffusers UNet, random weights): an
anchored crop attends to its anchor, results never depend on what else is in the batch, and
crops of another call never see an anchor that is not theirs."""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from modelserver.backends.cross_frame import CrossFrameAttention  # noqa: E402
from modelserver.backends.instruct_pix2pix import InstructPix2PixEditor  # noqa: E402
from modelserver.backends.tiny import ensure_tiny_models  # noqa: E402
from modelserver.engine import BatchingConfig, ModelEngine  # noqa: E402
from modelserver.metrics import Metrics  # noqa: E402
from modelserver.validation import EditCall  # noqa: E402
from videoedit.v1.contract import EditParams  # noqa: E402

PARAMS = EditParams(image_guidance_scale=1.5, guidance_scale=7.5, num_inference_steps=2)


@pytest.fixture(scope="module")
def editor(model_cache) -> InstructPix2PixEditor:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield InstructPix2PixEditor.from_pretrained(ensure_tiny_models(model_cache / "tiny").instruct_pix2pix)
    torch.set_num_threads(before)


def crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n)]


def edit(editor, images, anchors=None, seeds=None):
    return editor.edit(images, "make it red", PARAMS, seeds=seeds or [7] * len(images), anchors=anchors)


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1  # float reduction order only


def test_an_anchored_crop_attends_to_its_anchor_whatever_else_is_in_the_batch(editor):
    x0, x1, anchor, other = crops(4)
    plain = edit(editor, [x0])[0]
    anchored = edit(editor, [x0, anchor], anchors=[1, None])[0]
    assert not close(anchored, plain)  # the anchor changed the denoising
    with_company = edit(editor, [x1, x0, other, anchor], anchors=[None, 3, None, None])
    assert close(with_company[1], anchored)  # same anchor, other batch: same result
    assert close(with_company[0], edit(editor, [x1])[0])  # no anchor: as if alone
    assert close(with_company[2], edit(editor, [other])[0])


def test_no_anchors_leave_the_processors_as_they_were(editor):
    edit(editor, crops(2), anchors=[1, None])
    wrappers = [p for p in editor.pipe.unet.attn_processors.values() if isinstance(p, CrossFrameAttention)]
    assert wrappers and all(w.anchors is None for w in wrappers)
    assert close(edit(editor, crops(1))[0], edit(editor, crops(1), anchors=[None])[0])


def test_calls_with_different_anchors_batched_together_never_see_each_others(editor):
    engine = ModelEngine(None, editor, BatchingConfig(max_delay_ms=200), Metrics())  # type: ignore[arg-type]
    try:
        (a0, a1), (b0, b1), (anchor_a, anchor_b) = crops(2, 1), crops(2, 2), crops(2, 3)
        call_a = EditCall([a0, a1], "make it red", PARAMS, [7, 8], anchor=anchor_a)
        call_b = EditCall([b0, b1], "make it red", PARAMS, [7, 8], anchor=anchor_b)
        alone_a, alone_b = engine.edit(call_a), engine.edit(call_b)
        results = {}
        threads = [
            threading.Thread(target=lambda k, c: results.__setitem__(k, engine.edit(c)), args=(k, c))
            for k, c in (("a", call_a), ("b", call_b))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        engine.close()
    assert all(close(x, y) for x, y in zip(results["a"], alone_a)) and len(results["a"]) == 2
    assert all(close(x, y) for x, y in zip(results["b"], alone_b))
