"""`videoedit-modelserver`: SAM3 + InstructPix2Pix behind ModelService.

The port opens at once with health NOT_SERVING; the models load (tiny ones are built first
when no weights are configured), a warm-up batch runs through each, and health turns SERVING.
On SIGTERM/SIGINT health turns NOT_SERVING, new calls get UNAVAILABLE (clients retry on another
replica), queued and running batches finish, then the server stops.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from google.protobuf import text_format

from videoedit.v1 import contract

from .loading import load_models
from .metrics import Metrics
from .server import serve, set_health
from .validation import Limits
from .weights import DEFAULT_CACHE_DIR, WeightsError

log = logging.getLogger("videoedit.modelserver")


def limits_from_args(args) -> Limits:
    return Limits(args.max_segment_frames, args.max_edit_batch)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="videoedit-modelserver", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    # Loopback unless told: containers set VIDEOEDIT_HOST=0.0.0.0 (Dockerfile, compose, Kubernetes).
    parser.add_argument("--host", default=env.get("VIDEOEDIT_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("VIDEOEDIT_MODELSERVER_PORT", 50052)))
    _add_weights_flags(parser, env)
    _add_device_flags(parser, env)
    _add_sam3_flags(parser, env)
    _add_batching_flags(parser, env)
    _add_operations_flags(parser, env)
    return parser.parse_args(argv)


def _add_weights_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The weights flags."""
    weights = parser.add_argument_group("weights")
    weights.add_argument(
        "--sam3",
        help="SAM3 dir, hub id, or Meta's sam3.pt (converted once into --cache-dir) "
        "(default: $SAM3_MODEL_PATH, else facebook/sam3 if cached)",
    )
    weights.add_argument(
        "--pix2pix",
        help="InstructPix2Pix dir or hub id (default: $INSTRUCT_PIX2PIX_MODEL_PATH, "
        "else timbrooks/instruct-pix2pix if cached)",
    )
    weights.add_argument(
        "--random-weights",
        choices=["tiny", "full"],
        help="tiny: small random models (plumbing); full: the real architectures with "
        "random weights (GPU timing without downloads)",
    )
    weights.add_argument(
        "--tiny", dest="random_weights", action="store_const", const="tiny", help="same as --random-weights tiny"
    )
    weights.add_argument(
        "--cache-dir", default=str(DEFAULT_CACHE_DIR), help="where tiny models are built and sam3.pt is converted"
    )


def _add_device_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The device flags."""
    device = parser.add_argument_group("device")
    device.add_argument("--device", default=env.get("VIDEOEDIT_DEVICE", "auto"), help="auto|cpu|cuda|cuda:N")
    dtypes = ["auto", "float16", "bfloat16", "float32"]
    device.add_argument(
        "--dtype",
        default=env.get("VIDEOEDIT_DTYPE", "auto"),
        choices=dtypes,
        help="both models' dtype unless set apart below; auto: each model's GPU default, float32 on CPU",
    )
    device.add_argument(
        "--sam3-dtype",
        default=env.get("VIDEOEDIT_SAM3_DTYPE"),
        choices=dtypes,
        help="SAM3's dtype (auto on GPU: bfloat16, or float16 where bfloat16 is missing)",
    )
    device.add_argument(
        "--pix2pix-dtype",
        default=env.get("VIDEOEDIT_PIX2PIX_DTYPE"),
        choices=dtypes,
        help="InstructPix2Pix's dtype (auto on GPU: float16; a VAE decode that overflows is redone in float32)",
    )
    device.add_argument(
        "--compile",
        action="store_true",
        help="channels-last, fused attention projections and torch.compile for InstructPix2Pix's "
        "UNet; batches are padded to 1/2/4/8 and each is warmed up before SERVING",
    )
    device.add_argument(
        "--warmup-side", type=int, default=0, help="Edit warm-up crop size (0: 512, or 64 for tiny models)"
    )
    device.add_argument(
        "--pix2pix-device-map",
        choices=["balanced"],
        help="spread InstructPix2Pix over all visible GPUs (the original worker's device_map)",
    )


def _add_sam3_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The SAM3 flags."""
    sam3 = parser.add_argument_group("SAM3")
    sam3.add_argument(
        "--sam3-hotstart-delay",
        type=int,
        default=15,
        help="frames SAM3 holds outputs back to drop spurious/duplicate tracks (0: off)",
    )
    sam3.add_argument(
        "--max-tracking-sessions",
        type=int,
        default=8,
        help="videos whose SAM3 tracking state this replica keeps between Segment calls "
        "(the least recently used is ended to open another; 0: none)",
    )
    sam3.add_argument(
        "--tracking-session-idle-s",
        type=float,
        default=300.0,
        help="a tracking session without calls for this long ends",
    )
    sam3.add_argument(
        "--sam3-recondition",
        choices=("detections", "tracks"),
        default="detections",
        help="what a confident track is re-seeded with every 16th frame: the detector's mask, as Meta's "
        "video model does (default), or the tracker's own (transformers' default)",
    )
    sam3.add_argument("--sam3-score-threshold", type=float, help="detection score threshold (checkpoint: 0.5)")
    sam3.add_argument(
        "--sam3-new-det-threshold", type=float, help="score a detection needs to start a new track (checkpoint: 0.7)"
    )


