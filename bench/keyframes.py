"""Keyframes and cross-frame attention against per-frame editing (`python -m bench.keyframes`,
part of `make bench`).

One job per setting on each of two clips: the synthetic one (96 frames of 320x240, the red car
driving, the camera panning) and a real one (bench.real_clip: Big Buck Bunny, 132 frames, scaled
to 640x360 so that on a 2-core machine the model's pace, not our decoding, sets frames/s, as on
a GPU host): frames/s of the whole job, Edit items sent, and `videoedit eval`'s warp error and
flicker inside the mask (beside the source's own) and background PSNR.

The edits come from a tiny-model server over gRPC, paced like a GPU (EDIT_DELAY_MS per crop,
`--simulate-edit-delay-ms`) so that frames/s weighs model time as a real deployment does. Tiny
random-weight InstructPix2Pix makes noise, not edits: carrying noise along the flow is still a
fair test of temporal consistency (noise that changes every frame is the worst flicker there is),
but says nothing about how real edits look. The masks come from the car's colour (FakeModels'
segmenter, in-process), not from tiny SAM3, whose random masks come and go every few frames and
would hide the editing's effect; on the real clip, from the rabbit's lit fur
(bench.real_clip.lit_fur). Writes bench-results/keyframes.json.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.modelserver import EDIT_EACH_TIME, batch_histogram
from bench.real_clip import CREDIT, big_buck_bunny, lit_fur, scaled
from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from evaluation import evaluate
from orchestrator.config import Settings
from orchestrator.jobs.reporter import JobReporter
from orchestrator.jobs.runner import new_status, run_job
from orchestrator.jobs.validation import check_request
from orchestrator.media.decode import probe
from orchestrator.models.fake import FakeModels, red_regions
from orchestrator.models.grpc_client import ModelClient
from orchestrator.request import VideoEditRequest

SYNTHETIC_FRAMES = 96
REAL_WIDTH = 640
SETTINGS = [
    ("per frame", {}),
    ("keyframes k=2", {"keyframe_interval": "2"}),
    ("keyframes k=4", {"keyframe_interval": "4"}),
    ("keyframes k=8", {"keyframe_interval": "8"}),
    ("adaptive", {"keyframes": "adaptive"}),
    ("cross-frame", {"consistency": "cross_frame"}),
    ("cross-frame k=4", {"consistency": "cross_frame", "keyframe_interval": "4"}),
]


EDIT_DELAY_MS = 150  # one 512x512 InstructPix2Pix edit on an H100 takes ~110-250 ms (see bench/hd.py)
REQUEST = {"num_inference_steps": 2, "extra": {"edit_size": "128"}}


@dataclass
class ColourMasksModelEdits:
    """Masks from the object's colour (in-process), edits from the model server."""

    client: ModelClient
    masks: FakeModels = field(default_factory=FakeModels)

    def info(self, wait_s: float = 0.0):
        return self.client.info(wait_s)

    def track(self, prompts):
        return self.masks.track(prompts)

    def edit(self, *args, **kwargs):
        return self.client.edit(*args, **kwargs)


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    frames: int
    find: Callable[[np.ndarray], np.ndarray]  # frame -> the object's pixels (FakeModels' segmenter)


def run(clip: Path, workdir: Path, models: ColourMasksModelEdits, extra: dict) -> tuple[float, dict]:
    settings = Settings(input_roots=(clip.parent,), output_root=workdir / "outputs")
    checked = check_request(
        VideoEditRequest(
            input_video_path=clip,
            mask_prompt="object",
            edit_prompt="make it blue",
            num_inference_steps=REQUEST["num_inference_steps"],
            extra={**REQUEST["extra"], **extra},
        ),
        settings,
    )
    started = time.monotonic()
    final = run_job(checked, models, JobReporter(new_status(checked), checked.request.output_dir))
    seconds = time.monotonic() - started  # the job's, not the evaluation's
    if final.error:
        raise RuntimeError(f"benchmark job failed: {final.error}")
    return seconds, evaluate(clip, final.output_video_path, final.mask_preview_path).to_dict()


def rows(workdir: Path, clips: list[Clip]) -> list[dict]:
    (workdir / "ms").mkdir()
    stack = LocalStack(
        workdir / "ms", modelserver_args=("--tiny", *EDIT_EACH_TIME, "--simulate-edit-delay-ms", str(EDIT_DELAY_MS))
    )
    stack.start_modelserver()
    client = ModelClient(stack.modelserver_address)
    client.info(wait_s=300)
    logging.getLogger("videoedit.job").setLevel(logging.WARNING)
    results = []
    try:
        for clip in clips:
            models = ColourMasksModelEdits(client, FakeModels(find=clip.find))
            for label, extra in SETTINGS:
                print(f"keyframes, {clip.name}: {label}...", file=sys.stderr)
                items_before = batch_histogram(stack.metrics_address, "edit")[0]
                seconds, quality = run(clip.path, workdir, models, extra)
                results.append(
                    {
                        "clip": clip.name,
                        "setting": label,
                        "frames_per_s": clip.frames / seconds,
                        "edit_items": batch_histogram(stack.metrics_address, "edit")[0] - items_before,
                        **quality,
                    }
                )
    finally:
        client.close()
        stack.stop()
    return results


def main(results_dir: Path = Path("bench-results")) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-keyframes-") as tmp:
        workdir = Path(tmp)
        synthetic = make_sample_clip(workdir / "media" / "pan.mp4", frames=SYNTHETIC_FRAMES, pan=2)
        real = scaled(big_buck_bunny(), workdir / "media" / "bunny.mp4", REAL_WIDTH)
        results = rows(
            workdir,
            [
                Clip("synthetic", synthetic, SYNTHETIC_FRAMES, red_regions),
                Clip("real", real, probe(real, None).frame_count, lit_fur),
            ],
        )
    print(
        f"\nKeyframes vs per-frame editing: tiny-model edits (noise), {EDIT_DELAY_MS} ms per crop; warp error and "
        "flicker inside the mask, grey levels.\n"
        f"synthetic: {SYNTHETIC_FRAMES} frames 320x240, panning camera, masks from the car's colour; "
        f"real: {CREDIT}, 132 frames scaled to {REAL_WIDTH}x360, masks from the rabbit's lit fur"
    )
    print(
        f"{'clip':<10}{'setting':<16}{'frames/s':>9}{'x':>6}{'Edit items':>11}{'warp err':>10}{'x':>6}{'source':>8}"
        f"{'flicker':>9}{'source':>8}{'bg PSNR dB':>12}"
    )
    for r in results:
        base = next(b for b in results if b["clip"] == r["clip"])  # per frame, the first setting
        print(
            f"{r['clip']:<10}{r['setting']:<16}{r['frames_per_s']:>9.1f}"
            f"{r['frames_per_s'] / base['frames_per_s']:>6.2f}"
            f"{r['edit_items']:>11.0f}{r['warp_error']:>10.2f}{r['warp_error'] / base['warp_error']:>6.2f}"
            f"{r['source_warp_error']:>8.2f}{r['flicker']:>9.2f}{r['source_flicker']:>8.2f}"
            f"{r['background_psnr_db']:>12.2f}"
        )
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "keyframes.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
