"""The GPU benchmark (`bash bench/gpu.sh` runs it and writes the report), with full-size
random-weight models: no weights to download, the real architectures' compute.

    python -m bench.gpu [--random-weights full|tiny] [--device D] [--compile] [--json F]

1. Edit, in-process: 512x512 crops, 20 and 50 steps, batch 1/4/8 (items/s, s/item), and the
   stock diffusers pipeline called once per crop (its own defaults) on the same weights, for
   the "x stock" ratio.
2. Segment, in-process: 16- and 64-frame chunks of 1008x567 frames. Random SAM3 weights find
   nothing; three detector queries are made confident on every frame (random_weights.
   inject_detections), so detection, tracking and hot-start vetting do their real work.
3. A job as a user runs it: a 1280x720 clip through both services over gRPC (real orchestrator,
   real model server, 20 steps, DPM-Solver++ 2M, 512 crops, batches of 8).

`--random-weights tiny --device cpu` runs the same with tiny sizes (a smoke test, in the suite).
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.modelserver import crops, frames, timed
from clients.client import VideoEditClient
from clients.local_stack import LocalStack
from clients.sample_clip import make_sample_clip
from videoedit.v1 import contract
from videoedit.v1 import video_edit_pb2 as pb

BATCHES = (1, 4, 8)
TARGET_ITEMS_PER_S = 8.0  # Edit 512, 20 steps, batch 8, on an H100-class GPU
TARGET_VS_STOCK = 2.0


@dataclass(frozen=True)
class Workload:
    crop_side: int
    steps: tuple[int, ...]
    frame_size: tuple[int, int]  # Segment frames (width, height)
    chunks: tuple[int, ...]  # frames per Segment call
    clip: tuple[int, int, int]  # the job's clip: width, height, frames
    job_steps: int
    repeats: int

    @classmethod
    def for_weights(cls, random_weights: str) -> Workload:
        if random_weights == "full":
            return cls(
                crop_side=512,
                steps=(20, 50),
                frame_size=(1008, 567),
                chunks=(16, 64),
                clip=(1280, 720, 48),
                job_steps=20,
                repeats=3,
            )
        return cls(
            crop_side=64,
            steps=(2, 3),
            frame_size=(160, 120),
            chunks=(4, 8),
            clip=(160, 120, 12),
            job_steps=2,
            repeats=1,
        )


@dataclass
class Row:
    what: str
    setting: str
    items_per_s: float
    s_per_item: float
    note: str = ""


def server_flags(args) -> list[str]:
    flags = ["--random-weights", args.random_weights, "--device", args.device]
    return flags + (["--compile"] if args.compile else [])


def edit_rows(editor, work: Workload) -> list[Row]:
    rows = []
    for steps in work.steps:
        for b in BATCHES:
            batch = crops(b, work.crop_side)
            params = contract.EditParams(1.5, 9.0, steps)
            runs = timed(lambda: editor.edit(batch, "make it red", params, seeds=list(range(b))), work.repeats)
            per_call = statistics.median(runs)
            rows.append(Row("Edit", f"{work.crop_side}px, {steps} steps, batch {b}", b / per_call, per_call / b))
    return rows


def stock_row(editor, work: Workload) -> Row:
    """The stock pipeline as its documentation shows it, one crop per call, on the same weights."""
    import torch

    image = torch.from_numpy(crops(1, work.crop_side)[0]).permute(2, 0, 1)[None].float() / 255.0
    editor.pipe.scheduler = editor._scheduler("")  # the checkpoint's own, as a fresh pipeline has
    steps = work.steps[0]
    runs = timed(
        lambda: editor.pipe(
            "make it red",
            image=image,
            num_inference_steps=steps,
            guidance_scale=9.0,
            image_guidance_scale=1.5,
            generator=torch.Generator().manual_seed(0),
        ),
        work.repeats,
    )
    per_call = statistics.median(runs)
    return Row("Edit", f"{work.crop_side}px, {steps} steps, stock diffusers per crop", 1 / per_call, per_call)


def segment_rows(segmenter, work: Workload, vision_batch_size: int) -> list[Row]:
    rows = []
    for n in work.chunks:
        chunk = frames(n, work.frame_size)
        found = segmenter.segment(chunk, ["red square"], vision_batch_size=vision_batch_size)
        objects = statistics.mean(len(f) for f in found)
        runs = timed(
            lambda: segmenter.segment(chunk, ["red square"], vision_batch_size=vision_batch_size), work.repeats
        )
        per_call = statistics.median(runs)
        rows.append(
            Row(
                "Segment",
                f"{work.frame_size[0]}x{work.frame_size[1]}, {n}-frame chunk",
                n / per_call,
                per_call / n,
                f"{objects:.1f} objects/frame",
            )
        )
    return rows


def in_process(args, work: Workload) -> tuple[list[Row], dict]:
    import torch

    from modelserver.cli import limits_from_args, parse_args
    from modelserver.loading import load_models
    from modelserver.metrics import Metrics

    server_args = parse_args(server_flags(args))
    engine, info = load_models(server_args, limits_from_args(server_args), Metrics())
    engine.close()  # the backends are called directly: no queue, no gRPC
    print("Edit rows", end="", file=sys.stderr)
    rows = edit_rows(engine.editor, work)
    rows.append(stock_row(engine.editor, work))
    print("\nSegment rows", end="", file=sys.stderr)
    rows += segment_rows(engine.segmenter, work, server_args.segment_frame_batch)
    print(file=sys.stderr)
    memory = {}
    if torch.cuda.is_available():
        memory = {"peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30, "gpu": torch.cuda.get_device_name()}
    del engine
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return rows, memory


def job_row(args, work: Workload, workdir: Path) -> tuple[Row, dict]:
    """One job through both services over gRPC, as a user runs it."""
    width, height, count = work.clip
    clip = make_sample_clip(workdir / "media" / "clip.mp4", frames=count, width=width, height=height, pan=4)
    extra = {"edit_size": str(work.crop_side), "edit_batch_size": "8", "scheduler": "dpmpp_2m"}
    with (
        LocalStack(workdir, input_roots=[clip.parent], modelserver_args=tuple(server_flags(args))) as stack,
        VideoEditClient(stack.orchestrator_address) as client,
    ):
        started = time.monotonic()
        job = client.start_edit(str(clip), "car", "make the car red", num_inference_steps=work.job_steps, extra=extra)
        final = client.wait(job.job_id)
        wall = time.monotonic() - started
        if final.status != pb.JOB_STATUS_FINISHED:
            raise RuntimeError(f"the benchmark job failed: {final.error}")
        log_text = Path(final.logs_path).read_text()
    stages = {
        name: float(s) for name, s in re.findall(r"(\w+) ([\d.]+)s \(CPU", log_text) if name in contract.STAGE_NAMES
    }
    note = ", ".join(f"{k} {v:.1f}s" for k, v in stages.items())
    return Row(
        "Job", f"{width}x{height}, {count} frames, {work.job_steps} steps", count / wall, wall / count, note
    ), stages


def report(rows: list[Row], memory: dict, work: Workload) -> str:
    lines = [f"{'':<9}{'setting':<46}{'items/s':>9}{'s/item':>9}  note"]
    lines += [f"{r.what:<9}{r.setting:<46}{r.items_per_s:>9.2f}{r.s_per_item:>9.3f}  {r.note}" for r in rows]
    edit = {r.setting: r for r in rows if r.what == "Edit"}
    steps = work.steps[0]
    batch8 = edit[f"{work.crop_side}px, {steps} steps, batch 8"]
    stock = edit[f"{work.crop_side}px, {steps} steps, stock diffusers per crop"]
    lines.append(
        f"Edit {work.crop_side}px {steps} steps, batch 8: {batch8.items_per_s:.2f} items/s (target >= "
        f"{TARGET_ITEMS_PER_S:g} for 512px, 20 steps on an H100-class GPU), "
        f"{batch8.items_per_s / stock.items_per_s:.2f}x the stock pipeline per crop (target >= "
        f"{TARGET_VS_STOCK:g}x)"
    )
    if memory:
        lines.append(f"peak GPU memory in-process: {memory['peak_gpu_gib']:.1f} GiB on {memory['gpu']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--random-weights", choices=["full", "tiny"], default="full")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="the model server's --compile (slower start)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    work = Workload.for_weights(args.random_weights)
    print(
        f"GPU benchmark: {args.random_weights} random weights, device {args.device}, compile {args.compile}; {work}",
        file=sys.stderr,
    )
    rows, memory = in_process(args, work)
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-gpu-") as tmp:
        job, stages = job_row(args, work, Path(tmp))
    rows.append(job)
    text = report(rows, memory, work)
    print(
        f"\nModel server and a job, {args.random_weights} random weights, device {args.device}"
        f"{', --compile' if args.compile else ''}\n{text}"
    )
    results = {
        "workload": asdict(work),
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": [asdict(r) for r in rows],
        "job_stages_s": stages,
        **memory,
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
