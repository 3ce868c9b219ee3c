"""SAM3 backend: text prompt -> per-frame instance masks over consecutive frames.

Uses transformers' Sam3VideoModel video flow: the detector finds every instance matching the
text on each frame and the tracker carries them on with stable object ids. A `TrackingSession`
takes a video's frames over many calls (the model server keeps one per job), so tracks, their
memories and the hotstart bookkeeping carry on from one chunk to the next instead of starting
cold; `segment` is a session of its own for one chunk. A session's memory is bounded: frames and
per-frame state older than what the tracker reads again are dropped as it goes (`_prune`).
Visual prompts (box exemplars, clicks and boxes for the tracker) go with the frames they are on
(`sam3_prompts`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from videoedit.v1.contract import FramePrompt

from .base import Instance, PromptKind
from .sam3_geometry import encode_geometry_always
from .sam3_kernels import install_cv_utils_kernel
from .sam3_prompts import (
    SessionPrompts,
    apply_tracker_prompt,
    exemplar_boxes,
    point_inputs,
    prompted_detection,
)

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
REPORTED_SETTINGS = (
    "hotstart_delay",
    "score_threshold_detection",
    "new_det_thresh",
    "det_nms_thresh",
    "recondition_on_trk_masks",
)


@dataclass
class TrackingSession:
    """One video's tracking state inside the model (transformers' Sam3VideoInferenceSession)."""

    state: object
    prompts: SessionPrompts
    frames_seen: int = 0  # frames tracked so far: the next call's first frame has this index


@dataclass
class _FramePrompts:
    """The visual prompts on one frame of a call."""

    exemplars: list[FramePrompt] = field(default_factory=list)
    tracker: list[FramePrompt] = field(default_factory=list)


class Sam3Segmenter:
    def __init__(self, model, processor, device: str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        install_cv_utils_kernel()  # before the first forward: otherwise it tries the Hub
        # text prompts as Meta's detector runs them, with a frame's box exemplars when it has some
        self._exemplars = encode_geometry_always(model.detector_model)
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
        if Path(path_or_id).is_file():  # Meta's sam3.pt: weights.resolve_sources converts it first
            raise ValueError(
                f"{path_or_id} is a single file; convert Meta's sam3.pt with `videoedit-modelserver convert-sam3 "
                "SRC DST` (or give it as SAM3_MODEL_PATH) and load the directory, or give a hub id"
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
        ids = self.processor.tokenizer(prompt, add_special_tokens=False)["input_ids"][: limit - 2]
        return self.processor.tokenizer.decode(ids).strip()

    def _tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text)["input_ids"])

    def open_session(self, prompts: list[str], video_frames: int | None = None) -> TrackingSession:
        """A tracking session for the text prompts (maybe none: then the objects are those visual
        prompts define): frames go in with `track`, in order, over any number of calls, and object
        ids stay stable across them. Its memory is bounded (see _prune).
        `video_frames`: the video's length when known; SAM3 scales object-pointer positions by it
        (up to its pointer window), so results match one whole-video call only with the same length.
        Unknown, the pointer window is used, as upstream's streaming mode does."""
        if any(not p.strip() for p in prompts):
            raise ValueError(f"text prompts must not be blank: {prompts}")
        prompts = [self.fit_prompt(p) for p in prompts]
        state = self.processor.init_video_session(inference_device=self.device, dtype=self.dtype)
        window = self.model.tracker_model.config.max_object_pointers_in_encoder
        state.processed_frames = _FrameWindow(video_frames if video_frames is not None else window)
        state.obj_with_new_inputs = []  # the tracker reads it; upstream sets it on a first detection only
        return TrackingSession(state, SessionPrompts.register(self.processor, state, prompts))

    def segment(
        self,
        frames: list[np.ndarray],
        prompts: list[str],
        vision_batch_size: int = 1,
        visual_prompts: Sequence[FramePrompt] = (),
        on_prompt: Callable[[PromptKind], None] | None = None,
    ) -> list[list[Instance]]:
        """Find and track every instance of each prompt over a chunk of consecutive RGB frames: a
        session of its own (ids are stable within the call only). One list per frame.
        `visual_prompts` count their frames within the call (see `track`)."""
        if not prompts and not visual_prompts:
            raise ValueError("a call without a tracking session needs a text prompt or a visual prompt")
        session = self.open_session(prompts, video_frames=len(frames))
        return self.track(session, frames, vision_batch_size, visual_prompts, on_prompt) if frames else []

    def track(
        self,
        session: TrackingSession,
        frames: list[np.ndarray],
        vision_batch_size: int = 1,
        visual_prompts: Sequence[FramePrompt] = (),
        on_prompt: Callable[[PromptKind], None] | None = None,
    ) -> list[list[Instance]]:
        """The session's next frames -> instances per frame (one list per frame, maybe empty).

        `vision_batch_size` frames go through the image backbone (most of SAM3's compute) in one
        forward pass; detection and tracking then run frame by frame as upstream does. Outputs are
        held back `hotstart_delay` frames (upstream's propagate_in_video_iterator) and flushed at
        the end of the call, so hotstart removals known by then apply to them.

        `visual_prompts` are on frames of this call, their `frame_index` counted within the
        session (this call's first frame is `session.frames_seen`), in pixels of the frames as
        given. Each is applied on its frame (see sam3_prompts), and `on_prompt` is told its kind.
        """
        if not frames:
            return []
        first = frames[0]
        for f in frames:
            if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3 or f.shape != first.shape:
                raise ValueError("frames must be same-size RGB uint8 arrays of shape (H, W, 3)")
        state = session.state
        height, width = first.shape[:2]
        if state.video_height is not None and (state.video_height, state.video_width) != (height, width):
            raise ValueError(
                f"frames are {width}x{height}, but this tracking session's are {state.video_width}x{state.video_height}"
            )
        start = session.frames_seen
        by_frame = _by_frame(visual_prompts, range(start, start + len(frames)), width, height)
        state.video_height, state.video_width = height, width
        with torch.inference_mode():
            pixels = self.processor.video_processor(
                videos=np.stack(frames), device=self.device, return_tensors="pt"
            ).pixel_values_videos[0]
            for offset, frame in enumerate(pixels):
                state.add_new_frame(frame, start + offset)
            held: list = []
            results: list[list[Instance]] = []
            delay = self.model.hotstart_delay
            with (
                _batched_backbone(
                    self.model.detector_model, state, range(start, start + len(frames)), vision_batch_size
                ),
                prompted_detection(self.model, session.prompts, self._exemplars),
            ):
                for index in range(start, start + len(frames)):
                    here = by_frame.get(index, _FramePrompts())
                    with self._exemplars.on(exemplar_boxes(here.exemplars, width, height, self.device)):
                        # frame_idx, not frame=: upstream's streaming mode would switch hotstart off.
                        out = self.model(inference_session=state, frame_idx=index)
                    state.hotstart_removed_obj_ids.update(out.removed_obj_ids)
                    kinds = [PromptKind.EXEMPLAR] * len(here.exemplars)
                    kinds += [self._prompt_tracker(session, out, prompt, width, height) for prompt in here.tracker]
                    if on_prompt is not None:
                        for kind in kinds:
                            on_prompt(kind)
                    held.append(out)
                    if len(held) >= max(delay, 1):
                        # Post-process as each frame leaves the buffer: hotstart removals known by then
                        # are applied to it (the upstream semantics of the held-back buffer).
                        results.append(self._instances(session, held.pop(0)))
                    session.frames_seen = index + 1
                    _prune(state, self.model, index)
            results += [self._instances(session, out) for out in held]
        return results

    def _prompt_tracker(
        self, session: TrackingSession, out, prompt: FramePrompt, width: int, height: int
    ) -> PromptKind:
        inputs = point_inputs(prompt, width, height, self.image_size, self.device)
        return apply_tracker_prompt(self.model, session.state, session.prompts, out, prompt, inputs)

    def _instances(self, session: TrackingSession, out) -> list[Instance]:
        post = self.processor.postprocess_outputs(session.state, out)
        obj_to_prompt = {
            int(o): session.prompts.reported(p) for p, ids in post["prompt_to_obj_ids"].items() for o in ids
        }
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
                    object_id=int(obj_id),
                    prompt=obj_to_prompt[int(obj_id)],
                    score=float(scores[i]),
                    box=box,
                    mask=masks[i],
                )
            )
        return instances


