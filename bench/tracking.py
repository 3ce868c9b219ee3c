"""Tracking continuity across Segment chunks (`python -m bench.tracking`).

Before: every Segment call was a fresh SAM3 tracking session, whose hot-start heuristics hold
outputs back and drop tracks the detector has not confirmed within `hotstart_delay` (15) frames:
objects on the first frames of every chunk can vanish, and masks jump where one chunk hands over
to the next (a model server with `--max-tracking-sessions 0` still works that way; so do longer
chunks with a pre-roll of the previous chunk's frames, the other remedy tried). Now: one tracking
session per job on the model server, carried on by every chunk.

One job per setting on a 160-frame clip with a car driving and the camera panning, through a
tiny-model server: the mask's temporal IoU at the first new frame of each chunk against every
other frame, the share of frames with a mask, Segment frames sent and the masking+propagating
seconds. Tiny random-weight SAM3 finds and loses "objects" at random, but its detector, tracker
and hot-start logic are the real code: the figures show the chunking's effect on that code, not
the accuracy of real masks. Writes bench-results/tracking.json.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from bench.modelserver import EDIT_EACH_TIME, batch_histogram
from clients.client import VideoEditClient
from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from evaluation.metrics import mask_continuity
from videoedit.v1 import video_edit_pb2 as pb

FRAMES = 160
NO_SESSIONS = ("--max-tracking-sessions", "0")
# (label, model-server flags, extra)
SETTINGS = [
    ("session per chunk, 16/2", NO_SESSIONS, {"chunk_size": "16", "chunk_overlap": "2"}),
    ("session per chunk, 64/16", NO_SESSIONS, {"chunk_size": "64", "chunk_overlap": "16"}),
    ("session per job, 16/2", (), {"chunk_size": "16", "chunk_overlap": "2"}),
]
REQUEST = {"num_inference_steps": 1, "extra": {"edit_size": "64"}}


def boundaries(log_text: str, chunk: int, overlap: int, frames: int) -> set[int]:
    """The first new frame of each chunk after the one where masking found the object."""
    found = re.search(r"masking: .* found \d+ object\(s\) in frames (\d+)-(\d+)", log_text)
    if not found:
        raise RuntimeError("the job log does not say where masking found the object")
    first = int(found[2]) + 1
    return set(range(first, frames, chunk - overlap))


def stage_seconds(log_text: str, stage: str) -> float:
    return float(re.search(rf"{stage} ([\d.]+)s \(CPU", log_text)[1])


def run(stack: LocalStack, client: VideoEditClient, clip: Path, label: str, extra: dict) -> dict:
    segment_before = batch_histogram(stack.metrics_address, "segment")[0]
    job = client.start_edit(str(clip), "car", "make it red", **{**REQUEST, "extra": {**REQUEST["extra"], **extra}})
    final = client.wait(job.job_id)
    if final.status != pb.JOB_STATUS_FINISHED:
        raise RuntimeError(f"{label}: {final.error}")
    log_text = Path(final.logs_path).read_text()
    chunk, overlap = int(extra["chunk_size"]), int(extra["chunk_overlap"])
    continuity = mask_continuity(Path(final.mask_preview_path), boundaries(log_text, chunk, overlap, FRAMES))
    return {
        "chunking": label,
        **continuity.to_dict(),
        "segment_frames": batch_histogram(stack.metrics_address, "segment")[0] - segment_before,
        "seconds": stage_seconds(log_text, "masking") + stage_seconds(log_text, "propagating"),
    }


def main(results_dir: Path = Path("bench-results"), modelserver_args: tuple[str, ...] = ("--tiny",)) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-tracking-") as tmp:
        workdir = Path(tmp)
        clip = make_sample_clip(workdir / "media" / "pan.mp4", frames=FRAMES, width=160, height=120, pan=2)
        print("tracking continuity: one job per setting...", file=sys.stderr)
        for index, (label, flags, extra) in enumerate(SETTINGS):
            with (
                LocalStack(
                    workdir / str(index),
                    input_roots=[clip.parent],
                    modelserver_args=(*modelserver_args, *EDIT_EACH_TIME, *flags),
                ) as stack,
                VideoEditClient(stack.orchestrator_address) as client,
            ):
                rows.append(run(stack, client, clip, label, extra))
    print(
        f"\nTracking continuity across Segment chunks ({FRAMES} frames, panning camera, model server "
        f"{' '.join(modelserver_args)}; mask temporal IoU)"
    )
    print(
        f"{'tracking':<26}{'IoU at chunk starts':>21}{'IoU elsewhere':>15}{'frames masked':>15}"
        f"{'Segment frames':>16}{'seconds':>9}"
    )
    for r in rows:
        print(
            f"{r['chunking']:<26}{r['boundary_iou']:>21.3f}{r['interior_iou']:>15.3f}{r['frames_with_mask']:>15.2f}"
            f"{r['segment_frames']:>16.0f}{r['seconds']:>9.2f}"
        )
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "tracking.json").write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    # Any model-server flags, e.g. `python -m bench.tracking --device cuda` with SAM3_MODEL_PATH set
    # for real weights; default: tiny models.
    main(modelserver_args=tuple(sys.argv[1:]) or ("--tiny",))
