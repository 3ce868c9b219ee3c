"""Visual prompts in a SAM3 tracking session: box exemplars for the detector, clicks for the tracker.

Sam3VideoModel only takes text; these pieces add what SAM3 itself can do with boxes and points:

- A box exemplar on frame f (FramePrompt without object_id) goes with the detector's text prompts
  on f only (`sam3_geometry.Exemplars`). A session without text detects with SAM3's "visual"
  prompt (what Sam3Processor uses for boxes without text), and only on frames with exemplars.
- Points and a box with an object_id are the tracker's prompt for that object on that frame
  (`apply_tracker_prompt`), run after the frame's detect-and-track step, as SAM2's clicks are: the
  object's mask there comes from the prompt (with its previous mask logits, for a correction), it
  becomes a conditioning frame of that object, and tracking carries on from it.
- `prompted_detection` keeps the session's detector and hotstart heuristics from working against
  them while a `track` call runs: only text prompts (and "visual" on exemplar frames) are detected,
  and objects the detector cannot re-find (those defined by prompts) are never removed or hidden
  for not matching a detection.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

from videoedit.v1.contract import FramePrompt

from .base import PromptKind
from .sam3_geometry import Exemplars

# SAM3's text for box exemplars without a text prompt (Sam3Processor._resolve_text_prompts).
VISUAL_TEXT = "visual"
# The session prompt of objects started by a tracker prompt: never detected, reported as "".
TRACKER_TEXT = ""


@dataclass
class SessionPrompts:
    """A session's prompts by their id in the transformers session (`state.prompts`)."""

    text: list[str]  # the caller's text prompts, as Instance.prompt reports them
    text_ids: list[int]  # detected on every frame
    visual_id: int | None  # detected on exemplar frames only; set when there is no text
    tracker_id: int  # the prompt of objects started by tracker prompts; never detected
    prompted: set[int] = field(default_factory=set)  # object ids given a tracker prompt

    @classmethod
    def register(cls, processor, state, text: list[str]) -> SessionPrompts:
        detected = list(text) or [VISUAL_TEXT]
        processor.add_text_prompt(state, detected)  # tokenized once, detected with cached embeddings
        ids = [state.add_prompt(p) for p in detected]
        return cls(list(text), ids if text else [], None if text else ids[0], state.add_prompt(TRACKER_TEXT))

    def detected(self, exemplars: bool) -> list[int]:
        """The prompt ids the detector runs on a frame (with or without box exemplars)."""
        if self.text_ids:
            return self.text_ids
        return [self.visual_id] if exemplars and self.visual_id is not None else []

    def reported(self, text: str) -> str:
        """Instance.prompt of an object found by the session prompt `text`: the caller's text
        prompt, or "" for objects defined by visual prompts alone."""
        return text if text in self.text else ""

    def protected(self, state, obj_id: int) -> bool:
        """An object the detector is not expected to re-find on later frames: started or
        corrected by a tracker prompt, or found by a box exemplar without text."""
        if obj_id in self.prompted:
            return True
        return state.obj_id_to_prompt_id.get(obj_id) not in self.text_ids


def exemplar_boxes(prompts: Sequence[FramePrompt], width: int, height: int, device) -> torch.Tensor | None:
    """Box exemplars of one frame as the detector takes them: (N, 4) normalized (cx, cy, w, h).
    Normalizing by the frame as sent is exact: frames are resized to the model's square without
    keeping their aspect."""
    boxes = [p.box for p in prompts if p.box is not None]
    if not boxes:
        return None
    xyxy = torch.tensor(boxes, dtype=torch.float32, device=device)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=device)
    x0, y0, x1, y1 = (xyxy / scale).unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def point_inputs(prompt: FramePrompt, width: int, height: int, image_size: int, device) -> dict[str, torch.Tensor]:
    """A tracker prompt as the tracker's prompt encoder takes it (SAM2's point_inputs): the box as
    two corner points (labels 2, 3) first, then the clicks (1 positive, 0 negative), in pixels of
    the model's square input. The encoder adds 0.5 to every coordinate (it takes pixel indices);
    ours are pixel-edge coordinates, so 0.5 is taken off after scaling."""
    coords: list[tuple[float, float]] = []
    labels: list[int] = []
    if prompt.box is not None:
        x0, y0, x1, y1 = prompt.box
        coords += [(x0, y0), (x1, y1)]
        labels += [2, 3]
    coords += [(p.x, p.y) for p in prompt.points]
    labels += [1 if p.positive else 0 for p in prompt.points]
    xy = torch.tensor(coords, dtype=torch.float32, device=device)
    xy = xy * torch.tensor([image_size / width, image_size / height], device=device) - 0.5
    return {
        "point_coords": xy.view(1, 1, -1, 2),
        "point_labels": torch.tensor(labels, dtype=torch.int32, device=device).view(1, 1, -1),
    }


@contextmanager
def prompted_detection(model, prompts: SessionPrompts, exemplars: Exemplars) -> Iterator[None]:
    """While a session's frames are tracked: the detector runs the prompts `prompts.detected`
    names for the frame (none at all without text or exemplars: the frame is only tracked), and
    the hotstart heuristics leave protected objects alone."""
    plain_detection, plain_hotstart = model.run_detection, model._process_hotstart

    def run_detection(inference_session, vision_embeds):
        ids = prompts.detected(exemplars.boxes is not None)
        if not ids:
            return {}  # upstream would raise: no prompts to detect
        # upstream loops over every session prompt: give it a view holding only these
        view = SimpleNamespace(
            prompts={i: inference_session.prompts[i] for i in ids},
            prompt_input_ids=inference_session.prompt_input_ids,
            prompt_embeddings=inference_session.prompt_embeddings,
            prompt_attention_masks=inference_session.prompt_attention_masks,
        )
        return plain_detection(inference_session=view, vision_embeds=vision_embeds)

    def process_hotstart(*, inference_session, frame_idx, unmatched_trk_obj_ids, empty_trk_obj_ids, **kwargs):
        keep = {o for o in inference_session.obj_ids if prompts.protected(inference_session, o)}
        removed, metadata = plain_hotstart(
            inference_session=inference_session,
            frame_idx=frame_idx,
            # not matching a detection says nothing about them: no unmatched count, no keep-alive loss
            unmatched_trk_obj_ids=[o for o in unmatched_trk_obj_ids if o not in keep],
            empty_trk_obj_ids=[o for o in empty_trk_obj_ids if o not in keep],
            **kwargs,
        )
        spared = removed & keep  # a later duplicate of another track: the prompt says it is not
        removed -= spared
        metadata["removed_obj_ids"] -= spared
        metadata["suppressed_obj_ids"][frame_idx] -= keep
        return removed, metadata

    model.run_detection, model._process_hotstart = run_detection, process_hotstart
    try:
        yield
    finally:
        del model.run_detection, model._process_hotstart  # back to the class's methods


def apply_tracker_prompt(model, state, prompts: SessionPrompts, out, prompt: FramePrompt, inputs: dict) -> PromptKind:
    """Prompt the tracker for `prompt.object_id` on `prompt.frame_index`, right after that frame's
    detect-and-track step `out` (whose vision features the session still caches), and put the
    prompted mask in `out`.

    A tracked object is corrected SAM2-style: its mask on the frame is predicted again from the
    prompt with its memory and its mask logits there as the mask prompt. An unknown id starts a new
    object from the prompt alone. Either way the frame becomes the object's conditioning frame,
    so later frames are tracked from it."""
    from transformers.models.sam3_video.modeling_sam3_video import fill_holes_in_mask_scores

    tracker, frame, obj_id = model.tracker_model, prompt.frame_index, prompt.object_id
    kind = PromptKind.CORRECTION if obj_id in state.obj_ids else PromptKind.NEW_OBJECT
    obj_idx = state.obj_id_to_idx(obj_id)  # registers a new object, last in obj_ids
    outputs = state.output_dict_per_obj[obj_idx]
    previous = outputs["non_cond_frame_outputs"].pop(frame, None) or outputs["cond_frame_outputs"].get(frame)
    current = tracker._run_single_frame_inference(
        inference_session=state,
        frame_idx=frame,
        obj_idx=obj_idx,
        batch_size=1,
        # memory-conditioned when the frame was tracked, as SAM2's add_new_points does
        is_init_cond_frame=frame not in state.frames_tracked_per_obj[obj_idx],
        point_inputs=inputs,
        mask_inputs=None,
        reverse=False,
        prev_sam_mask_logits=None if previous is None else _mask_logits(state, previous),
    )
    state.store_output(obj_idx, frame, output_value=current, is_conditioning_frame=True)
    tracker._batch_encode_memories(
        inference_session=state,
        frame_idx=frame,
        objects_needing_memory_encoding=[obj_idx],
        high_res_masks_for_memory=[current["high_res_masks"]],
        object_score_logits_for_memory=[current["object_score_logits"]],
        is_mask_from_pts_per_obj=[True],
    )
    if kind is PromptKind.NEW_OBJECT:
        _start_object(model, state, prompts, out, obj_id, frame, current["object_score_logits"])
    prompts.prompted.add(obj_id)
    # the frame's output as upstream makes tracker masks: holes and sprinkles filled
    out.obj_id_to_mask[obj_id] = fill_holes_in_mask_scores(current["pred_masks"], max_area=model.fill_hole_area)[0]
    out.suppressed_obj_ids.discard(obj_id)
    state.removed_obj_ids.discard(obj_id)
    state.hotstart_removed_obj_ids.discard(obj_id)
    return kind


def _start_object(model, state, prompts: SessionPrompts, out, obj_id: int, frame: int, score_logits) -> None:
    """The metadata Sam3VideoModel keeps for every object (what its detector sets for a new
    detection), for an object a tracker prompt started."""
    score = float(score_logits.float().sigmoid().flatten()[0])
    state.obj_id_to_prompt_id[obj_id] = prompts.tracker_id
    state.max_obj_id = max(state.max_obj_id, obj_id)  # detections get ids above it
    state.obj_first_frame_idx.setdefault(obj_id, frame)
    state.trk_keep_alive[obj_id] = model.max_trk_keep_alive
    state.obj_id_to_score[obj_id] = out.obj_id_to_score[obj_id] = score
    out.obj_id_to_tracker_score[obj_id] = score
    if obj_id not in out.object_ids:
        out.object_ids.append(obj_id)


def _mask_logits(state, output: dict) -> torch.Tensor:
    """An earlier prediction's mask logits as SAM2 feeds them back with new clicks (clamped)."""
    return output["pred_masks"].to(state.inference_device).clamp(-32.0, 32.0)
