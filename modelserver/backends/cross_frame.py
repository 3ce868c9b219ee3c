"""Cross-frame attention for InstructPix2Pix (Text2Video-Zero / Pix2Video, no training): during
denoising, each crop's self-attention also attends to the keys and values of an *anchor* crop
denoised in the same batch, so crops of one video come out alike.

A wrapper around each UNet self-attention (`attn1`) processor. Given, for every item of the batch,
the index of its anchor (itself when it has none), it hands the wrapped processor the item's own
tokens followed by its anchor's as the keys/values to attend over. An item that is its own anchor
attends over its tokens twice, which is exactly ordinary self-attention (softmax over duplicated
keys gives the same weights per distinct key). Items only ever see their own anchor: crops of
different jobs batched together never attend to each other. With no anchor map set, the wrapper
is the wrapped processor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class CrossFrameAttention:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.anchors: list[int] | None = None  # per batch item (before classifier-free guidance copies)

    def __call__(
        self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None, *args, **kwargs
    ):
        if self.anchors is not None and encoder_hidden_states is None and hidden_states.ndim == 3:
            index = _expanded(self.anchors, hidden_states.shape[0], hidden_states.device)
            encoder_hidden_states = torch.cat([hidden_states, hidden_states[index]], dim=1)
        return self.inner(attn, hidden_states, encoder_hidden_states, *args, **kwargs)


def _expanded(anchors: Sequence[int], batch: int, device: torch.device) -> torch.Tensor:
    """The anchor map for the UNet's batch, which holds the items once per guidance branch
    (InstructPix2Pix: text+image, image only, unconditional), each copy anchored in its branch."""
    count = len(anchors)
    if batch % count:
        raise RuntimeError(f"UNet batch {batch} is not a multiple of the {count} items")
    return torch.tensor([a + branch * count for branch in range(batch // count) for a in anchors], device=device)


def install(unet) -> list[CrossFrameAttention]:
    """Wrap every self-attention processor of `unet` (once); returns the wrappers."""
    processors = unet.attn_processors
    if not any(isinstance(p, CrossFrameAttention) for p in processors.values()):
        unet.set_attn_processor(
            {name: CrossFrameAttention(p) if name.endswith("attn1.processor") else p for name, p in processors.items()}
        )
    return [p for p in unet.attn_processors.values() if isinstance(p, CrossFrameAttention)]
