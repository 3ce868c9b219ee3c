"""Loading the models: device and dtype, weights (real, tiny or full-size random), the engine,
its warm-up, and the GetInfo answer that describes what was loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videoedit.v1 import model_service_pb2 as pb

from .backends.base import Editor, Segmenter
from .engine import BatchingConfig, ModelEngine
from .metrics import Metrics
from .validation import Limits
from .weights import ModelSource, resolve_sources

log = logging.getLogger("videoedit.modelserver")


def pick_device(device: str) -> str:
    """'auto'|'cpu'|'cuda'|'cuda:N' -> the device to load on."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str, gpu_default: str):
    """'auto'|name -> a torch dtype: `gpu_default` on a GPU (float16 where bfloat16 is missing),
    float32 on the CPU."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if not device.startswith("cuda"):
        return torch.float32
    if gpu_default == "bfloat16" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return getattr(torch, gpu_default)


def sam3_settings(args) -> dict:
    """SAM3 config overrides from the flags (unset flags keep the checkpoint's values)."""
    # Meta's video model re-seeds a confident track from the detector's mask every 16th frame
    # (sam3_video_base._recondition_masklets); transformers' default keeps the tracker's own mask.
    settings = {
        "hotstart_delay": args.sam3_hotstart_delay,
        "recondition_on_trk_masks": args.sam3_recondition == "tracks",
    }
    if args.sam3_score_threshold is not None:
        settings["score_threshold_detection"] = args.sam3_score_threshold
    if args.sam3_new_det_threshold is not None:
        settings["new_det_thresh"] = args.sam3_new_det_threshold
    return settings


@dataclass(frozen=True)
class LoadedModels:
    """Both backends as loaded, with where they came from and their dtypes (for GetInfo)."""

    segmenter: Segmenter
    editor: Editor
    device: str
    sam3: ModelSource
    pix2pix: ModelSource
    sam3_dtype: Any
    pix2pix_dtype: Any


def load_models(args: argparse.Namespace, limits: Limits, metrics: Metrics) -> tuple[ModelEngine, pb.ModelServerInfo]:
    """Load both models as the command line (cli.parse_args) says, warm them up, describe them."""
    # 1. The backends, on the device and in the dtypes asked for.
    loaded = _load_backends(args)
    editor = loaded.editor
    # 2. Edit batches come padded to powers of two up to the batcher's largest, so compiled graphs
    # are reused; every one is warmed up at a real crop size before SERVING.
    edit_batches: tuple[int, ...] = (1,)
    if args.compile:
        edit_batches = tuple(2**i for i in range(args.edit_max_batch_size.bit_length()))
        log.info("compiling InstructPix2Pix's UNet for batches of %s", "/".join(map(str, edit_batches)))
        editor.compile(edit_batches)
    if args.simulate_edit_delay_ms:
        from .backends.simulated import DelayedEditor

        log.warning("simulating a slow GPU: every Edit item takes at least %g ms", args.simulate_edit_delay_ms)
        editor = DelayedEditor(editor, args.simulate_edit_delay_ms / 1000)
    segmenter = loaded.segmenter
    if args.simulate_segment_delay_ms:
        from .backends.simulated import DelayedSegmenter

        log.warning("simulating a slow GPU: every Segment frame takes at least %g ms", args.simulate_segment_delay_ms)
        segmenter = DelayedSegmenter(segmenter, args.simulate_segment_delay_ms / 1000)
    # 3. The engine that batches calls for them, warmed up.
    batching = BatchingConfig(
        args.edit_max_batch_size,
        args.segment_frame_batch,
        args.max_batch_delay_ms,
        args.max_queued_calls,
        args.max_tracking_sessions,
        args.tracking_session_idle_s,
        int(args.edit_results_mb * 2**20),
    )
    engine = ModelEngine(segmenter, editor, batching, metrics)
    warmup_side = args.warmup_side or (64 if loaded.pix2pix.tiny else 512)
    warmup_seconds = engine.warm_up(warmup_side, edit_batches)
    log.info("warm-up batch ran in %.2f s", warmup_seconds)
    # 4. What GetInfo says of them.
    return engine, _server_info(dataclasses.replace(loaded, editor=editor), args, limits, batching, warmup_seconds)


def _load_backends(args: argparse.Namespace) -> LoadedModels:
    # Imported here: they import torch, which the server's port must not wait for.
    from .backends.instruct_pix2pix import InstructPix2PixEditor
    from .backends.sam3 import Sam3Segmenter

    device = pick_device(args.device)
    # SAM3 was trained and is served in bfloat16 (its range matters for the detector's scores);
    # InstructPix2Pix's UNet is fastest in float16, its VAE is guarded against overflow (editor).
    sam3_dtype = pick_dtype(args.sam3_dtype or args.dtype, device, "bfloat16")
    pix2pix_dtype = pick_dtype(args.pix2pix_dtype or args.dtype, device, "float16")
    overrides = sam3_settings(args)
    if args.random_weights == "full":
        from .backends.random_weights import full_size_instruct_pix2pix, full_size_sam3

        hotstart_delay = overrides.pop("hotstart_delay")
        segmenter = full_size_sam3(device, sam3_dtype, hotstart_delay=hotstart_delay, **overrides)
        editor = full_size_instruct_pix2pix(device, pix2pix_dtype)
        sam3_src = pix2pix_src = ModelSource("random-weights-full")
    else:
        sam3_src, pix2pix_src = resolve_sources(
            args.sam3, args.pix2pix, args.random_weights == "tiny", Path(args.cache_dir)
        )
        log.info(
            "loading SAM3 from %s (%s) and InstructPix2Pix from %s (%s) on %s",
            sam3_src.path_or_id,
            sam3_dtype,
            pix2pix_src.path_or_id,
            pix2pix_dtype,
            device,
        )
        segmenter = Sam3Segmenter.from_pretrained(sam3_src.path_or_id, device=device, dtype=sam3_dtype, **overrides)
        editor = InstructPix2PixEditor.from_pretrained(
            pix2pix_src.path_or_id, device=device, dtype=pix2pix_dtype, device_map=args.pix2pix_device_map
        )
    return LoadedModels(segmenter, editor, device, sam3_src, pix2pix_src, sam3_dtype, pix2pix_dtype)


def _server_info(
    loaded: LoadedModels, args: argparse.Namespace, limits: Limits, batching: BatchingConfig, warmup_seconds: float
) -> pb.ModelServerInfo:
    segmenter, editor, sam3_src, pix2pix_src = loaded.segmenter, loaded.editor, loaded.sam3, loaded.pix2pix
    sam3_dtype, pix2pix_dtype = loaded.sam3_dtype, loaded.pix2pix_dtype
    random = args.random_weights is not None or sam3_src.tiny
    return pb.ModelServerInfo(
        segmenter=pb.ModelInfo(
            source=sam3_src.path_or_id,
            architecture=segmenter.architecture,
            tiny=sam3_src.tiny,
            revision=sam3_src.revision,
            random_weights=random,
            settings={**segmenter.settings, "dtype": _name(sam3_dtype)},
        ),
        editor=pb.ModelInfo(
            source=pix2pix_src.path_or_id,
            architecture=editor.architecture,
            tiny=pix2pix_src.tiny,
            revision=pix2pix_src.revision,
            random_weights=random,
            settings={**editor.settings, "dtype": _name(pix2pix_dtype)},
        ),
        device=loaded.device,
        dtype=_name(pix2pix_dtype)
        if sam3_dtype == pix2pix_dtype
        else f"sam3 {_name(sam3_dtype)}, pix2pix {_name(pix2pix_dtype)}",
        segment_image_size=segmenter.image_size,
        max_segment_frames=limits.max_segment_frames,
        max_edit_batch=limits.max_edit_batch,
        max_message_bytes=args.max_message_mb * 1024 * 1024,
        edit_max_batch_size=batching.edit_max_batch_size,
        segment_frame_batch=batching.segment_frame_batch,
        max_batch_delay_ms=batching.max_delay_ms,
        max_queued_calls=batching.max_queued_calls,
        warmup_seconds=warmup_seconds,
        max_prompt_tokens=segmenter.max_prompt_tokens,
        max_tracking_sessions=batching.max_tracking_sessions,
        tracking_session_idle_s=batching.tracking_session_idle_s,
    )


def _name(dtype) -> str:
    return str(dtype).removeprefix("torch.")
