"""HD throughput of the orchestrator (part of `make bench`).

For 1280x720 and 1920x1080 clips made here (a textured scene, the camera panning, a car driving,
audio) and a real 1280x720 clip (bench.real_clip: Big Buck Bunny, 132 frames, audio; the clip
issue 12 was measured on), against a tiny-model model server:

- orchestrator CPU seconds (the job's process, all threads; the model server is another
  process) over the CPU seconds of PyAV decode + the same H.264 encode of the clip, with EMA and
  with flow smoothing. The baseline decodes and encodes through RGB as the pipeline does
  (media.decode / media.encode, OpenCV's conversions); the plain-PyAV column converts with PyAV's
  own swscale, as a notebook would (and as the issue's 5.4x was measured). Per-stage wall
  times; peak RSS;
- overlap: the model server made as slow as a GPU running InstructPix2Pix (EDIT_DELAY_MS per
  crop), wall time / max(model-server busy time, orchestrator CPU time): 1.0 means the slower
  side never waited for the other. For one job (its editing runs behind tracking, so the whole
  job is the figure), and for two jobs run side by side (one job's saving overlaps the other's
  editing);
- peak RSS of a 10x longer 720p clip over the short one.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av

from bench.modelserver import EDIT_EACH_TIME, batch_histogram
from bench.pipeline import STAGES, loop_clip, pipeline_run
from bench.real_clip import CREDIT, big_buck_bunny
from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from orchestrator.media.decode import probe, read_frames
from orchestrator.media.encode import X264_OPTIONS, encode_h264

SIZES = ((1280, 720), (1920, 1080))
FRAMES = 72
PAN_PX = 4  # per frame
# One 512x512 InstructPix2Pix edit on one H100 takes ~110-250 ms (issue 12): the middle of it.
EDIT_DELAY_MS = 150
# SAM3 tracking one 1008-px frame on one H100: its backbone is ~5.6 TFLOP (FACTS.md), ~15 ms at
# 40% of the bf16 peak, and the detector, memory attention and mask decoder about as much again.
SEGMENT_DELAY_MS = 30
REQUEST = {"num_inference_steps": 2, "extra": {"edit_size": "128"}}
REAL = "real 720p"


def model_server(workdir: Path, *flags: str) -> LocalStack:
    """A tiny-model model server (no orchestrator: the jobs run in bench.pipeline_run)."""
    workdir.mkdir(parents=True)
    stack = LocalStack(workdir, modelserver_args=("--tiny", *EDIT_EACH_TIME, *flags))
    stack.start_modelserver()
    return stack


def pyav_cpu_s(clip: Path, workdir: Path) -> float:
    """CPU seconds of plain PyAV decode + the pipeline's H.264 encode of `clip` (this process)."""
    info = probe(clip, None)
    started = time.process_time()
    encode_h264(workdir / "pyav.mp4", (frame for _, frame in read_frames(info)), info, audio_from=None)
    return time.process_time() - started


def plain_pyav_cpu_s(clip: Path, workdir: Path) -> float:
    """The same, converting to and from RGB with PyAV's own swscale (the usual notebook code)."""
    started = time.process_time()
    with av.open(str(clip)) as source, av.open(str(workdir / "plain.mp4"), "w") as out:
        video = source.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate, options=X264_OPTIONS)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        for frame in source.decode(video):
            rgb = frame.to_ndarray(format="rgb24")
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    return time.process_time() - started


def busy_s(stack: LocalStack) -> float:
    """Seconds the model server has spent computing batches (Edit and Segment) so far."""
    return sum(batch_histogram(stack.metrics_address, model, "compute_seconds")[0] for model in ("edit", "segment"))


def edit_busy_s(stack: LocalStack) -> float:
    return batch_histogram(stack.metrics_address, "edit", "compute_seconds")[0]


def run_with(stack: LocalStack, clip: Path, workdir: Path, changes: dict | None = None) -> dict:
    before, edit_before = busy_s(stack), edit_busy_s(stack)
    run = pipeline_run(clip, workdir, stack.modelserver_address, changes)
    run["model_busy_s"], run["edit_busy_s"] = busy_s(stack) - before, edit_busy_s(stack) - edit_before
    return run


def side_by_side(stack: LocalStack, clip: Path, workdir: Path, jobs: int = 2) -> dict:
    """`jobs` jobs at once, each in its own process: (wall, model busy, summed CPU) seconds."""
    before = busy_s(stack)
    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        runs = list(pool.map(lambda _: pipeline_run(clip, workdir, stack.modelserver_address), range(jobs)))
    return {
        "jobs": jobs,
        "total_s": time.monotonic() - started,
        "model_busy_s": busy_s(stack) - before,
        "cpu_s": sum(r["cpu_s"] for r in runs),
    }


