"""Model-server benchmark: Edit and Segment throughput and latency, batching's effect.

    python -m bench.modelserver [--random-weights tiny|full] [--device D] [--dtype T] [--json F]

For each model, the backend called in-process (no gRPC, no queue) and the same calls over
real gRPC on loopback to a `videoedit-modelserver` subprocess: batch 1, 4 and 8 from one client,
then 4 concurrent clients sending one item per call, where the server's dynamic batcher merges
calls (the mean batch it reached is read from its Prometheus metrics). The ratio column is gRPC
items/s over in-process items/s at the same batch: what the wire, the queue and batching cost
(or, for concurrent clients, win). Tiny random-weight models on a CPU say nothing about a GPU;
`bench/gpu.sh` runs the same with full-size random weights.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from clients.local_stack import LocalStack
from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc
from videoedit.v1 import wire
from videoedit.v1.contract import EditParams

BATCHES = (1, 4, 8)
CLIENTS = 4


@dataclass(frozen=True)
class Workload:
    crop_side: int  # Edit crops are crop_side x crop_side
    steps: int
    frame_size: tuple[int, int]  # Segment frames, (width, height)
    chunk: int  # frames per Segment call
    repeats: int  # timed calls per measurement (after one warm-up call)

    @classmethod
    def for_weights(cls, random_weights: str) -> Workload:
        if random_weights == "full":  # what a real job sends: 512 crops, 1008-pixel frames
            return cls(crop_side=512, steps=20, frame_size=(1008, 567), chunk=8, repeats=3)
        return cls(crop_side=128, steps=2, frame_size=(160, 120), chunk=8, repeats=3)


@dataclass
class Row:
    model: str
    mode: str  # "in-process" or "gRPC"
    batch: str  # items per call, or "4 clients x 1"
    items_per_s: float
    latency_s: float  # median seconds per call
    mean_batch: float | None = None  # batch the server ran (gRPC only)
    ratio: float | None = None  # gRPC items/s / in-process items/s


def crops(n: int, side: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]


def frames(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    width, height = size
    out = []
    for i in range(n):  # a bright square moving over a gradient
        frame = np.tile(np.linspace(30, 90, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
        x = (width // 8) + i * width // 40
        frame[height // 3 : 2 * height // 3, x : x + width // 5] = (220, 40, 40)
        out.append(frame)
    return out


def timed(fn, repeats: int) -> list[float]:
    print(".", end="", file=sys.stderr, flush=True)
    fn()  # warm-up: first-call allocations, lazy kernels
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return runs


def in_process(args, work: Workload) -> list[Row]:
    import torch

    from modelserver.cli import limits_from_args, parse_args
    from modelserver.loading import load_models
    from modelserver.metrics import Metrics

    server_args = parse_args(server_flags(args))
    engine, _ = load_models(server_args, limits_from_args(server_args), Metrics())
    engine.close()  # the queues are not used here: the backends are called directly
    rows = measure_backends(engine.segmenter, engine.editor, work)
    del engine
    gc.collect()
    if torch.cuda.is_available():
        print(
            f"peak GPU memory in-process (both models, largest batches): "
            f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB",
            file=sys.stderr,
        )
        torch.cuda.empty_cache()
    return rows


def measure_backends(segmenter, editor, work: Workload) -> list[Row]:
    rows = []
    for b in BATCHES:
        batch = crops(b, work.crop_side)
        params = EditParams(1.5, 7.5, work.steps)
        runs = timed(lambda: editor.edit(batch, "make it red", params, seeds=list(range(b))), work.repeats)
        rows.append(Row("Edit", "in-process", str(b), b / statistics.median(runs), statistics.median(runs)))
    chunk = frames(work.chunk, work.frame_size)
    found = segmenter.segment(chunk, ["red square"])
    print(f"in-process Segment found {[len(f) for f in found]} instances per frame", file=sys.stderr)
    for b in BATCHES:
        runs = timed(lambda: segmenter.segment(chunk, ["red square"], vision_batch_size=b), work.repeats)
        rows.append(
            Row(
                "Segment",
                "in-process",
                f"{work.chunk} frames, backbone {b}",
                work.chunk / statistics.median(runs),
                statistics.median(runs),
            )
        )
    return rows


# Benchmarks repeat jobs and calls to compare them: a model server that keeps edited crops
# (modelserver/edit_results.py) would answer the repeats without computing them.
EDIT_EACH_TIME = ("--edit-results-mb", "0")


def server_flags(args) -> list[str]:
    return [
        *EDIT_EACH_TIME,
        "--random-weights",
        args.random_weights,
        "--device",
        args.device,
        "--dtype",
        args.dtype,
        "--max-batch-delay-ms",
        str(args.max_batch_delay_ms),
    ]


def edit_request(images: list[np.ndarray], steps: int, seed0: int = 0) -> pb.EditRequest:
    return pb.EditRequest(
        images=[wire.encode_image(i) for i in images],
        instruction="make it red",
        image_guidance_scale=1.5,
        guidance_scale=7.5,
        num_inference_steps=steps,
        seeds=list(range(seed0, seed0 + len(images))),
    )


def segment_request(chunk: list[np.ndarray]) -> pb.SegmentRequest:
    return pb.SegmentRequest(frames=[wire.encode_image(f, jpeg_quality=95) for f in chunk], prompts=["red square"])


def batch_histogram(metrics_address: str, model: str, name: str = "batch_size") -> tuple[float, float]:
    """(sum, count) of the server's histogram `videoedit_modelserver_<name>` for `model`."""
    text = urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10).read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        if family.name != f"videoedit_modelserver_{name}":
            continue
        for sample in family.samples:
            if sample.labels.get("model") == model and sample.name.endswith(("_sum", "_count")):
                values[sample.name.rsplit("_", 1)[1]] = sample.value
    return values.get("sum", 0.0), values.get("count", 0.0)


