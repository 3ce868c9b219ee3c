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
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import text_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc

from .engine import BatchingConfig, ModelEngine
from .metrics import Metrics
from .requests import Limits
from .service import ModelServicer
from .weights import DEFAULT_CACHE_DIR, ModelSource, WeightsError, resolve_sources

log = logging.getLogger("videoedit.modelserver")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModelService"].full_name


def pick_device(device: str, dtype: str):
    """('auto'|'cpu'|'cuda'|'cuda:N', 'auto'|name) -> (device str, torch dtype)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        if device.startswith("cuda"):
            return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return device, torch.float32
    return device, getattr(torch, dtype)


def sam3_settings(args) -> dict:
    """SAM3 config overrides from the flags (unset flags keep the checkpoint's values)."""
    settings = {"hotstart_delay": args.sam3_hotstart_delay}
    if args.sam3_score_threshold is not None:
        settings["score_threshold_detection"] = args.sam3_score_threshold
    if args.sam3_new_det_threshold is not None:
        settings["new_det_thresh"] = args.sam3_new_det_threshold
    return settings


def limits_from_args(args) -> Limits:
    return Limits(args.max_segment_frames, args.max_edit_batch)


def load_models(args, limits: Limits, metrics: Metrics) -> tuple[ModelEngine, pb.ModelServerInfo]:
    from .instruct_pix2pix import InstructPix2PixEditor
    from .sam3 import Sam3Segmenter

    device, dtype = pick_device(args.device, args.dtype)
    overrides = sam3_settings(args)
    if args.random_weights == "full":
        from .random_weights import full_size_instruct_pix2pix, full_size_sam3

        hotstart_delay = overrides.pop("hotstart_delay")
        segmenter = full_size_sam3(device, dtype, hotstart_delay=hotstart_delay, **overrides)
        editor = full_size_instruct_pix2pix(device, dtype)
        sam3_src = pix2pix_src = ModelSource("random-weights-full")
    else:
        sam3_src, pix2pix_src = resolve_sources(args.sam3, args.pix2pix, args.random_weights == "tiny",
                                                Path(args.cache_dir))
        log.info("loading SAM3 from %s and InstructPix2Pix from %s on %s (%s)", sam3_src.path_or_id,
                 pix2pix_src.path_or_id, device, dtype)
        segmenter = Sam3Segmenter.from_pretrained(sam3_src.path_or_id, device=device, dtype=dtype, **overrides)
        editor = InstructPix2PixEditor.from_pretrained(pix2pix_src.path_or_id, device=device, dtype=dtype,
                                                       device_map=args.pix2pix_device_map)
    batching = BatchingConfig(args.edit_max_batch_size, args.segment_frame_batch, args.max_batch_delay_ms,
                              args.max_queued_calls)
    engine = ModelEngine(segmenter, editor, batching, metrics)
    warmup_seconds = engine.warm_up()
    log.info("warm-up batch ran in %.2f s", warmup_seconds)
    random = args.random_weights is not None or sam3_src.tiny
    config = segmenter.model.config
    info = pb.ModelServerInfo(
        segmenter=pb.ModelInfo(
            source=sam3_src.path_or_id, architecture=type(segmenter.model).__name__, tiny=sam3_src.tiny,
            revision=sam3_src.revision, random_weights=random,
            settings={k: str(getattr(config, k)) for k in ("hotstart_delay", "score_threshold_detection",
                                                          "new_det_thresh", "det_nms_thresh")}),
        editor=pb.ModelInfo(source=pix2pix_src.path_or_id, architecture=type(editor.pipe).__name__,
                            tiny=pix2pix_src.tiny, revision=pix2pix_src.revision, random_weights=random,
                            settings={"device_map": str(args.pix2pix_device_map or "")}),
        device=device, dtype=str(dtype).removeprefix("torch."), segment_image_size=segmenter.image_size,
        max_segment_frames=limits.max_segment_frames, max_edit_batch=limits.max_edit_batch,
        max_message_bytes=args.max_message_mb * 1024 * 1024,
        edit_max_batch_size=batching.edit_max_batch_size, segment_frame_batch=batching.segment_frame_batch,
        max_batch_delay_ms=batching.max_delay_ms, max_queued_calls=batching.max_queued_calls,
        warmup_seconds=warmup_seconds)
    return engine, info


def serve(args, metrics: Metrics) -> tuple[grpc.Server, ModelServicer, health.HealthServicer, int]:
    limit = args.max_message_mb * 1024 * 1024
    # Enough RPC threads for every queued call to wait in its queue (the queues bound the work).
    workers = 2 * args.max_queued_calls + 8
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"), options=[
        ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
        # Clients ping every 30 s during long calls to detect dead replicas; gRPC's default
        # policy would count those pings as abuse and close the connection mid-call.
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000), ("grpc.http2.max_ping_strikes", 0)])
    servicer = ModelServicer(limits_from_args(args), metrics)
    pb_grpc.add_ModelServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    set_health(health_servicer, serving=False)
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    log.info("ModelService on port %d (NOT_SERVING until the models are loaded and warmed up)", port)
    return server, servicer, health_servicer, port


