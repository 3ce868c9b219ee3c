"""Trying several instructions on one object (part of `make bench`; `python -m bench.reuse`).

The real 720p clip (bench.real_clip), a tiny-model server paced like a GPU (hd.EDIT_DELAY_MS per
Edit crop, hd.SEGMENT_DELAY_MS per Segment frame), one orchestrator. Three edit attempts on the
same object, each with another instruction:

- without reuse (the mask cache off): every attempt tracks the whole video again;
- with the mask cache: the first attempt tracks, the next ones reuse its masks;
- masks first: a masks job (mode "masks") tracks once, then three edits with extra.masks_from.

Each run, on a fresh stack (an empty mask cache), is done per-frame and with keyframes (every 4th
frame edited, the rest carried), where tracking is the larger share of the model server's time.
Per attempt: Segment frames, model-server busy seconds (Edit and Segment compute: the GPU's time)
and wall seconds, each over the first attempt without reuse. Target: attempts after the first send
0 Segment frames and take at most 0.6x its wall time.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from bench.hd import EDIT_DELAY_MS, SEGMENT_DELAY_MS, busy_s
from bench.modelserver import EDIT_EACH_TIME, batch_histogram
from bench.real_clip import CREDIT, big_buck_bunny
from clients.client import VideoEditClient
from clients.local_stack import LocalStack

INSTRUCTIONS = ("make it red", "make it blue", "make it gold")
MODES = {"per frame": {}, "keyframes (every 4th)": {"keyframe_interval": "4"}}
TARGET = 0.6  # of the first attempt's wall time
# How the attempts get their masks: (name, VIDEOEDIT_MASK_CACHE_MB, a masks job first).
HOW = (("without reuse", "0", False), ("mask cache", "2048", False), ("masks first", "0", True))


def attempt(stack: LocalStack, clip: Path, job_id: str, edit_prompt: str, mode: str = "video", **extra: str) -> dict:
    """One job to its end: Segment frames, model-server busy seconds and wall seconds for it."""
    frames_before, busy_before = batch_histogram(stack.metrics_address, "segment")[0], busy_s(stack)
    started = time.monotonic()
    with VideoEditClient(stack.orchestrator_address) as client:
        client.start_edit(
            str(clip),
            "car",
            edit_prompt,
            job_id=job_id,
            mode=mode,
            num_inference_steps=2,
            extra={"edit_size": "128", **extra},
        )
        final = client.wait(job_id)
    if final.error:
        raise RuntimeError(f"{job_id}: {final.error}")
    return {
        "segment_frames": batch_histogram(stack.metrics_address, "segment")[0] - frames_before,
        "busy_s": busy_s(stack) - busy_before,
        "wall_s": time.monotonic() - started,
    }


def series(stack: LocalStack, clip: Path, name: str, extra: dict[str, str], masks_first: bool) -> list[dict]:
    """The three attempts (after a masks job when `masks_first`), each named."""
    rows = []
    if masks_first:
        rows.append({"attempt": "find (masks job)", **attempt(stack, clip, f"{name}-find", "", "masks", **extra)})
        extra = {**extra, "masks_from": f"{name}-find"}
    for i, instruction in enumerate(INSTRUCTIONS):
        rows.append(
            {"attempt": f"edit {i + 1}: {instruction}", **attempt(stack, clip, f"{name}-{i}", instruction, **extra)}
        )
    return rows


def main(results_dir: Path = Path("bench-results")) -> dict:
    clip = big_buck_bunny()
    pace = (
        "--tiny",
        *EDIT_EACH_TIME,
        "--simulate-edit-delay-ms",
        str(EDIT_DELAY_MS),
        "--simulate-segment-delay-ms",
        str(SEGMENT_DELAY_MS),
    )
    results: dict = {
        "clip": clip.name,
        "edit_delay_ms": EDIT_DELAY_MS,
        "segment_delay_ms": SEGMENT_DELAY_MS,
        "runs": {},
    }
    for mode, extra in MODES.items():
        for how, cache_mb, masks_first in HOW:
            print(f"reuse: {how}, {mode}...", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="videoedit-bench-reuse-") as tmp:  # an empty mask cache
                env = {"VIDEOEDIT_MASK_CACHE_MB": cache_mb}
                with LocalStack(Path(tmp), input_roots=[clip.parent], modelserver_args=pace, env=env) as stack:
                    results["runs"][f"{mode}, {how}"] = series(stack, clip, "job", extra, masks_first)
    print(
        f"\nReuse: three instructions on one object, the real 720p clip ({CREDIT}), {EDIT_DELAY_MS} ms per "
        f"Edit crop and {SEGMENT_DELAY_MS} ms per Segment frame; x: over the first edit without reuse"
    )
    print(f"{'run':<38}{'attempt':<22}{'Segment fr':>11}{'busy s':>9}{'x':>6}{'wall s':>9}{'x':>6}")
    for run, rows in results["runs"].items():
        first = results["runs"][f"{run.split(',')[0]}, {HOW[0][0]}"][0]
        for row in rows:
            print(
                f"{run:<38}{row['attempt'][:21]:<22}{row['segment_frames']:>11.0f}{row['busy_s']:>9.1f}"
                f"{row['busy_s'] / first['busy_s']:>6.2f}{row['wall_s']:>9.1f}{row['wall_s'] / first['wall_s']:>6.2f}"
            )
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "reuse.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