class _FrameWindow(dict):
    """The session's preprocessed frames, keeping only those not tracked yet.

    `len()` is the video's length (at least `length`, at least every frame added): upstream reads
    it (`num_frames`) to scale object-pointer positions and to decide how far back they reach.
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        self.added = length

    def __setitem__(self, index: int, frame) -> None:
        super().__setitem__(index, frame)
        self.added = max(self.added, index + 1)

    def __len__(self) -> int:
        return self.added


def _by_frame(prompts: Sequence[FramePrompt], frames: range, width: int, height: int) -> dict[int, _FramePrompts]:
    """The call's visual prompts by frame, each checked against the call's frames (the servicer
    checks them first, naming the field; this keeps direct callers from corrupting a session)."""
    by_frame: dict[int, _FramePrompts] = {}
    for i, prompt in enumerate(prompts):
        if prompt.frame_index not in frames:
            raise ValueError(
                f"visual_prompts[{i}].frame_index: {prompt.frame_index} is not one of this call's "
                f"frames {frames.start}-{frames.stop - 1}"
            )
        if problem := prompt.problem(width, height):
            raise ValueError(f"visual_prompts[{i}]: {problem}")
        here = by_frame.setdefault(prompt.frame_index, _FramePrompts())
        (here.exemplars if prompt.exemplar else here.tracker).append(prompt)
    return by_frame


def _prune(state, model, index: int) -> None:
    """Drop what tracking frames after `index` never reads again, so a session's memory does not
    grow with the video: the frame itself, per-object outputs older than the memory and pointer
    windows (num_maskmem, max_object_pointers_in_encoder frames), conditioning frames beyond the
    `max_cond_frame_num` most recent (all memory attention selects going forward), per-frame
    scores/suppressions and hotstart frame lists beyond their thresholds (only their lengths
    count). Results are those of one whole-video session (tested) while no track has more than
    `max_cond_frame_num` conditioning frames older than those windows; past that, upstream would
    also attend to every old conditioning frame's object pointer, a cost growing with the video,
    and here only the most recent ones count."""
    state.processed_frames.pop(index, None)
    tracker = model.tracker_model.config
    oldest = index - max(tracker.num_maskmem, tracker.max_object_pointers_in_encoder)
    for outputs in state.output_dict_per_obj.values():
        _drop_before(outputs["non_cond_frame_outputs"], oldest)
        cond = outputs["cond_frame_outputs"]
        for frame in sorted(cond)[: -max(tracker.max_cond_frame_num, 1)]:
            if frame < oldest:
                del cond[frame]
    for per_obj in (state.frames_tracked_per_obj, state.mask_inputs_per_obj, state.point_inputs_per_obj):
        for frames in per_obj.values():
            _drop_before(frames, oldest)
    _drop_before(state.obj_id_to_tracker_score_frame_wise, oldest)
    _drop_before(state.suppressed_obj_ids, oldest)
    for lists, keep in (
        (state.unmatched_frame_inds, model.hotstart_unmatch_thresh),
        (state.overlap_pair_to_frame_inds, model.hotstart_dup_thresh),
    ):
        for frames in lists.values():
            del frames[: -max(keep, 1)]


def _drop_before(per_frame: dict, oldest: int) -> None:
    for frame in [f for f in per_frame if f < oldest]:
        del per_frame[frame]


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight (x0, y0, x1, y1) pixel-edge box of a bool mask, or None if the mask is empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


@contextmanager
def _batched_backbone(detector, state, indices: range, batch_size: int) -> Iterator[None]:
    """Run the image backbone on `batch_size` frames at a time while frames `indices` are tracked.

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
    expected = indices.start

    def get_vision_features(pixel_values, **kwargs):
        nonlocal expected
        idx = expected
        if (
            kwargs
            or pixel_values.shape[0] != 1
            or idx not in indices
            or not torch.equal(pixel_values[0], state.get_frame(idx))
        ):
            return unbatched(pixel_values=pixel_values, **kwargs)
        if idx not in cache:
            cache.clear()  # bounded: at most one batch of features is held
            stop = min(idx + batch_size, indices.stop)
            batch = unbatched(pixel_values=torch.stack([state.get_frame(i) for i in range(idx, stop)]))
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
