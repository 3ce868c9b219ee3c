"""Resuming an interrupted job (part of `make bench`; `python -m bench.resume`).

The real 720p clip (bench.real_clip), a tiny-model server paced like a GPU running
InstructPix2Pix (hd.EDIT_DELAY_MS per Edit crop) and one orchestrator on SQLite. The same job
three times:

- uninterrupted;
- resumed: the orchestrator killed (SIGKILL) once 60% of the job's Edit crops are done,
  restarted at once; the job's next attempt resumes from its checkpoints;
- restarted from 0: the same kill, with the checkpoint removed before the restart (what every
  interrupted job cost before checkpoints).

Each row: model-server busy seconds (compute of Edit and Segment batches, the GPU's time) and
crops edited for the job, over the uninterrupted job's. Target: resumed <= 1.15x. Each job has a
seed of its own and the mask cache is off: the three jobs share nothing but what one job's
attempts share (its checkpoint; the model server's edited crops kept for a call sent again).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench.hd import EDIT_DELAY_MS, busy_s
from bench.modelserver import batch_histogram
from bench.real_clip import CREDIT, big_buck_bunny
from clients.client import VideoEditClient
from clients.local_stack import LocalStack

KILL_AT = 0.6  # of the uninterrupted job's Edit crops
REQUEST = {"num_inference_steps": 2, "extra": {"edit_size": "128"}}


def edit_items(stack: LocalStack) -> float:
    """Crops the model server has edited so far (the sum of its Edit batch sizes)."""
    return batch_histogram(stack.metrics_address, "edit")[0]


def run(
    stack: LocalStack, clip: Path, job_id: str, seed: int, kill_after_items: float | None, keep_checkpoint: bool
) -> dict:
    """One job: its model-server busy seconds and Edit crops (killed once `kill_after_items` crops
    were edited for it, then resumed, or started over when not `keep_checkpoint`)."""
    busy_before, items_before = busy_s(stack), edit_items(stack)
    with VideoEditClient(stack.orchestrator_address) as client:
        started = client.start_edit(str(clip), "car", "make it red", job_id=job_id, seed=seed, **REQUEST)
    if kill_after_items is not None:
        while edit_items(stack) - items_before < kill_after_items:
            time.sleep(0.05)
        stack.processes["orchestrator"].kill()
        stack.processes["orchestrator"].wait()
        if not keep_checkpoint:
            for manifest in Path(started.output_dir).glob(".work-attempt-*/checkpoint.json"):
                manifest.unlink()
        stack.start_orchestrator()
    with VideoEditClient(stack.orchestrator_address) as client:
        final = client.wait(job_id)
    if final.error:
        raise RuntimeError(f"{job_id}: {final.error}")
    return {"busy_s": busy_s(stack) - busy_before, "edit_items": edit_items(stack) - items_before}


def main(results_dir: Path = Path("bench-results")) -> dict:
    clip = big_buck_bunny()
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-resume-") as tmp:
        stack = LocalStack(
            Path(tmp),
            input_roots=[clip.parent],
            modelserver_args=("--tiny", "--simulate-edit-delay-ms", str(EDIT_DELAY_MS)),
            env={"VIDEOEDIT_MASK_CACHE_MB": "0"},
        )
        with stack:
            print("resume: the uninterrupted job...", file=sys.stderr)
            whole = run(stack, clip, "uninterrupted", 1, None, True)
            kill_after = KILL_AT * whole["edit_items"]
            print("resume: killed at 60% and resumed...", file=sys.stderr)
            resumed = run(stack, clip, "resumed", 2, kill_after, True)
            print("resume: killed at 60% and started over...", file=sys.stderr)
            over = run(stack, clip, "started-over", 3, kill_after, False)
    results = {
        "clip": clip.name,
        "edit_delay_ms": EDIT_DELAY_MS,
        "kill_at": KILL_AT,
        "rows": {"uninterrupted": whole, "resumed": resumed, "restarted from 0": over},
    }
    print(
        f"\nResume: the real 720p clip ({CREDIT}), {EDIT_DELAY_MS} ms per Edit crop, orchestrator "
        f"SIGKILLed at {KILL_AT:.0%} of the Edit crops and restarted"
    )
    print(f"{'job':<20}{'model busy s':>14}{'x':>7}{'Edit crops':>12}{'x':>7}")
    for name, row in results["rows"].items():
        print(
            f"{name:<20}{row['busy_s']:>14.1f}{row['busy_s'] / whole['busy_s']:>7.2f}"
            f"{row['edit_items']:>12.0f}{row['edit_items'] / whole['edit_items']:>7.2f}"
        )
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "resume.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