def concurrent(stub_call, requests: list, clients: int) -> tuple[float, list[float]]:
    """Each of `clients` threads sends its requests back to back; (wall seconds, per-call latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client(mine: list) -> None:
        for request in mine:
            started = time.perf_counter()
            stub_call(request, timeout=600)
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(requests[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies


def over_grpc(args, work: Workload, workdir: Path) -> list[Row]:
    stack = LocalStack(workdir, modelserver_args=tuple(server_flags(args)))
    stack.start_modelserver()
    rows = []
    try:
        channel = grpc.insecure_channel(
            stack.modelserver_address,
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        )
        stub = pb_grpc.ModelServiceStub(channel)
        for b in BATCHES:
            request = edit_request(crops(b, work.crop_side), work.steps)
            before = batch_histogram(stack.metrics_address, "edit")
            runs = timed(lambda: stub.Edit(request, timeout=600), work.repeats)
            rows.append(
                Row(
                    "Edit",
                    "gRPC",
                    str(b),
                    b / statistics.median(runs),
                    statistics.median(runs),
                    _mean_batch(before, batch_histogram(stack.metrics_address, "edit")),
                )
            )
        n = CLIENTS * work.repeats * 2
        requests = [edit_request(crops(1, work.crop_side, seed=i), work.steps, seed0=i) for i in range(n)]
        concurrent(stub.Edit, requests[:CLIENTS], CLIENTS)  # warm-up
        before = batch_histogram(stack.metrics_address, "edit")
        wall, latencies = concurrent(stub.Edit, requests, CLIENTS)
        rows.append(
            Row(
                "Edit",
                "gRPC",
                f"{CLIENTS} clients x 1",
                n / wall,
                statistics.median(latencies),
                _mean_batch(before, batch_histogram(stack.metrics_address, "edit")),
            )
        )

        request = segment_request(frames(work.chunk, work.frame_size))
        runs = timed(lambda: stub.Segment(request, timeout=600), work.repeats)
        rows.append(
            Row(
                "Segment",
                "gRPC",
                f"{work.chunk} frames, backbone 8",
                work.chunk / statistics.median(runs),
                statistics.median(runs),
            )
        )
        wall, latencies = concurrent(stub.Segment, [request] * (CLIENTS * 2), CLIENTS)
        rows.append(
            Row(
                "Segment",
                "gRPC",
                f"{CLIENTS} clients x {work.chunk} frames",
                CLIENTS * 2 * work.chunk / wall,
                statistics.median(latencies),
            )
        )
        channel.close()
    finally:
        stack.stop()
    return rows


def _mean_batch(before: tuple[float, float], after: tuple[float, float]) -> float | None:
    count = after[1] - before[1]
    return (after[0] - before[0]) / count if count else None


def add_ratios(rows: list[Row]) -> None:
    local = {(r.model, r.batch): r.items_per_s for r in rows if r.mode == "in-process"}
    for row in rows:
        if row.mode != "gRPC":
            continue
        if row.model == "Edit":
            key = ("Edit", "1" if "clients" in row.batch else row.batch)
        else:
            key = ("Segment", f"{row.batch.split(' x ')[-1]}, backbone 8" if "clients" in row.batch else row.batch)
        if key in local:
            row.ratio = row.items_per_s / local[key]


def print_table(rows: list[Row], title: str) -> None:
    print(f"\n{title}")
    print(f"{'model':<9}{'mode':<12}{'batch':<26}{'items/s':>9}{'latency s':>11}{'mean batch':>12}{'vs in-proc':>12}")
    for r in rows:
        mean = f"{r.mean_batch:.1f}" if r.mean_batch is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        print(f"{r.model:<9}{r.mode:<12}{r.batch:<26}{r.items_per_s:>9.2f}{r.latency_s:>11.3f}{mean:>12}{ratio:>12}")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.modelserver", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--random-weights", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--max-batch-delay-ms", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--workdir", type=Path, help="keep the model server's log here (default: a temp dir)")
    args = parser.parse_args(argv)
    work = Workload.for_weights(args.random_weights)
    print(
        f"model-server benchmark: {args.random_weights} random weights, device {args.device}, dtype {args.dtype}, "
        f"{work}",
        file=sys.stderr,
    )
    rows = in_process(args, work)
    if args.workdir:
        rows += over_grpc(args, work, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="videoedit-bench-ms-") as tmp:
            rows += over_grpc(args, work, Path(tmp))
    add_ratios(rows)
    print_table(
        rows,
        f"Model server, {args.random_weights} random-weight models, device {args.device}, "
        f"dtype {args.dtype}: Edit {work.crop_side}x{work.crop_side} crops, {work.steps} steps; "
        f"Segment {work.frame_size[0]}x{work.frame_size[1]} frames",
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "workload": asdict(work),
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "rows": [asdict(r) for r in rows],
                },
                indent=1,
            )
        )
    return rows


if __name__ == "__main__":
    main()
