"""The baseline a user would write first: stock diffusers InstructPix2Pix on every full frame,
one frame at a time, no tracking, no crop, no batching, then encode. Same tiny weights as the
service, same clip, same steps; run in-process (no gRPC), which only flatters it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from orchestrator.media.decode import probe, read_frames
from orchestrator.media.encode import encode_h264


def naive_edit(clip: Path, pix2pix_dir: Path, out: Path, prompt: str, steps: int) -> float:
    """Edit every frame of `clip` into `out`; returns the seconds it took (model load excluded)."""
    import torch
    from diffusers import StableDiffusionInstructPix2PixPipeline

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
        pix2pix_dir, safety_checker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    info = probe(clip, None)
    started = time.monotonic()

    def edited():
        for _, frame in read_frames(info):
            image = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255.0
            result = pipe(
                prompt,
                image=image,
                num_inference_steps=steps,
                guidance_scale=9.0,
                image_guidance_scale=1.5,
                generator=torch.Generator().manual_seed(0),
                output_type="np",
            )
            yield np.clip(np.rint(result.images[0] * 255), 0, 255).astype(np.uint8)

    encode_h264(out, edited(), info, audio_from=None)
    return time.monotonic() - started
