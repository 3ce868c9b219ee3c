"""Pipeline benchmark on a real clip with tiny models (`python -m bench.pipeline`).

Measures, in one run: end-to-end frames/s and the per-stage breakdown; the
orchestrator's own time (total minus time waiting on the model server)
against plain PyAV decode+encode of the same clip; and peak RSS for a clip
and for the same clip looped 10x (memory must not grow with length).
Tiny random-weight models on CPU: the model numbers say nothing about a GPU.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from orchestrator.extracting import probe, read_frames
from orchestrator.saving import encode_h264

REQUEST = {"num_inference_steps": 2, "extra": {"edit_size": "128"}}
STAGES = ("extracting", "masking", "propagating", "editing", "smoothing", "saving")
REPEATS = 3


def loop_clip(source: Path, target: Path, times: int) -> Path:
    """The same frames `times` over (video only), re-encoded."""
    info = probe(source, None)
    frames = (frame for _ in range(times) for _, frame in read_frames(info))
    encode_h264(target, frames, info, audio_from=None)
    return target


def pyav_baseline(clip: Path, workdir: Path) -> float:
    """Seconds for plain PyAV decode + the same H.264 encode, median of REPEATS."""
    info = probe(clip, None)
    runs = []
    for i in range(REPEATS):
        started = time.monotonic()
        encode_h264(workdir / f"baseline{i}.mp4", (f for _, f in read_frames(info)), info, audio_from=None)
        runs.append(time.monotonic() - started)
    return statistics.median(runs)


def pipeline_run(clip: Path, workdir: Path, target: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "bench.pipeline_run", str(clip), str(workdir / "outputs"),
                             target, json.dumps(REQUEST)], capture_output=True, text=True, check=True)
    run = json.loads(result.stdout.strip().splitlines()[-1])
    if run["status"] != "finished":
        raise RuntimeError(f"benchmark job failed: {run['error']}")
    return run


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["total_s"])[len(runs) // 2]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-") as tmp:
        workdir = Path(tmp)
        short = make_sample_clip(workdir / "media" / "clip.mp4", frames=48)
        long = loop_clip(short, workdir / "media" / "clip_x10.mp4", 10)
        stack = LocalStack(workdir, modelserver_args=("--tiny",))
        print("starting a tiny-model model server...", file=sys.stderr)
        stack.start_modelserver()
        try:
            print(f"running the pipeline {REPEATS}x on 48 frames and once on 480...", file=sys.stderr)
            short_run = median_run([pipeline_run(short, workdir, stack.modelserver_address) for _ in range(REPEATS)])
            long_run = pipeline_run(long, workdir, stack.modelserver_address)
        finally:
            stack.stop()
        baseline_s = pyav_baseline(short, workdir)

    print("\nPipeline, tiny models on CPU, 320x240 clip, "
          f"{REQUEST['num_inference_steps']} steps, edit_size {REQUEST['extra']['edit_size']}")
    print(f"{'clip':<18}{'frames':>7}{'total s':>9}{'frames/s':>10}{'model wait s':>14}{'orchestr. s':>13}"
          f"{'peak RSS MB':>13}")
    for name, run, n in (("48 frames (median)", short_run, 48), ("480 frames (10x)", long_run, 480)):
        own = run["total_s"] - run["model_wait_s"]
        print(f"{name:<18}{n:>7}{run['total_s']:>9.2f}{n / run['total_s']:>10.1f}{run['model_wait_s']:>14.2f}"
              f"{own:>13.2f}{run['peak_rss_mb']:>13.0f}")
    print("\nPer stage, seconds (48 frames, median run)")
    print("".join(f"{s:>13}" for s in STAGES))
    print("".join(f"{short_run['stages'].get(s, 0.0):>13.2f}" for s in STAGES))
    own_per_frame = (short_run["total_s"] - short_run["model_wait_s"]) / 48
    print(f"\nPlain PyAV decode+encode of the 48-frame clip: {baseline_s:.3f}s ({48 / baseline_s:.0f} frames/s)")
    print(f"Orchestrator's own time per frame / PyAV decode+encode per frame: {own_per_frame / (baseline_s / 48):.1f}x")
    print(f"Peak RSS, 480 frames / 48 frames: {long_run['peak_rss_mb'] / short_run['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
