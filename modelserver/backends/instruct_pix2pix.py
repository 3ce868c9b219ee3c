"""InstructPix2Pix backend: a batch of same-size crops + one instruction -> edited crops."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from videoedit.v1.contract import EditParams

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
        cls,
        path_or_id: str | Path,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        device_map: str | None = None,
    ) -> InstructPix2PixEditor:
        """Load a diffusers-format pipeline (local dir or hub id, e.g. timbrooks/instruct-pix2pix).

        `device_map="balanced"` (the original worker's multi-GPU setting) spreads the pipeline's models over
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
        params: EditParams,
        *,
        seeds: Sequence[int],
        anchors: Sequence[int | None] | None = None,
    ) -> list[np.ndarray]:
        """Edit same-size RGB uint8 (H, W, 3) images in one pipeline call; returns the same shapes.

        `anchors`: for each image, the index of another image of the batch whose denoising its
        self-attention also attends to (cross-frame attention, see cross_frame.py), or None.

        `instructions` is one for all images or one per image (batches merged from several calls).
        One torch.Generator per item, so item i is identical to a single-image call with seeds[i]
        (batching never changes a result, and any replica on the same kind of device reproduces
        any item). `params.scheduler`: "" (the checkpoint's), or one of contract.SCHEDULERS.
        """
        if not images:
            return []
        count = len(images)
        # 0. Defaults: one instruction per image; no anchor map when no image has an anchor
        if isinstance(instructions, str):
            instructions = [instructions] * count
        anchors = list(anchors) if anchors is not None and any(a is not None for a in anchors) else None
        # 1. Check inputs
        self.check_inputs(images, instructions, params, seeds, anchors)
        # 2. Pad to a compiled batch size: repeat the last item (with its own generator, the others don't change)
        padding = padded_size(count, self._batch_sizes) - count
        images, instructions, seeds = (list(v) + [v[-1]] * padding for v in (images, instructions, seeds))
        if anchors is not None:
            anchors += [anchors[-1]] * padding
        # 3. Prepare the images: (B, 3, H, W) float in [0, 1], the pipeline's image processor maps it to [-1, 1]
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
        # 4. Prepare one generator per item, on the UNet's device: Euler Ancestral draws fresh noise at every step,
        # and CPU generators would make each of those a host-to-device copy. Seeds reproduce on the same kind of
        # device (CUDA and CPU random streams differ).
        generators = [torch.Generator(self.pipe.unet.device).manual_seed(int(s)) for s in seeds]
        # 5. Set the scheduler
        self.pipe.scheduler = self._scheduler(params.scheduler)
        # 6. Denoise (attending to the anchors) and decode the latents
        with torch.inference_mode(), self._cross_frame(anchors):
            latents = self.pipe(
                prompt=list(instructions),  # one prompt per image, or the batch collapses
                image=batch,
                num_inference_steps=params.num_inference_steps,
                guidance_scale=params.guidance_scale,
                image_guidance_scale=params.image_guidance_scale,
                generator=generators,
                output_type="latent",
            ).images
            pixels = self._decode(latents)
        # 7. Postprocess to uint8, without the padding
        out = self.pipe.image_processor.postprocess(pixels, output_type="np", do_denormalize=[True] * len(pixels))
        return [np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8) for img in out[:count]]

    def check_inputs(
        self,
        images: list[np.ndarray],
        instructions: Sequence[str],
        params: EditParams,
        seeds: Sequence[int],
        anchors: list[int | None] | None,
    ) -> None:
        """Raise ValueError naming the argument and its bad value, before any inference (diffusers'
        `check_inputs`): the pipeline itself would silently floor a size or broadcast a list."""
        count = len(images)
        for name, values in (("instructions", instructions), ("seeds", seeds)):
            if len(values) != count:
                raise ValueError(f"{name}: {len(values)} for {count} images; need one per image")
        height, width = images[0].shape[:2]
        for i, image in enumerate(images):
            if image.dtype != np.uint8 or image.shape != (height, width, 3):
                raise ValueError(
                    f"images[{i}]: {image.dtype} of shape {image.shape}; images must be same-size RGB "
                    f"uint8 arrays of shape (H, W, 3), as images[0] ({height}, {width}, 3)"
                )
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(f"images: size {width}x{height} must be a multiple of {self.size_multiple}")
        params.check()  # an unknown scheduler, scales and steps outside the contract's limits
        if anchors is not None and (
            len(anchors) != count or any(a is not None and not 0 <= a < count for a in anchors)
        ):
            raise ValueError(f"anchors: {anchors}; need one anchor index (0..{count - 1}) or None per image")
        if anchors is not None and self._batch_sizes:
            raise ValueError(
                "anchors: cross-frame consistency is not available on a model server started with "
                "--compile (its attention is fused and compiled); start one without --compile"
            )

    @contextmanager
    def _cross_frame(self, anchors: list[int | None] | None) -> Iterator[None]:
        """Cross-frame attention to `anchors` for the duration of one pipeline call."""
        if anchors is None:
            yield
            return
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
                "dpmpp_2m": lambda: DPMSolverMultistepScheduler.from_config(
                    config, algorithm_type="dpmsolver++", solver_order=2
                ),
                "unipc": lambda: UniPCMultistepScheduler.from_config(config),
            }
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