def main(results_dir: Path = Path("bench-results")) -> dict:
    results: dict = {"sizes": {}}
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-hd-") as tmp:
        workdir = Path(tmp)
        clips = {
            f"{w}x{h}": make_sample_clip(
                workdir / "media" / f"{w}x{h}.mp4", frames=FRAMES, width=w, height=h, pan=PAN_PX
            )
            for w, h in SIZES
        }
        long_clip = loop_clip(clips["1280x720"], workdir / "media" / "1280x720_x10.mp4", 10)
        clips[REAL] = big_buck_bunny()
        print(f"HD clips of {FRAMES} frames made; starting a tiny-model server...", file=sys.stderr)
        fast = model_server(workdir / "fast")
        try:
            for name, clip in clips.items():
                print(f"{name}: PyAV baseline, EMA and flow runs...", file=sys.stderr)
                ema = run_with(fast, clip, workdir)
                results["sizes"][name] = {
                    "pyav_cpu_s": pyav_cpu_s(clip, workdir),
                    "plain_pyav_cpu_s": plain_pyav_cpu_s(clip, workdir),
                    # What encoding the edited content costs: tiny models paste noise, dearer than the source.
                    "pyav_output_cpu_s": pyav_cpu_s(Path(ema["output"]), workdir),
                    "ema": ema,
                    "flow": run_with(fast, clip, workdir, {"extra": {"smoothing_mode": "flow"}}),
                }
            print("720p x10 for memory...", file=sys.stderr)
            results["long_720p"] = run_with(fast, long_clip, workdir)
        finally:
            fast.stop()
        print(f"a model server taking {EDIT_DELAY_MS} ms per Edit crop...", file=sys.stderr)
        slow = model_server(workdir / "slow", "--simulate-edit-delay-ms", str(EDIT_DELAY_MS))
        try:
            results["overlap"] = {name: run_with(slow, clip, workdir) for name, clip in clips.items()}
            results["side_by_side"] = side_by_side(slow, clips["1280x720"], workdir)
        finally:
            slow.stop()

    report(results)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "hd.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {results_dir / 'hd.json'}")
    return results


def report(results: dict) -> None:
    print(
        f"\nHD pipeline (synthetic: {FRAMES} frames, camera panning {PAN_PX} px/frame; {REAL}: {CREDIT}, 132 "
        "frames; tiny models, 2 steps, edit_size 128): orchestrator CPU s over PyAV decode+encode CPU s of the "
        "source (and of the edited output; plain: PyAV's swscale conversions)"
    )
    print(
        f"{'clip':<11}{'PyAV s':>8}{'(output)':>9}{'(plain)':>8}{'EMA s':>8}{'ratio':>20}{'flow s':>8}{'ratio':>13}"
        f"{'peak RSS MB':>13}"
    )
    for name, r in results["sizes"].items():
        base, out, plain, ema, flow = (
            r["pyav_cpu_s"],
            r["pyav_output_cpu_s"],
            r["plain_pyav_cpu_s"],
            r["ema"],
            r["flow"],
        )
        print(
            f"{name:<11}{base:>8.2f}{out:>9.2f}{plain:>8.2f}"
            f"{ema['cpu_s']:>8.2f}{ema['cpu_s'] / base:>6.2f} ({ema['cpu_s'] / out:.2f}, {ema['cpu_s'] / plain:.2f})"
            f"{flow['cpu_s']:>8.2f}{flow['cpu_s'] / base:>6.2f} ({flow['cpu_s'] / out:.2f})"
            f"{ema['peak_rss_mb']:>13.0f}"
        )
    print("\nPer stage, EMA runs: wall s / process CPU s")
    print(f"{'clip':<11}" + "".join(f"{s:>16}" for s in STAGES))
    for name, r in results["sizes"].items():
        stages, cpu = r["ema"]["stages"], r["ema"]["stage_cpu_s"]
        print(f"{name:<11}" + "".join(f"{stages.get(s, 0.0):>9.2f} /{cpu.get(s, 0.0):>5.2f}" for s in STAGES))
    short, long = results["sizes"]["1280x720"]["ema"], results["long_720p"]
    print(
        f"peak RSS, 720p x10 frames / x1: {long['peak_rss_mb'] / short['peak_rss_mb']:.2f} "
        f"({long['peak_rss_mb']:.0f} / {short['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"\nOverlap with a model server taking {EDIT_DELAY_MS} ms per Edit crop (a GPU's pace): "
        "wall / max(model-server busy, orchestrator CPU)"
    )
    print(f"{'run':<24}{'wall s':>8}{'busy s':>8}{'orch CPU s':>12}{'overlap':>9}")
    for name, r in results["overlap"].items():
        print(
            f"{name + ', whole job':<24}{r['total_s']:>8.2f}{r['model_busy_s']:>8.2f}{r['cpu_s']:>12.2f}"
            f"{r['total_s'] / max(r['model_busy_s'], r['cpu_s']):>9.2f}"
        )
    r = results["side_by_side"]
    print(
        f"{'1280x720, 2 jobs at once':<24}{r['total_s']:>8.2f}{r['model_busy_s']:>8.2f}{r['cpu_s']:>12.2f}"
        f"{r['total_s'] / max(r['model_busy_s'], r['cpu_s']):>9.2f}"
    )


if __name__ == "__main__":
    main()