def set_health(health_servicer: health.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, status)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="videoedit-modelserver", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default=env.get("VIDEOEDIT_HOST", "[::]"))
    parser.add_argument("--port", type=int, default=int(env.get("VIDEOEDIT_MODELSERVER_PORT", 50052)))
    weights = parser.add_argument_group("weights")
    weights.add_argument("--sam3", help="SAM3 dir, sam3.pt inside a facebook/sam3 download, or hub id "
                                        "(default: $SAM3_MODEL_PATH, else facebook/sam3 if cached)")
    weights.add_argument("--pix2pix", help="InstructPix2Pix dir or hub id (default: $INSTRUCT_PIX2PIX_MODEL_PATH, "
                                           "else timbrooks/instruct-pix2pix if cached)")
    weights.add_argument("--random-weights", choices=["tiny", "full"],
                         help="tiny: small random models (plumbing); full: the real architectures with "
                              "random weights (GPU timing without downloads)")
    weights.add_argument("--tiny", dest="random_weights", action="store_const", const="tiny",
                         help="same as --random-weights tiny")
    weights.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="where tiny models are built")
    device = parser.add_argument_group("device")
    device.add_argument("--device", default=env.get("VIDEOEDIT_DEVICE", "auto"), help="auto|cpu|cuda|cuda:N")
    device.add_argument("--dtype", default=env.get("VIDEOEDIT_DTYPE", "auto"),
                        choices=["auto", "float16", "bfloat16", "float32"],
                        help="auto: bfloat16 (or float16) on GPU, float32 on CPU")
    device.add_argument("--pix2pix-device-map", choices=["balanced"],
                        help="spread InstructPix2Pix over all visible GPUs (the seed's device_map)")
    sam3 = parser.add_argument_group("SAM3")
    sam3.add_argument("--sam3-hotstart-delay", type=int, default=15,
                      help="frames SAM3 holds outputs back to drop spurious/duplicate tracks (0: off)")
    sam3.add_argument("--sam3-score-threshold", type=float, help="detection score threshold (checkpoint: 0.5)")
    sam3.add_argument("--sam3-new-det-threshold", type=float,
                      help="score a detection needs to start a new track (checkpoint: 0.7)")
    batching = parser.add_argument_group("batching and limits")
    batching.add_argument("--edit-max-batch-size", type=int, default=8, help="crops per InstructPix2Pix batch")
    batching.add_argument("--segment-frame-batch", type=int, default=8, help="frames per SAM3 backbone pass")
    batching.add_argument("--max-batch-delay-ms", type=float, default=10.0,
                          help="how long a batch waits for more calls to join")
    batching.add_argument("--max-queued-calls", type=int, default=64, help="per model; beyond: RESOURCE_EXHAUSTED")
    batching.add_argument("--max-segment-frames", type=int, default=64, help="frames per Segment call")
    batching.add_argument("--max-edit-batch", type=int, default=16, help="crops per Edit call")
    batching.add_argument("--max-message-mb", type=int, default=64)
    ops = parser.add_argument_group("operations")
    ops.add_argument("--metrics-port", type=int, default=int(env.get("VIDEOEDIT_METRICS_PORT", 9091)),
                     help="Prometheus /metrics port (0: off)")
    ops.add_argument("--drain-timeout-s", type=float, default=60.0,
                     help="on shutdown, how long queued and running batches may take to finish")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # OpenMP threads busy-wait by default; on a CPU shared with the orchestrator
    # that made the models 10-20x slower (measured on 2 cores). Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    metrics = Metrics()
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    server, servicer, health_servicer, _ = serve(args, metrics)
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
    stop.wait()
    log.info("shutting down: NOT_SERVING, draining queued and running batches")
    set_health(health_servicer, serving=False)
    drained = engine.close(args.drain_timeout_s)
    if drained:
        log.info("drained")
    else:
        log.warning("drain timed out after %.0f s; stopping anyway", args.drain_timeout_s)
    server.stop(grace=5).wait()


if __name__ == "__main__":
    main()
