"""`videoedit demo` / `make demo`: a real edit job through both services.

Makes a sample clip, starts the model server and the orchestrator as local
processes, runs one job over gRPC with a progress bar, and prints where the
outputs are. With no weights configured the model server uses tiny
random-weight models, and the demo says so: the output then shows that the
pipeline works, not what a real edit looks like.
"""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from videoedit.v1 import model_service_pb2, model_service_pb2_grpc

from .client import VideoEditClient
from .follow import describe, exit_code, follow
from .local_stack import LocalStack
from .sample_clip import make_sample_clip

MASK_PROMPT, EDIT_PROMPT = "car", "make the car blue"


def run_demo(workdir: Path, frames: int = 48, steps: int | None = None) -> int:
    workdir = workdir.resolve()
    clip = make_sample_clip(workdir / "media" / "sample.mp4", frames=frames)
    print(f"sample clip: {clip} ({frames} frames, 320x240, 24 fps, with audio)")
    print("starting the model server and the orchestrator (first run builds tiny models, ~1 min)...")
    started = time.monotonic()
    with LocalStack(workdir, input_roots=[clip.parent], output_root=workdir / "outputs") as stack:
        with grpc.insecure_channel(stack.modelserver_address) as channel:
            info = model_service_pb2_grpc.ModelServiceStub(channel).GetInfo(model_service_pb2.GetInfoRequest())
        tiny = info.segmenter.tiny or info.editor.tiny
        print(
            f"model server {stack.modelserver_address}: SAM3 {info.segmenter.source}, InstructPix2Pix "
            f"{info.editor.source} on {info.device} ({info.dtype})"
        )
        if tiny:
            print(
                "NOTE: no model weights are configured, so the model server runs TINY RANDOM-WEIGHT models.\n"
                "      The job runs every real step, but the edited pixels are NOT meaningful.\n"
                "      Set SAM3_MODEL_PATH and INSTRUCT_PIX2PIX_MODEL_PATH for real edits."
            )
        steps = steps or (4 if tiny else 50)
        with VideoEditClient(stack.orchestrator_address) as client:
            status = client.start_edit(str(clip), MASK_PROMPT, EDIT_PROMPT, num_inference_steps=steps)
            print(f"job {status.job_id}: mask {MASK_PROMPT!r}, edit {EDIT_PROMPT!r}, {steps} steps")
            final = follow(client, status.job_id)
        print(describe(final))
        print(f"server logs: {stack.log_path('modelserver')}, {stack.log_path('orchestrator')}")
    print(f"demo took {time.monotonic() - started:.1f}s")
    print("for the web page (upload, edit, watch, compare): `make serve`, then open http://127.0.0.1:8000")
    return exit_code(final)
