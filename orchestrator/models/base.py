"""The orchestrator's view of the models: what a stage may ask of them, and what comes back.

The pipeline talks to `Models`; `grpc_client.ModelClient` implements it over ModelService, and
`fake.FakeModels` in-process for tests. Detections are plain numpy at the frame's size, so
tracking and compositing never see protobuf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from videoedit.v1.contract import EditParams, FramePrompt

from .calls import ModelCalls


@dataclass
class Detection:
    """One object on one frame, in full-frame pixels."""

    object_id: int  # stable within one Segment call, or one persistent Tracker
    prompt: str
    score: float
    box: tuple[float, float, float, float]
    mask: np.ndarray  # bool HxW at the frame's size


@dataclass
class Segmentation:
    """What segment() found in a chunk of frames."""

    frames: list[list[Detection]]  # per frame
    prompts: list[str]  # the prompts as the model read them (each cut to its text window when longer)


@dataclass(frozen=True)
class ModelsInfo:
    """What the job needs to know about the models it runs on."""

    tiny: bool  # tiny random-weight models: outputs are not meaningful
    max_edit_batch: int  # crops per edit() call
    description: str  # one line for the job log: where the models come from, device, limits
    # What the models compute with (weights, revisions, settings; not where they run): equal on
    # every replica of one deployment, different as soon as a model or a setting changes.
    identity: str = ""


class Tracker(Protocol):
    """One video's frames tracked over many calls (one SAM3 tracking session on one replica).

    `persistent`: object ids stay stable across calls and tracks carry on; False when the model
    server keeps no sessions, and then every call stands alone (the caller overlaps the chunks and
    stitches ids). A persistent tracker raises `errors.TrackingLost` when its session is gone;
    the caller then opens another.
    """

    persistent: bool

    def segment(
        self, frames: Sequence[np.ndarray], first_frame: int, visual: Sequence[FramePrompt] = ()
    ) -> Segmentation:
        """Detections per frame of the tracker's frames `first_frame`... (counted from its first
        call's first frame; calls may overlap in time but must cover the frames in order).
        `visual`: clicks and boxes on these frames (frame indices counted as `first_frame` is, in
        the frames' pixels; vision.prompts says what they mean)."""
        ...

    def close(self) -> None:
        """Done with it: the model server may free the session (never raises)."""
        ...


class Models(Protocol):
    """The models a job runs on: SAM3 tracking and InstructPix2Pix editing, on the model servers
    (grpc_client.ModelClient) or in-process for tests (fake.FakeModels). Calls that run while a
    stage goes on are submitted to `calls`, so that `close` can end and wait for them."""

    calls: ModelCalls

    def info(self, wait_s: float = 0.0) -> ModelsInfo:
        """The models' info; with `wait_s`, first wait that long for them to be ready."""
        ...

    def unready(self) -> str | None:
        """Why no job should start now (the model servers are down or loading), None when they
        are ready: the orchestrator claims no job meanwhile."""
        ...

    def track(self, prompts: Sequence[str]) -> Tracker:
        """A new tracker of the objects the prompts name, all in one session (SAM3 reads them as
        Segmentation.prompts; each Detection says which prompt found it, "" for an object the
        tracker was prompted for by clicks alone). No prompts: objects come from clicks only."""
        ...

    def edit(
        self,
        crops: Sequence[np.ndarray],
        instruction: str,
        params: EditParams,
        *,
        seeds: Sequence[int],
        anchor: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """InstructPix2Pix over same-size RGB crops with `params` -> edited crops, same order; one
        seed per crop. `anchor`: a crop of the same size every crop's self-attention also attends
        to (cross-frame consistency)."""
        ...

    def close(self) -> None:
        """Done with the models: connections closed, so the calls still in flight end at once,
        and waited for (a few seconds at most)."""
        ...
