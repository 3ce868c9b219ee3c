"""What several tests share: the sample job settings, reading videos back, grpcurl, and waiting
for an event (never for a fixed time).

Imported by the tests as `tests.helpers`; fixtures live in conftest.py.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import av
import numpy as np

from orchestrator.jobs.validation import parse_extra
from orchestrator.media.decode import VideoInfo, upright_rgb
from orchestrator.media.mask_store import MaskStore
from orchestrator.models import Models
from orchestrator.pipeline import output_paths, run_pipeline
from orchestrator.pipeline.concurrency import StopSignal
from orchestrator.pipeline.context import JobContext, OutputPaths
from orchestrator.pipeline.masking import find_objects
from orchestrator.pipeline.propagating import mask_store, object_masks, propagate
from orchestrator.request import CheckedRequest, EditOptions, JobStatus, VideoEditRequest
from videoedit.v1 import video_edit_pb2 as pb

REPO_ROOT = Path(__file__).resolve().parents[1]

# Small and quick, but a real H.264 clip with audio.
CLIP_FRAMES, CLIP_WIDTH, CLIP_HEIGHT, CLIP_FPS = 12, 160, 120, 24
# For stacks whose tests run one input and prompt again and need it tracked again each time (faults
# during tracking, resuming it): the mask cache would serve the second job without tracking.
NO_MASK_CACHE = {"VIDEOEDIT_MASK_CACHE_MB": "0"}
# Request fields that keep tiny-model jobs fast on 2 CPU cores.
FAST_JOB = dict(num_inference_steps=2, extra={"edit_size": "64", "chunk_size": "6"})

# Generous: a busy 2-core machine can be many times slower than a quiet one.
EVENT_TIMEOUT_S = 300.0

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout_s: float = EVENT_TIMEOUT_S, poll_s: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy (returned); fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(poll_s)


def wait_for_stage(client, job_id: str, *stages: int):
    """Follow WatchStatus until job `job_id` enters one of `stages` (pb.JobStatus values) and
    return that status. Watchers see every stage, however brief, so this never misses one."""
    last = None
    for last in client.watch(job_id):
        if last.status in stages:
            return last
    names = ", ".join(pb.JobStatus.Name(s) for s in stages)
    raise AssertionError(f"job {job_id} ended without entering {names}; last status: {last}")


# --- running stages in-process ---


class RecordedProgress:
    """A pipeline Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.stages: list[JobStatus] = []
        self.totals: list[int | None] = []
        self.done: list[int] = []
        self.stage_starts: dict[JobStatus, int] = {}  # stage -> index in `done` of its first report
        self.media: dict | None = None

    def probed(self, media: dict) -> None:
        self.media = media

    def stage(self, stage: JobStatus, message: str, total_frames: int | None = None) -> None:
        self.stages.append(stage)
        self.totals.append(total_frames)
        self.stage_starts[stage] = len(self.done)

    def advance(self, done: int, message: str | None = None) -> None:
        self.done.append(done)

    def complete(self, done: int, message: str | None = None) -> None:
        self.done.append(done)


def job_context(
    workdir: Path, info: VideoInfo, models: Models, options: EditOptions = EditOptions(), **request_fields
) -> JobContext:
    """A stage's context for the video `info` (request fields: the original worker's defaults unless given)."""
    fields = {
        **dict(
            job_id="unit", input_video_path=info.path, output_dir=workdir, mask_prompt="car", edit_prompt="make it blue"
        ),
        **request_fields,
    }
    return JobContext(
        VideoEditRequest(**fields), options, info, models, RecordedProgress(), logging.getLogger("tests"), workdir
    )


def run_fake_job(
    tmp_path: Path,
    clip: Path,
    models: Models,
    extra: dict[str, str],
    progress: RecordedProgress | None = None,
    stop: StopSignal | None = None,
    **request_fields,
) -> tuple[OutputPaths, Path]:
    """A whole job in-process (run_pipeline, one thread) on `clip`, outputs under tmp_path/out;
    returns its outputs and its work directory (kept: the masks and edits it left)."""
    fields = dict(job_id="unit", mask_prompt="", edit_prompt="", num_inference_steps=2, erode_kernel=0)
    request = VideoEditRequest(
        input_video_path=clip,
        output_dir=tmp_path / "out",
        apply_smoothing=False,
        extra=extra,
        **{**fields, **request_fields},
    )
    request.output_dir.mkdir(parents=True, exist_ok=True)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    paths = run_pipeline(
        CheckedRequest(request, parse_extra(extra)),
        models,
        progress or RecordedProgress(),
        logging.getLogger("tests.job"),
        work,
        stop or StopSignal(),
        output_paths(request),
        threads=1,
        attempt=2,
    )
    return paths, work


# --- videos ---


def tracked_masks(ctx: JobContext) -> MaskStore:
    """Masking then propagating, as the driver runs them: the job's masks."""
    store = mask_store(ctx, 0)
    with object_masks(ctx) as objects:
        propagate(ctx, find_objects(ctx), [store], objects)
    return store


def as_rgb(frames: Sequence[np.ndarray | av.VideoFrame]) -> list[np.ndarray]:
    """Output frames (saving.output_frames) as RGB: those without an edit come as decoded."""
    return [upright_rgb(f) if isinstance(f, av.VideoFrame) else f for f in frames]


def write_lossless(path: Path, frames: Sequence[np.ndarray], fps: int = 24) -> Path:
    """RGB frames as an FFV1 video: decoding gives back exactly these pixels."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")))
        out.mux(stream.encode(None))
    return path


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def streams(path: Path) -> dict[str, str]:
    with av.open(str(path)) as container:
        return {s.type: s.codec_context.name for s in container.streams}


def fps(path: Path):
    with av.open(str(path)) as container:
        return container.streams.video[0].average_rate


# --- grpcurl ---

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


def grpcurl(*args: str) -> str:
    result = subprocess.run([GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=EVENT_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    return result.stdout


def samples(url: str) -> dict[tuple[str, tuple], float]:
    """A Prometheus endpoint's samples: {(name, sorted label pairs): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url, timeout=30).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def model_items(stack) -> dict[str, float]:
    """Frames segmented and crops edited by `stack`'s model server (a LocalStack) so far."""
    found = samples(f"http://{stack.metrics_address}/metrics")
    return {m: found.get(("videoedit_modelserver_items_total", (("model", m),)), 0.0) for m in ("segment", "edit")}
