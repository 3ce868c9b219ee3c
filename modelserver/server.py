"""`videoedit-modelserver`: SAM3 + InstructPix2Pix behind ModelService.

The port opens at once with health NOT_SERVING; the models load (tiny ones
are built first when no weights are configured), and health turns SERVING.
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
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc

from .requests import Limits
from .service import ModelServicer
from .weights import DEFAULT_CACHE_DIR, WeightsError, resolve_sources

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


def load_models(args, servicer: ModelServicer) -> None:
    from .instruct_pix2pix import InstructPix2PixEditor
    from .sam3 import Sam3Segmenter

    sam3_src, pix2pix_src = resolve_sources(args.sam3, args.pix2pix, args.tiny, Path(args.cache_dir))
    device, dtype = pick_device(args.device, args.dtype)
    log.info("loading SAM3 from %s and InstructPix2Pix from %s on %s (%s)", sam3_src.path_or_id,
             pix2pix_src.path_or_id, device, dtype)
    segmenter = Sam3Segmenter.from_pretrained(sam3_src.path_or_id, device=device, dtype=dtype)
    editor = InstructPix2PixEditor.from_pretrained(pix2pix_src.path_or_id, device=device, dtype=dtype)
    info = pb.ModelServerInfo(
        segmenter=pb.ModelInfo(source=sam3_src.path_or_id, architecture=type(segmenter.model).__name__,
                               tiny=sam3_src.tiny),
        editor=pb.ModelInfo(source=pix2pix_src.path_or_id, architecture=type(editor.pipe).__name__,
                            tiny=pix2pix_src.tiny),
        device=device, dtype=str(dtype).removeprefix("torch."), segment_image_size=segmenter.image_size,
        max_segment_frames=servicer.limits.max_segment_frames, max_edit_batch=servicer.limits.max_edit_batch,
        max_message_bytes=args.max_message_mb * 1024 * 1024)
    servicer.load(segmenter, editor, info)


def serve(args) -> tuple[grpc.Server, ModelServicer, health.HealthServicer, int]:
    limit = args.max_message_mb * 1024 * 1024
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="rpc"), options=[
        ("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)])
    servicer = ModelServicer(Limits(args.max_segment_frames, args.max_edit_batch))
    pb_grpc.add_ModelServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    log.info("ModelService on port %d (NOT_SERVING until the models are loaded)", port)
    return server, servicer, health_servicer, port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(prog="videoedit-modelserver", description=__doc__)
    parser.add_argument("--host", default=env.get("VIDEOEDIT_HOST", "[::]"))
    parser.add_argument("--port", type=int, default=int(env.get("VIDEOEDIT_MODELSERVER_PORT", 50052)))
    parser.add_argument("--sam3", help="SAM3 dir or hub id (default: $SAM3_MODEL_PATH)")
    parser.add_argument("--pix2pix", help="InstructPix2Pix dir or hub id (default: $INSTRUCT_PIX2PIX_MODEL_PATH)")
    parser.add_argument("--tiny", action="store_true", help="tiny random-weight models (plumbing only)")
    parser.add_argument("--device", default=env.get("VIDEOEDIT_DEVICE", "auto"), help="auto|cpu|cuda|cuda:N")
    parser.add_argument("--dtype", default=env.get("VIDEOEDIT_DTYPE", "auto"),
                        choices=["auto", "float16", "bfloat16", "float32"])
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="where tiny models are built")
    parser.add_argument("--max-segment-frames", type=int, default=64)
    parser.add_argument("--max-edit-batch", type=int, default=16)
    parser.add_argument("--max-message-mb", type=int, default=64)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # OpenMP threads busy-wait by default; on a CPU shared with the orchestrator
    # that made the models 10-20x slower (measured on 2 cores). Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server, servicer, health_servicer, _ = serve(args)
    try:
        load_models(args, servicer)
    except (WeightsError, OSError, ValueError) as err:
        log.error("cannot load the models: %s", err)
        server.stop(grace=0)
        sys.exit(2)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("SERVING: %s", servicer.info)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    server.stop(grace=10).wait()


if __name__ == "__main__":
    main()