def _add_batching_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The batching and limits flags."""
    batching = parser.add_argument_group("batching and limits")
    batching.add_argument("--edit-max-batch-size", type=int, default=8, help="crops per InstructPix2Pix batch")
    batching.add_argument("--segment-frame-batch", type=int, default=8, help="frames per SAM3 backbone pass")
    batching.add_argument(
        "--edit-results-mb",
        type=float,
        default=256,
        help="edited crops kept by what they were computed from, so a crop sent again (a killed "
        "orchestrator's job resumed) is not denoised twice (0: none)",
    )
    batching.add_argument(
        "--max-batch-delay-ms", type=float, default=10.0, help="how long a batch waits for more calls to join"
    )
    batching.add_argument("--max-queued-calls", type=int, default=64, help="per model; beyond: RESOURCE_EXHAUSTED")
    batching.add_argument(
        "--max-segment-frames", type=int, default=contract.MAX_SEGMENT_FRAMES, help="frames per Segment call"
    )
    batching.add_argument("--max-edit-batch", type=int, default=contract.MAX_EDIT_BATCH, help="crops per Edit call")
    batching.add_argument("--max-message-mb", type=int, default=64)
    batching.add_argument(
        "--simulate-edit-delay-ms",
        type=float,
        default=0.0,
        help="benchmarks only: make every Edit item take at least this long, as on a GPU",
    )
    batching.add_argument(
        "--simulate-segment-delay-ms",
        type=float,
        default=0.0,
        help="benchmarks only: make every Segment frame take at least this long, as on a GPU",
    )


def _add_operations_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The operations flags."""
    ops = parser.add_argument_group("operations")
    ops.add_argument(
        "--metrics-port",
        type=int,
        default=int(env.get("VIDEOEDIT_METRICS_PORT", 9091)),
        help="Prometheus /metrics port (0: off); it listens on VIDEOEDIT_METRICS_HOST (default: loopback, "
        "every interface in a container)",
    )
    ops.add_argument(
        "--drain-timeout-s",
        type=float,
        default=60.0,
        help="on shutdown, how long queued and running batches may take to finish",
    )


def convert_sam3(argv: list[str]) -> None:
    """`videoedit-modelserver convert-sam3 SRC DST`: Meta's sam3.pt -> a transformers-format dir."""
    parser = argparse.ArgumentParser(
        prog="videoedit-modelserver convert-sam3",
        description="Convert Meta's sam3.pt into a transformers-format SAM3 directory (config.json, "
        "model.safetensors, processor) that --sam3 / SAM3_MODEL_PATH can name.",
    )
    parser.add_argument("src", help="Meta's sam3.pt")
    parser.add_argument("dst", help="the directory to write (one that exists is taken as converted already)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from .backends.sam3_convert import ConversionError, convert_once

    try:
        convert_once(Path(args.src), Path(args.dst))
    except (ConversionError, OSError) as err:
        log.error("cannot convert %s: %s", args.src, err)
        sys.exit(2)
    log.info("converted %s into %s; set SAM3_MODEL_PATH=%s", args.src, args.dst, args.dst)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["convert-sam3"]:
        convert_sam3(argv[1:])
        return
    args = parse_args(argv)
    # OpenMP threads busy-wait by default; on a CPU shared with the orchestrator
    # that made the models 10-20x slower (measured on 2 cores). Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    metrics = Metrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port, contract.metrics_host(os.environ))
    server, servicer, health_servicer, _ = serve(
        f"{args.host}:{args.port}",
        limits_from_args(args),
        metrics,
        args.max_message_mb,
        args.max_queued_calls,
        os.environ.get("VIDEOEDIT_MODEL_TOKEN") or None,
    )
    try:
        engine, info = load_models(args, servicer.limits, metrics)
    except (WeightsError, OSError, ValueError) as err:
        log.error("cannot load the models: %s", err)
        server.stop(grace=0)
        sys.exit(2)
    servicer.load(engine, info)
    set_health(health_servicer, serving=True)
    log.info("SERVING: %s", text_format.MessageToString(info, as_one_line=True))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # Wake up every second: the kernel may deliver SIGTERM to any thread, and Python runs the
    # handler only when the main thread next runs bytecode (an untimed wait could sleep through it).
    while not stop.wait(1.0):
        pass
    log.info("shutting down: NOT_SERVING, draining queued and running batches")
    set_health(health_servicer, serving=False)
    drained = engine.close(args.drain_timeout_s)
    if drained:
        log.info("drained")
    else:
        log.warning("drain timed out after %.0f s; stopping anyway", args.drain_timeout_s)
    server.stop(grace=5).wait()
