"""Pipeline benchmarks on a real clip with tiny models (`python -m bench.pipeline`).

Measures, in one run: end-to-end frames/s and the per-stage breakdown; the orchestrator's own
time (total minus time waiting on the model server) against plain PyAV decode+encode of the same
clip; peak RSS for a clip and for the same clip looped 10x (memory must not grow with length);
smoothing off / EMA / flow scored by `videoedit eval`; our pipeline against the naive baseline
(bench/naive.py); and jobs/min with 1 and 2 model-server replicas for 4 concurrent jobs. Writes
bench-results/pipeline.json and pipeline.png. Tiny random-weight models on CPU: the model numbers
say nothing about a GPU, and the edits they make are noise, so the quality figures only show
that the metrics and the pipeline work, not how good real edits are.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.modelserver import EDIT_EACH_TIME
from bench.naive import naive_edit
from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from evaluation import evaluate
from orchestrator.media.decode import probe, read_frames
from orchestrator.media.encode import encode_h264
from videoedit.v1 import contract
from videoedit.v1 import video_edit_pb2 as pb

REQUEST = {"num_inference_steps": 2, "extra": {"edit_size": "128"}}
STAGES = contract.STAGE_NAMES
REPEATS = 3


def loop_clip(source: Path, target: Path, times: int) -> Path:
    """The same frames `times` over (video only), re-encoded."""
    info = probe(source, None)
    frames = (frame for _ in range(times) for _, frame in read_frames(info))
    encode_h264(target, frames, info, audio_from=None)
    return target


def pyav_baseline(clip: Path, workdir: Path) -> float:
    """CPU seconds of plain PyAV decode + the same H.264 encode, median of REPEATS."""
    info = probe(clip, None)
    runs = []
    for i in range(REPEATS):
        started = time.process_time()
        encode_h264(workdir / f"baseline{i}.mp4", (f for _, f in read_frames(info)), info, audio_from=None)
        runs.append(time.process_time() - started)
    return statistics.median(runs)


def pipeline_run(clip: Path, workdir: Path, target: str, changes: dict | None = None) -> dict:
    request = {**REQUEST, **(changes or {}), "extra": {**REQUEST["extra"], **(changes or {}).get("extra", {})}}
    result = subprocess.run(
        [sys.executable, "-m", "bench.pipeline_run", str(clip), str(workdir / "outputs"), target, json.dumps(request)],
        capture_output=True,
        text=True,
        check=True,
    )
    run = json.loads(result.stdout.strip().splitlines()[-1])
    if run["status"] != "finished":
        raise RuntimeError(f"benchmark job failed: {run['error']}")
    return run


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["total_s"])[len(runs) // 2]


def pipeline_table(short_run: dict, long_run: dict, baseline_s: float) -> None:
    print(
        "\nPipeline, tiny models on CPU, 320x240 clip, "
        f"{REQUEST['num_inference_steps']} steps, edit_size {REQUEST['extra']['edit_size']}"
    )
    print(f"{'clip':<18}{'frames':>7}{'total s':>9}{'frames/s':>10}{'orchestr. CPU s':>17}{'peak RSS MB':>13}")
    for name, run, n in (("48 frames (median)", short_run, 48), ("480 frames (10x)", long_run, 480)):
        print(
            f"{name:<18}{n:>7}{run['total_s']:>9.2f}{n / run['total_s']:>10.1f}{run['cpu_s']:>17.2f}"
            f"{run['peak_rss_mb']:>13.0f}"
        )
    print("\nPer stage, seconds (48 frames, median run)")
    print("".join(f"{s:>13}" for s in STAGES))
    print("".join(f"{short_run['stages'].get(s, 0.0):>13.2f}" for s in STAGES))
    print(f"\nPlain PyAV decode+encode of the 48-frame clip: {baseline_s:.3f} CPU s")
    print(f"Orchestrator CPU / PyAV decode+encode CPU: {short_run['cpu_s'] / baseline_s:.1f}x")
    print(f"Peak RSS, 480 frames / 48 frames: {long_run['peak_rss_mb'] / short_run['peak_rss_mb']:.2f}")


def smoothing_rows(clip: Path, workdir: Path, target: str, default_run: dict) -> list[dict]:
    """Smoothing off / EMA (the default run) / flow, scored by `videoedit eval`."""

    def median_of(changes: dict) -> dict:
        return median_run([pipeline_run(clip, workdir, target, changes) for _ in range(REPEATS)])

    runs = {
        "off": median_of({"apply_smoothing": False}),
        "ema": default_run,
        "flow": median_of({"extra": {"smoothing_mode": "flow"}}),
    }
    rows = []
    for mode, run in runs.items():
        q = evaluate(clip, Path(run["output"]), Path(run["mask"]))
        rows.append(
            {
                "smoothing": mode,
                "total_s": run["total_s"],
                "smoothing_s": run["stages"].get("smoothing", 0.0),
                **q.to_dict(),
            }
        )
    return rows


def naive_row(clip: Path, workdir: Path, ours: dict, cache_dir: Path) -> dict:
    from modelserver.backends.tiny import ensure_tiny_models

    paths = ensure_tiny_models(cache_dir / "tiny")
    out = workdir / "naive.mp4"
    seconds = statistics.median(
        naive_edit(clip, paths.instruct_pix2pix, out, "make the car blue", REQUEST["num_inference_steps"])
        for _ in range(REPEATS)
    )
    naive_q, ours_q = evaluate(clip, out, Path(ours["mask"])), evaluate(clip, Path(ours["output"]), Path(ours["mask"]))
    return {
        "naive_s": seconds,
        "ours_s": ours["total_s"],
        "naive_psnr_db": naive_q.background_psnr_db,
        "ours_psnr_db": ours_q.background_psnr_db,
    }


def jobs_per_minute(workdir: Path, clip: Path, replicas: int, jobs: int = 4) -> float:
    """`jobs` jobs submitted at once to an orchestrator running them all concurrently (median of rounds)."""
    stack = LocalStack(
        workdir / f"replicas{replicas}",
        input_roots=[clip.parent],
        replicas=replicas,
        modelserver_args=("--tiny", *EDIT_EACH_TIME),
        orchestrator_args=("--max-concurrent-jobs", str(jobs)),
    )
    with stack:
        return measure_jobs_per_minute(stack, clip, jobs)


def measure_jobs_per_minute(stack: LocalStack, clip: Path, jobs: int) -> float:
    """Submit `jobs` jobs at once to the stack's first orchestrator and wait for all (median of
    REPEATS rounds). With several orchestrators on a shared store, any of them may run a job."""
    from clients.client import VideoEditClient

    rates = []
    with VideoEditClient(stack.orchestrator_address) as client:
        for _ in range(REPEATS):
            started = time.monotonic()
            ids = [client.start_edit(str(clip), "car", "make the car blue", **REQUEST).job_id for _ in range(jobs)]
            finals = [client.wait(job_id) for job_id in ids]
            rates.append(jobs / (time.monotonic() - started) * 60)
            failed = [f.error for f in finals if f.status != pb.JOB_STATUS_FINISHED]
            if failed:
                raise RuntimeError(f"benchmark jobs failed: {failed}")
    return statistics.median(rates)


def plot(short_run: dict, long_run: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (stages_ax, rss_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for run, n, offset in ((short_run, 48, -0.2), (long_run, 480, 0.2)):
        per_frame = [1000 * run["stages"].get(s, 0.0) / n for s in STAGES]
        stages_ax.bar([i + offset for i in range(len(STAGES))], per_frame, width=0.4, label=f"{n} frames")
    stages_ax.set_xticks(range(len(STAGES)), STAGES, rotation=30)
    stages_ax.set_ylabel("ms per frame")
    stages_ax.set_title("Per-stage time per frame")
    stages_ax.legend()
    rss_ax.plot([48, 480], [short_run["peak_rss_mb"], long_run["peak_rss_mb"]], marker="o")
    rss_ax.set_xlabel("video length (frames)")
    rss_ax.set_ylabel("orchestrator peak RSS (MB)")
    rss_ax.set_ylim(bottom=0)
    rss_ax.set_title("Memory vs video length")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(results_dir: Path = Path("bench-results")) -> dict:
    cache_dir = Path(os.environ.get("VIDEOEDIT_CACHE_DIR", Path.home() / ".cache" / "videoedit"))
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-") as tmp:
        workdir = Path(tmp)
        short = make_sample_clip(workdir / "media" / "clip.mp4", frames=48)
        long = loop_clip(short, workdir / "media" / "clip_x10.mp4", 10)
        stack = LocalStack(workdir, modelserver_args=("--tiny", *EDIT_EACH_TIME))
        print("starting a tiny-model model server...", file=sys.stderr)
        stack.start_modelserver()
        try:
            print(f"running the pipeline {REPEATS}x on 48 frames and once on 480...", file=sys.stderr)
            short_runs = [pipeline_run(short, workdir, stack.modelserver_address) for _ in range(REPEATS)]
            short_run = median_run(short_runs)
            long_run = pipeline_run(long, workdir, stack.modelserver_address)
            print("smoothing off / EMA / flow...", file=sys.stderr)
            smoothing = smoothing_rows(short, workdir, stack.modelserver_address, short_run)
        finally:
            stack.stop()
        baseline_s = pyav_baseline(short, workdir)
        print("naive baseline (stock diffusers, every full frame)...", file=sys.stderr)
        naive = naive_row(short, workdir, short_run, cache_dir)
        print("jobs/min with 1 and 2 model-server replicas...", file=sys.stderr)
        throughput = {replicas: jobs_per_minute(workdir, short, replicas) for replicas in (1, 2)}

    pipeline_table(short_run, long_run, baseline_s)
    print(
        "\nSmoothing's effect (48 frames, median runs; `videoedit eval`; warp error and flicker inside the mask, "
        "grey levels)"
    )
    print(
        f"{'smoothing':<11}{'job s':>7}{'stage s':>9}{'warp err':>10}{'input':>8}{'flicker':>9}{'input':>8}"
        f"{'bg PSNR dB':>12}"
    )
    for r in smoothing:
        print(
            f"{r['smoothing']:<11}{r['total_s']:>7.2f}{r['smoothing_s']:>9.2f}{r['warp_error']:>10.2f}"
            f"{r['source_warp_error']:>8.2f}{r['flicker']:>9.2f}{r['source_flicker']:>8.2f}"
            f"{r['background_psnr_db']:>12.2f}"
        )
    print("\nAgainst the naive baseline (stock diffusers on every full frame, one at a time, in-process; medians)")
    print(
        f"speed: ours {48 / naive['ours_s']:.1f} frames/s vs naive {48 / naive['naive_s']:.1f} frames/s "
        f"({naive['naive_s'] / naive['ours_s']:.2f}x)"
    )
    print(
        f"background PSNR outside the mask: ours {naive['ours_psnr_db']:.1f} dB "
        f"vs naive {naive['naive_psnr_db']:.1f} dB"
    )
    print(
        "\nThroughput, 4 jobs of 48 frames submitted at once (--max-concurrent-jobs 4; median of 3 rounds), "
        "tiny models, 2 CPU cores"
    )
    for replicas, per_min in throughput.items():
        print(f"{replicas} model-server replica(s): {per_min:.1f} jobs/min")

    results = {
        "pipeline": {"short": short_run, "long": long_run, "pyav_baseline_s": baseline_s},
        "smoothing": smoothing,
        "naive": naive,
        "jobs_per_min": throughput,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "pipeline.json").write_text(json.dumps(results, indent=1, default=str))
    plot(short_run, long_run, results_dir / "pipeline.png")
    print(f"\nwrote {results_dir / 'pipeline.json'} and {results_dir / 'pipeline.png'}")
    return results


if __name__ == "__main__":
    main()
