"""ModelService servicer: decode, check, run the backend, encode. Nothing else.

One lock per model: a GPU runs one batch of a model at a time, and the
backends are not thread-safe.
"""

from __future__ import annotations

import logging
import threading

import grpc

from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc
from videoedit.v1 import wire

from .requests import InvalidInput, Limits, decode_edit, decode_segment

log = logging.getLogger(__name__)


class ModelServicer(pb_grpc.ModelServiceServicer):
    def __init__(self, limits: Limits):
        self.limits = limits
        self.segmenter = None  # set by load(); calls before that get UNAVAILABLE
        self.editor = None
        self.info: pb.ModelServerInfo | None = None
        self._segment_lock = threading.Lock()
        self._edit_lock = threading.Lock()

    def load(self, segmenter, editor, info: pb.ModelServerInfo) -> None:
        self.segmenter, self.editor, self.info = segmenter, editor, info

    def Segment(self, request: pb.SegmentRequest, context) -> pb.SegmentResponse:
        self._require_loaded(context)
        try:
            frames, prompts = decode_segment(request, self.limits)
        except InvalidInput as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        with self._segment_lock:
            results = self.segmenter.segment(frames, prompts)
        return pb.SegmentResponse(frames=[
            pb.FrameSegmentation(frame_index=i, instances=[
                pb.Instance(object_id=inst.object_id, prompt=inst.prompt, score=inst.score,
                            box=pb.Box(x0=inst.box[0], y0=inst.box[1], x1=inst.box[2], y1=inst.box[3]),
                            mask=wire.encode_mask(inst.mask))
                for inst in instances])
            for i, instances in enumerate(results)])

    def Edit(self, request: pb.EditRequest, context) -> pb.EditResponse:
        self._require_loaded(context)
        try:
            call = decode_edit(request, self.limits, self.editor.size_multiple)
        except InvalidInput as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        with self._edit_lock:
            edited = self.editor.edit(call.images, call.instruction, call.image_guidance_scale,
                                      call.guidance_scale, call.num_inference_steps, call.seeds)
        return pb.EditResponse(images=[wire.encode_image(img) for img in edited])

    def GetInfo(self, request: pb.GetInfoRequest, context) -> pb.ModelServerInfo:
        self._require_loaded(context)
        return self.info

    def _require_loaded(self, context) -> None:
        if self.info is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "models are still loading; retry when health is SERVING")
