"""The models behind the RPCs: one dynamic batcher per model, warm-up and drain.

Edit: crops from concurrent calls are merged into one pipeline call when they share the
image size and EditParams (guidance scales, steps, scheduler: what one diffusers call can take);
each crop keeps its own instruction and seed, so a merged batch gives every call what it would
get alone.

Segment: calls run one at a time, each on its own chunk or carrying on a tracking session
(sessions.py: the call waits for its turn first, and the worker checks it again right before
tracking); inside a call the image backbone (most of SAM3's compute) runs `segment_frame_batch`
frames per forward pass. The queue still gives Segment backpressure, deadlines and cancellation.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from videoedit.v1.contract import EditParams

from .backends import Editor, PromptKind, Segmenter
from .batching import DynamicBatcher
from .edit_results import EditResults, item_key
from .metrics import Metrics
from .sessions import Session, TrackingSessions
from .validation import EditCall, SegmentCall

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchingConfig:
    """How the engine batches and bounds work (the model server's command-line flags)."""

    edit_max_batch_size: int = 8  # crops per InstructPix2Pix call
    segment_frame_batch: int = 8  # frames per SAM3 backbone pass
    max_delay_ms: float = 10.0  # how long the first call of a batch waits for company
    max_queued_calls: int = 64  # per model; more -> RESOURCE_EXHAUSTED
    max_tracking_sessions: int = 8  # SAM3 tracking sessions held at once (0: none)
    tracking_session_idle_s: float = 300.0  # a session without calls for this long ends
    edit_results_bytes: int = 256 << 20  # edited crops kept for calls sent again (edit_results.py)


@dataclass(frozen=True)
class EditBatchKey:
    """What Edit calls must share to be merged into one batch: the crops' shape and EditParams."""

    shape: tuple[int, ...]
    params: EditParams


@dataclass(frozen=True)
class EditItem:
    """One crop of an Edit call in the queue, with its instruction, seed and the call's anchor."""

    image: np.ndarray
    instruction: str
    seed: int
    anchor: EditItem | None = None  # the call's anchor crop, denoised beside it in the same batch
    key: bytes = b""  # edit_results.item_key: where its result is kept


class ModelEngine:
    """The models of one model server behind their queues. Segment and Edit calls from the
    servicer's RPC threads go through one DynamicBatcher per model (deadlines, cancellation,
    backpressure); Edit crops of concurrent calls that one diffusers call can take together (same
    EditBatchKey) are merged into one batch, and Segment calls that carry on a tracking session
    wait for their turn in TrackingSessions. It warms the models up before the server reports
    SERVING, and drains both queues on shutdown."""

    def __init__(self, segmenter: Segmenter, editor: Editor, batching: BatchingConfig, metrics: Metrics):
        self.segmenter = segmenter
        self.editor = editor
        self.batching = batching
        self.metrics = metrics
        common = dict(
            max_delay_s=batching.max_delay_ms / 1000, max_queued_calls=batching.max_queued_calls, metrics=metrics
        )
        self.segment_queue = DynamicBatcher(
            "segment", self._segment_batch, max_batch_size=1, item_weight=lambda item: len(item[0].frames), **common
        )
        self.edit_queue = DynamicBatcher(
            "edit", self._edit_batch, max_batch_size=batching.edit_max_batch_size, **common
        )
        self.edit_results = EditResults(batching.edit_results_bytes)
        self.sessions = TrackingSessions(
            segmenter.open_session if segmenter is not None else None,
            batching.max_tracking_sessions,
            batching.tracking_session_idle_s,
            metrics,
        )

    def segment(
        self,
        call: SegmentCall,
        deadline: float | None = None,
        on_cancel: Callable[[Callable[[], None]], Any] | None = None,
    ) -> list[list]:
        """Per-frame instances of one chunk. `on_cancel(fn)` registers fn to run if the client leaves."""
        session = None
        if call.session is not None:
            ref = call.session
            if not call.frames:  # a close with nothing to track: forget the session now
                self.sessions.close_now(ref.id)
                return []
            session = self.sessions.take_turn(ref.id, ref.first_frame, call.prompts, deadline)
        # A fresh object as key: a chunk is never merged with another call's chunk.
        return self.segment_queue(object(), [(call, session)], deadline, on_cancel)[0]

    def edit(
        self,
        call: EditCall,
        deadline: float | None = None,
        on_cancel: Callable[[Callable[[], None]], Any] | None = None,
    ) -> list[np.ndarray]:
        key = EditBatchKey(call.images[0].shape, call.params)
        # A call's anchor goes with each of its items (a batch may hold part of a call): it is
        # denoised once per batch it is in, with the call's first seed, and never returned.
        anchor = None
        if call.anchor is not None:
            anchor = EditItem(call.anchor, call.instruction, call.seeds[0])
            anchor_key = item_key(call.anchor, call.instruction, call.seeds[0], call.params)
        items = [
            EditItem(
                image,
                call.instruction,
                seed,
                anchor,
                item_key(image, call.instruction, seed, call.params, anchor_key if anchor else b""),
            )
            for image, seed in zip(call.images, call.seeds, strict=True)
        ]
        kept = [self.edit_results.get(item.key) if self.edit_results.max_bytes else None for item in items]
        missing = [item for item, result in zip(items, kept, strict=True) if result is None]
        if len(missing) < len(items):
            self.metrics.edit_results_reused.inc(len(items) - len(missing))
        computed = iter(self.edit_queue(key, missing, deadline, on_cancel) if missing else [])
        return [result if result is not None else next(computed) for result in kept]

    def warm_up(self, edit_side: int = 64, edit_batches: Sequence[int] = (1,)) -> float:
        """A batch through each model (CUDA context, kernels, allocator, compiled graphs): Edit at
        `edit_side` pixels in each of `edit_batches`; returns seconds."""
        started = time.monotonic()
        frame = np.full((64, 64, 3), 127, np.uint8)
        self.segment(SegmentCall([frame, frame], ["object"]))
        crop = np.full((edit_side, edit_side, 3), 127, np.uint8)
        for size in edit_batches:
            self.edit(EditCall([crop] * size, "warm up", EditParams(1.5, 7.5, 1), list(range(size))))
        return time.monotonic() - started

    def close(self, timeout: float | None = None) -> bool:
        """Refuse new calls and finish queued ones; True if both queues drained in time."""
        ends = [q.close(timeout) for q in (self.segment_queue, self.edit_queue)]
        self.sessions.close()
        return all(ends)

    def _segment_batch(self, _key: Hashable, calls: list[tuple[SegmentCall, Session | None]]) -> list[list[list]]:
        return [self._segment_one(call, session) for call, session in calls]

    def _segment_one(self, call: SegmentCall, session: Session | None) -> list[list]:
        kinds: Counter[PromptKind] = Counter()

        def applied(kind: PromptKind) -> None:
            kinds[kind] += 1
            self.metrics.visual_prompts.labels(kind.value).inc()

        options = dict(
            vision_batch_size=self.batching.segment_frame_batch, visual_prompts=call.visual_prompts, on_prompt=applied
        )
        if session is None:
            found = self.segmenter.segment(call.frames, call.prompts, **options)
            self._log_prompts(call, kinds)
            return found
        self.sessions.check_turn(session, call.session.first_frame)
        try:
            found = self.segmenter.track(session.state, call.frames, **options)
        except Exception as err:  # its state may be half-updated: the session cannot go on
            self.sessions.end(session, f"tracking failed: {type(err).__name__}: {err}", reason="failed")
            raise
        self.sessions.tracked(session, len(call.frames))
        self._log_prompts(call, kinds)
        if call.session.close:
            self.sessions.end(session, "closed by the caller", reason="closed")
        return found

    @staticmethod
    def _log_prompts(call: SegmentCall, kinds: Counter[PromptKind]) -> None:
        if not call.visual_prompts:
            return
        where = f"session {call.session.id!r}" if call.session is not None else "a call without a session"
        counts = ", ".join(f"{kind.value} {kinds[kind]}" for kind in PromptKind)
        log.info("Segment: %d visual prompts in %s (%s)", len(call.visual_prompts), where, counts)

    def _edit_batch(self, key: EditBatchKey, items: list[EditItem]) -> list[np.ndarray]:
        batch = list(items)
        place: dict[int, int] = {}  # id(anchor) -> its index in the batch (after the items)
        for item in items:
            if item.anchor is not None and id(item.anchor) not in place:
                place[id(item.anchor)] = len(batch)
                batch.append(item.anchor)
        anchors = [place[id(i.anchor)] if i.anchor is not None else None for i in batch] if place else None
        edited = self.editor.edit(
            [i.image for i in batch],
            [i.instruction for i in batch],
            key.params,
            seeds=[i.seed for i in batch],
            anchors=anchors,
        )
        if self.edit_results.max_bytes:  # kept even if the call's client has left meanwhile
            for item, result in zip(items, edited, strict=False):
                self.edit_results.put(item.key, result)
        return edited[: len(items)]
