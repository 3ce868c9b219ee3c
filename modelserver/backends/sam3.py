"""SAM3 backend: text prompt -> per-frame instance masks for one chunk of consecutive frames.

Uses transformers' Sam3VideoModel video flow: the detector finds every instance matching the
text on each frame and the tracker carries them across the chunk with stable object ids. Each
call is one independent session (stateless server); ids are stitched across chunks by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from .base import Instance
from .sam3_kernels import install_cv_utils_kernel

logger = logging.getLogger(__name__)

# Why 15 (the upstream default): SAM3's "hotstart" heuristics drop spurious tracks (unmatched by
# the detector for `hotstart_unmatch_thresh`=8 frames) and late duplicates of an earlier track
# (`hotstart_dup_thresh`=8 frames) retroactively, by holding outputs back for `hotstart_delay`
# frames and hiding removed ids in the held-back frames. Holding back costs us nothing: segment()
# returns the whole chunk at once, and propagate_in_video_iterator flushes its buffer on the last
# frame of the session, so a 1-frame or 8-frame chunk still gets every frame (checked in tests).
# With a delay >= the chunk length the removal also applies to the whole chunk, so an object is
# either reported consistently across the chunk or not at all, which helps stitching ids across
# chunks. 0 would switch the heuristics off (more false positives/duplicates to edit); chunks
# shorter than 8 frames simply cannot trigger them. Values below 8 also lower both thresholds.
DEFAULT_HOTSTART_DELAY = 15
# Sam3VideoConfig fields GetInfo reports.
REPORTED_SETTINGS = ("hotstart_delay", "score_threshold_detection", "new_det_thresh", "det_nms_thresh")


class Sam3Segmenter:
    def __init__(self, model, processor, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        install_cv_utils_kernel()  # before the first forward: otherwise it tries the Hub
        self.model = model
        self.processor = processor
        self.device = device
        self.dtype = dtype

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        hotstart_delay: int = DEFAULT_HOTSTART_DELAY,
        **config_overrides,
    ) -> Sam3Segmenter:
        """Load a transformers-format SAM3 checkpoint (local dir or hub id, e.g. facebook/sam3).

        `config_overrides` set Sam3VideoConfig fields (e.g. `new_det_thresh=0.5`). A local
        directory never touches the network; hub ids obey HF_HUB_OFFLINE like any from_pretrained.
        """
        from transformers import Sam3VideoConfig, Sam3VideoModel, Sam3VideoProcessor

        install_cv_utils_kernel()
        if Path(path_or_id).is_file():
            raise ValueError(
                f"{path_or_id} is a single file (like the official sam3.pt); SAM3 is loaded with transformers "
                "from_pretrained, which needs a transformers-format checkpoint directory or hub id "
                "(e.g. facebook/sam3) holding config.json, model.safetensors and the processor files"
            )
        config = Sam3VideoConfig.from_pretrained(path_or_id)
        for key, value in config_overrides.items():
            if not hasattr(config, key):
                raise TypeError(f"unknown Sam3VideoConfig field {key!r}")
            setattr(config, key, value)
        config.hotstart_delay = hotstart_delay
        if hotstart_delay > 0:  # upstream requires both thresholds <= the delay
            config.hotstart_unmatch_thresh = min(config.hotstart_unmatch_thresh, hotstart_delay)
            config.hotstart_dup_thresh = min(config.hotstart_dup_thresh, hotstart_delay)
        model = Sam3VideoModel.from_pretrained(path_or_id, config=config, dtype=dtype).to(device).eval()
        processor = Sam3VideoProcessor.from_pretrained(path_or_id)
        size = processor.video_processor.size
        if (size["height"], size["width"]) != (config.image_size, config.image_size):
            raise ValueError(f"processor size {size} does not match model image_size {config.image_size}")
        return cls(model, processor, device=device, dtype=dtype)

    @property
    def image_size(self) -> int:
        """Square side (pixels) every frame is resized to inside the model: 1008 real, 112 tiny."""
        return int(self.model.config.image_size)

    @property
    def architecture(self) -> str:
        return type(self.model).__name__

    @property
    def settings(self) -> dict[str, str]:
        config = self.model.config
        return {k: str(getattr(config, k)) for k in REPORTED_SETTINGS}

    @property
    def max_prompt_tokens(self) -> int:
        """SAM3's text encoder has 32 positions (start and end tokens included); a longer prompt
        would make it fail outright."""
        return int(self.model.config.detector_config.text_config.max_position_embeddings)

    def fit_prompt(self, prompt: str) -> str:
        """`prompt` cut to the most whole words from its start that fit the text window (a single
        word longer than the window is cut between tokens)."""
        limit = self.max_prompt_tokens
        if self._tokens(prompt) <= limit:
            return prompt
        words = prompt.split()
        low, high = 0, len(words)  # the longest fitting prefix has between low and high words
        while low < high:
            middle = (low + high + 1) // 2
            if self._tokens(" ".join(words[:middle])) <= limit:
                low = middle
            else:
                high = middle - 1
        if low:
            return " ".join(words[:low])
        ids = self.processor.tokenizer(prompt, add_special_tokens=False)["input_ids"][:limit - 2]
        return self.processor.tokenizer.decode(ids).strip()

    def _tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text)["input_ids"])

    def segment(self, frames: list[np.ndarray], prompts: list[str], vision_batch_size: int = 1) -> list[list[Instance]]:
        """Find and track every instance of each prompt over a chunk of consecutive RGB frames.

        `vision_batch_size` frames go through the image backbone (most of SAM3's compute) in one
        forward pass; detection and tracking then run frame by frame as upstream does.
        Returns one list per input frame (empty where nothing was found).
        """
        if not frames:
            return []
        if not prompts or any(not p.strip() for p in prompts):
            raise ValueError("at least one non-empty text prompt is required")
        prompts = [self.fit_prompt(p) for p in prompts]
        first = frames[0]
        for f in frames:
            if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3 or f.shape != first.shape:
                raise ValueError("frames must be same-size RGB uint8 arrays of shape (H, W, 3)")

        results: list[list[Instance] | None] = [None] * len(frames)
        with torch.inference_mode():
            session = self.processor.init_video_session(
                video=np.stack(frames), inference_device=self.device, dtype=self.dtype
            )
            self.processor.add_text_prompt(session, list(prompts))
            with _batched_backbone(self.model.detector_model, session, vision_batch_size):
                for out in self.model.propagate_in_video_iterator(inference_session=session):
                    # Post-process as each frame is yielded: hotstart removals known by then are
                    # applied to it (the upstream semantics of the held-back buffer).
                    post = self.processor.postprocess_outputs(session, out)
                    results[out.frame_idx] = self._instances(post)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:  # would mean the propagation API changed; never silently drop frames
            raise RuntimeError(f"SAM3 produced no output for frames {missing}")
        return results  # type: ignore[return-value]

    @staticmethod
    def _instances(post: dict) -> list[Instance]:
        obj_to_prompt = {int(o): p for p, ids in post["prompt_to_obj_ids"].items() for o in ids}
        masks = post["masks"].cpu().numpy().astype(bool, copy=False)
        scores = post["scores"].float().cpu().numpy()
        instances = []
        for i, obj_id in enumerate(post["object_ids"].tolist()):
            # Boxes come from the final masks: upstream computes its boxes *before* applying the
            # non-overlap constraint, so they can disagree with the masks it returns.
            box = _mask_box(masks[i])
            if box is None:  # fully claimed by an overlapping object: nothing left to edit
                continue
            instances.append(
                Instance(
                    object_id=int(obj_id), prompt=obj_to_prompt[int(obj_id)], score=float(scores[i]),
                    box=box, mask=masks[i],
                )
            )
        return instances


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight (x0, y0, x1, y1) pixel-edge box of a bool mask, or None if the mask is empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


@contextmanager
def _batched_backbone(detector, session, batch_size: int) -> Iterator[None]:
    """Run the image backbone on `batch_size` frames at a time during one propagation.

    Upstream calls `detector.get_vision_features` with one frame at a time, in processing order.
    We answer each call from features computed for that frame and the next ones in one batched
    pass. Each call is checked against the frame we expect (the tensors must be equal); anything
    else, e.g. a future upstream change of order, falls back to the unbatched call, so batching
    can change speed but never results.
    """
    if batch_size <= 1:
        yield
        return
    unbatched = detector.get_vision_features
    cache: dict[int, object] = {}
    expected = 0
    num_frames = session.num_frames

    def get_vision_features(pixel_values, **kwargs):
        nonlocal expected
        idx = expected
        if kwargs or pixel_values.shape[0] != 1 or idx >= num_frames or not torch.equal(
                pixel_values[0], session.get_frame(idx)):
            return unbatched(pixel_values=pixel_values, **kwargs)
        if idx not in cache:
            cache.clear()  # bounded: at most one batch of features is held
            stop = min(idx + batch_size, num_frames)
            batch = unbatched(pixel_values=torch.stack([session.get_frame(i) for i in range(idx, stop)]))
            cache.update({i: _select(batch, i - idx, stop - idx) for i in range(idx, stop)})
        expected = idx + 1
        return cache.pop(idx)

    detector.get_vision_features = get_vision_features  # instance attribute shadows the method
    try:
        yield
    finally:
        del detector.get_vision_features


def _select(output, index: int, size: int):
    """Item `index` of a model output batched over `size` frames, keeping a batch dimension of 1."""
    def pick(value):
        if isinstance(value, torch.Tensor):
            return value[index : index + 1] if value.ndim and value.shape[0] == size else value
        if isinstance(value, (tuple, list)):
            return type(value)(pick(v) for v in value)
        return value

    return type(output)(**{key: pick(value) for key, value in output.items()})
