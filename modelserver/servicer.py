"""ModelService servicer: decode and check the request, hand it to the engine, encode the result.

Errors become status codes here, in one place (`_rpc`), which also counts every RPC by code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from videoedit.v1 import geometry_pb2, wire
from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc

from .batching import ClientCancelled, DeadlinePassed, QueueFull, ShuttingDown
from .engine import ModelEngine
from .metrics import Metrics
from .sessions import SessionError
from .validation import InvalidInput, Limits, decode_edit, decode_segment

log = logging.getLogger(__name__)


class NotLoaded(Exception):
    """A call came before the models were loaded (-> UNAVAILABLE: retry once health is SERVING)."""


class ModelServicer(pb_grpc.ModelServiceServicer):
    """The model server's gRPC API (videoedit.v1.ModelService): decodes and checks each Segment
    and Edit request against the Limits, hands it to the ModelEngine with the client's deadline
    and cancellation, and encodes the result. It serves before the models are loaded (calls get
    UNAVAILABLE until `load()`), and maps every error to its status code in one place, counting
    each RPC by code."""

    def __init__(self, limits: Limits, metrics: Metrics):
        self.limits = limits
        self.metrics = metrics
        self.engine: ModelEngine | None = None  # set by load(); calls before that get UNAVAILABLE
        self.info: pb.ModelServerInfo | None = None

    def load(self, engine: ModelEngine, info: pb.ModelServerInfo) -> None:
        self.engine, self.info = engine, info

    def Segment(self, request: pb.SegmentRequest, context) -> pb.SegmentResponse:
        with self._rpc("Segment", context):
            engine = self._engine()
            call = decode_segment(request, self.limits)
            call.prompts = [self._fit(engine, prompt) for prompt in call.prompts]
            results = engine.segment(call, _deadline(context), context.add_callback)
            return pb.SegmentResponse(
                frames=[
                    pb.FrameSegmentation(
                        frame_index=i,
                        instances=[
                            pb.Instance(
                                object_id=inst.object_id,
                                prompt=inst.prompt,
                                score=inst.score,
                                box=geometry_pb2.Box(x0=inst.box[0], y0=inst.box[1], x1=inst.box[2], y1=inst.box[3]),
                                mask=wire.encode_mask(inst.mask),
                            )
                            for inst in instances
                        ],
                    )
                    for i, instances in enumerate(results)
                ],
                prompts_used=call.prompts,
            )

    def Edit(self, request: pb.EditRequest, context) -> pb.EditResponse:
        with self._rpc("Edit", context):
            engine = self._engine()
            call = decode_edit(request, self.limits, engine.editor.size_multiple)
            edited = engine.edit(call, _deadline(context), context.add_callback)
            return pb.EditResponse(images=[wire.encode_image(img) for img in edited])

    def GetInfo(self, request: pb.GetInfoRequest, context) -> pb.ModelServerInfo:
        with self._rpc("GetInfo", context):
            self._engine()
            return self.info

    @staticmethod
    def _fit(engine: ModelEngine, prompt: str) -> str:
        used = engine.segmenter.fit_prompt(prompt)
        if used != prompt:
            log.warning(
                "Segment prompt %r is longer than SAM3's %d-token text window; using %r",
                prompt[:200],
                engine.segmenter.max_prompt_tokens,
                used,
            )
        return used

    def _engine(self) -> ModelEngine:
        if self.engine is None or self.info is None:
            raise NotLoaded("models are still loading; retry when health is SERVING")
        return self.engine

    @contextmanager
    def _rpc(self, name: str, context) -> Iterator[None]:
        code, message = grpc.StatusCode.OK, ""
        try:
            yield
        except InvalidInput as err:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(err)
        except SessionError as err:
            code, message = grpc.StatusCode.FAILED_PRECONDITION, str(err)
        except QueueFull as err:
            code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(err)
        except (ShuttingDown, NotLoaded) as err:
            code, message = grpc.StatusCode.UNAVAILABLE, str(err)
        except DeadlinePassed as err:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, str(err)
        except ClientCancelled as err:
            code, message = grpc.StatusCode.CANCELLED, str(err)
        except Exception as err:
            log.exception("%s failed", name)
            if type(err).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
                code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, f"out of device memory: {err}; send smaller batches"
            else:
                code, message = grpc.StatusCode.INTERNAL, f"{name} failed: {type(err).__name__}: {err}"
        self.metrics.requests.labels(name, code.name).inc()
        if code is not grpc.StatusCode.OK:
            context.abort(code, message)


def _deadline(context) -> float | None:
    """The client's deadline on time.monotonic()'s clock, or None without one."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining
