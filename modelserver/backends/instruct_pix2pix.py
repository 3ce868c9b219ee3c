"""InstructPix2Pix backend: a batch of same-size crops + one instruction -> edited crops."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import cross_frame

logger = logging.getLogger(__name__)


class InstructPix2PixEditor:
    def __init__(self, pipe, device: str = "cpu", device_map: str | None = None) -> None:
        self.pipe = pipe
        self.device = device
        self.device_map = device_map
        self._schedulers = {"": pipe.scheduler}  # by contract name, made when first asked for
        self._batch_sizes: tuple[int, ...] = ()  # compiled: batches are padded up to one of these

    def compile(self, batch_sizes: Sequence[int]) -> None:
        """Make the UNet faster for these batch sizes (`--compile`): channels-last memory, fused
        attention projections, torch.compile. A compiled graph fits one input shape, so every
        batch is padded up to the next of `batch_sizes` (warm each one up before serving)."""
        unet = self.pipe.unet
        unet.to(memory_format=torch.channels_last)
        if hasattr(unet, "fuse_qkv_projections"):
            unet.fuse_qkv_projections()
        self.pipe.unet = torch.compile(unet, fullgraph=False, dynamic=False)
        self._batch_sizes = tuple(sorted(batch_sizes))

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """The batch sizes compiled for (empty: not compiled)."""
        return self._batch_sizes

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
        device_map: str | None = None,
    ) -> InstructPix2PixEditor:
        """Load a diffusers-format pipeline (local dir or hub id, e.g. timbrooks/instruct-pix2pix).

        `device_map="balanced"` (the seed's multi-GPU setting) spreads the pipeline's models over
        all visible GPUs instead of moving it to `device`.
        """
        from diffusers import StableDiffusionInstructPix2PixPipeline

        # `dtype=`: `torch_dtype=` is deprecated in diffusers 0.42. Attention uses PyTorch SDPA
        # by default. safety_checker=None: crops are edited parts of frames, and the checker's
        # extra CLIP model would double memory; requires_safety_checker=False silences the warning.
        pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
            path_or_id, dtype=dtype, safety_checker=None, requires_safety_checker=False, device_map=device_map
        )
        if device_map is None:
            pipe.to(device)
        pipe.set_progress_bar_config(disable=True)  # server logs, not terminal bars
        return cls(pipe, device=device, device_map=device_map)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (the VAE scale factor, 8 for SD)."""
        return int(self.pipe.vae_scale_factor)

    @property
    def architecture(self) -> str:
        return type(self.pipe).__name__

    @property
    def settings(self) -> dict[str, str]:
        return {"device_map": self.device_map or ""}

    def edit(
        self,
        images: list[np.ndarray],
        instructions: str | Sequence[str],
        image_guidance_scale: float,
        guidance_scale: float,
        num_inference_steps: int,
        seeds: list[int],
        scheduler: str = "",
        anchors: Sequence[int | None] | None = None,
    ) -> list[np.ndarray]:
        """Edit same-size RGB uint8 (H, W, 3) images in one pipeline call; returns the same shapes.

        `anchors`: for each image, the index of another image of the batch whose denoising its
        self-attention also attends to (cross-frame attention, see cross_frame.py), or None.

        `instructions` is one for all images or one per image (batches merged from several calls).
        One torch.Generator per item, so item i is identical to a single-image call with seeds[i]
        (batching never changes a result, and any replica on the same kind of device reproduces
        any item). `scheduler`: "" (the checkpoint's), "euler_ancestral", "dpmpp_2m" or "unipc".
        """
        if not images:
            return []
        if isinstance(instructions, str):
            instructions = [instructions] * len(images)
        if len(instructions) != len(images):
            raise ValueError(f"need one instruction per image: {len(instructions)} for {len(images)} images")
        if len(seeds) != len(images):
            raise ValueError(f"need one seed per image: {len(seeds)} seeds for {len(images)} images")
        h, w = images[0].shape[:2]
        m = self.size_multiple
        for img in images:
            if img.dtype != np.uint8 or img.shape != (h, w, 3):
                raise ValueError("images must be same-size RGB uint8 arrays of shape (H, W, 3)")
        if h % m or w % m:
            # The pipeline would silently floor the size; callers must resize crops instead.
            raise ValueError(f"image size {w}x{h} must be a multiple of {m}")

        count = len(images)
        anchors = list(anchors) if anchors is not None and any(a is not None for a in anchors) else None
        if anchors is not None and (len(anchors) != count or any(a is not None and not 0 <= a < count
                                                                 for a in anchors)):
            raise ValueError(f"need one anchor index (0..{count - 1}) or None per image: {anchors}")
        padding = padded_size(count, self._batch_sizes) - count
        if padding:  # repeat the last item; each item has its own generator, so the others don't change
            images, instructions, seeds = (list(v) + [v[-1]] * padding for v in (images, instructions, seeds))
            if anchors is not None:
                anchors += [anchors[-1]] * padding
        # (B, 3, H, W) float in [0, 1]: the pipeline's image processor maps it to [-1, 1].
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
        # Generators on the UNet's device: Euler Ancestral draws fresh noise at every step, and CPU
        # generators would make each of those a host-to-device copy. Seeds reproduce on the same
        # kind of device (CUDA and CPU random streams differ).
        generators = [torch.Generator(self.pipe.unet.device).manual_seed(int(s)) for s in seeds]
        self.pipe.scheduler = self._scheduler(scheduler)
        with torch.inference_mode(), self._cross_frame(anchors):
            latents = self.pipe(
                prompt=list(instructions),  # one prompt per image, or the batch collapses
                image=batch,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                image_guidance_scale=image_guidance_scale,
                generator=generators,
                output_type="latent",
            ).images
            pixels = self._decode(latents)
        out = self.pipe.image_processor.postprocess(pixels, output_type="np", do_denormalize=[True] * len(pixels))
        return [np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8) for img in out[:count]]

    @contextmanager
    def _cross_frame(self, anchors: list[int | None] | None) -> Iterator[None]:
        """Cross-frame attention to `anchors` for the duration of one pipeline call."""
        if anchors is None:
            yield
            return
        if self._batch_sizes:
            raise ValueError("cross-frame consistency is not available on a model server started with --compile "
                             "(its attention is fused and compiled); start one without --compile")
        wrappers = cross_frame.install(self.pipe.unet)
        for wrapper in wrappers:
            wrapper.anchors = [j if a is None else a for j, a in enumerate(anchors)]
        try:
            yield
        finally:
            for wrapper in wrappers:
                wrapper.anchors = None

    def _scheduler(self, name: str):
        """The scheduler called `name`, configured from the checkpoint's (its betas, timesteps)."""
        if name not in self._schedulers:
            from diffusers import DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, UniPCMultistepScheduler

            config = self._schedulers[""].config
            makers = {
                "euler_ancestral": lambda: EulerAncestralDiscreteScheduler.from_config(config),
                "dpmpp_2m": lambda: DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++",
                                                                            solver_order=2),
                "unipc": lambda: UniPCMultistepScheduler.from_config(config),
            }
            if name not in makers:
                raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(makers)}")
            self._schedulers[name] = makers[name]()
        return self._schedulers[name]

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The VAE decode diffusers does, guarded: SD's VAE overflows in float16 on some inputs
        (NaN/inf pixels, a black or garbage crop). Such a batch is decoded again with the VAE in
        float32; what is still not finite is an error, never a pasted crop."""
        vae = self.pipe.vae
        scaled = latents / vae.config.scaling_factor
        pixels = vae.decode(scaled.to(vae.dtype), return_dict=False)[0]
        if torch.isfinite(pixels).all():
            return pixels
        dtype = vae.dtype
        logger.warning("VAE decode in %s gave non-finite pixels; decoding again in float32", dtype)
        vae.to(torch.float32)
        try:
            pixels = vae.decode(scaled.float(), return_dict=False)[0]
        finally:
            vae.to(dtype)
        if not torch.isfinite(pixels).all():
            raise FloatingPointError("InstructPix2Pix produced non-finite pixels even with the VAE in float32")
        return pixels


def padded_size(count: int, batch_sizes: Sequence[int]) -> int:
    """The smallest of `batch_sizes` that holds `count` items (`count` itself past the largest)."""
    return next((size for size in sorted(batch_sizes) if size >= count), count)
