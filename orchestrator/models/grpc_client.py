"""`Models` over gRPC: the orchestrator's side of ModelService, numpy in, numpy out.

Frames are downscaled to the size SAM3 works at and sent as JPEG; masks come
back run-length encoded and are scaled up to the frame size here. Every call
has a deadline; UNAVAILABLE is retried by the channel's retry policy (a call
that never reached a model is safe to retry) and round_robin spreads calls over
the replicas a target resolves to. A tracker's Segment calls go to one replica
instead (its tracking session lives there), over a channel of their own.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import cv2
import grpc
import numpy as np
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc
from videoedit.v1 import wire
from videoedit.v1.auth import bearer_metadata
from videoedit.v1.contract import EditParams, FramePrompt

from ..errors import ModelServerError, ModelServerUnavailable, TrackingLost
from ..resample import shrink
from .base import Detection, ModelsInfo, Segmentation, Tracker
from .calls import ModelCalls

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# How long closing the client waits for the calls in flight, once their channels are closed.
CALLS_STOP_S = 10.0
UNREACHABLE_S = 60.0  # a replica that lost a session to UNAVAILABLE gets new ones last for this long
SEGMENT_JPEG_QUALITY = 95
READY_CHECK_S = 2.0  # how long the health check before a claim may take

_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": "videoedit.v1.ModelService"}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "5s",
                    "backoffMultiplier": 2,
                    # UNAVAILABLE: a replica is down or draining. RESOURCE_EXHAUSTED: its queue is
                    # full; backing off (up to ~10 s over the attempts) lets it catch up.
                    "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
                },
            }
        ],
    }
)


def channel_target(servers: str) -> str:
    """VIDEOEDIT_MODEL_SERVERS -> a gRPC target. One address or URI (`host:port`,
    `dns:///host:port`) passes as is; a comma-separated list of `host:port` becomes an `ipv4:`
    (or `ipv6:`) target of every resolved address, so round_robin spreads calls over them."""
    entries = [e.strip() for e in servers.split(",") if e.strip()]
    if len(entries) <= 1:
        return entries[0] if entries else servers
    v4, v6 = [], []
    for entry in entries:
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"VIDEOEDIT_MODEL_SERVERS entry {entry!r} is not host:port")
        for family, *_, sockaddr in socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM):
            (v4 if family == socket.AF_INET else v6).append((sockaddr[0], int(port)))
    if v4:  # one target holds one address family
        return "ipv4:" + ",".join(f"{ip}:{port}" for ip, port in dict.fromkeys(v4))
    return "ipv6:" + ",".join(f"[{ip}]:{port}" for ip, port in dict.fromkeys(v6))


def replica_addresses(servers: str) -> list[str]:
    """The model-server replicas VIDEOEDIT_MODEL_SERVERS names now, one `host:port` each: every
    address its entries resolve to (a Kubernetes headless Service resolves to its ready pods).
    A target that is not `host:port` (e.g. `unix:`) is one replica as it is."""
    addresses: list[str] = []
    for entry in (e.strip() for e in servers.split(",")):
        host_port = entry.removeprefix("dns:///")
        host, _, port = host_port.rpartition(":")
        if not host or not port.isdigit() or "://" in host_port or host_port.startswith("unix:"):
            addresses.append(entry)
            continue
        try:
            found = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
        except OSError:
            addresses.append(host_port)  # let the channel say what is wrong with it
            continue
        for family, *_, sockaddr in found:
            addresses.append(f"[{sockaddr[0]}]:{port}" if family == socket.AF_INET6 else f"{sockaddr[0]}:{port}")
    return list(dict.fromkeys(a for a in addresses if a))


def _channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            # A call is retried only while its request is still buffered; the default 256 KiB
            # would rule out retrying a chunk of frames, exactly the call a dying replica drops.
            ("grpc.per_rpc_retry_buffer_size", MAX_MESSAGE_BYTES),
            ("grpc.retry_buffer_size", 4 * MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Ping during long calls so a replica that died silently is noticed in ~40 s
            # (model servers accept pings this often; see modelserver.server.serve).
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # A model server back from an outage is seen within seconds, not after gRPC's default
            # back-off of up to two minutes (claims wait for it meanwhile).
            ("grpc.initial_reconnect_backoff_ms", 1_000),
            ("grpc.max_reconnect_backoff_ms", 5_000),
        ],
    )


class ModelClient:
    """Implements `Models` against the model server(s) of VIDEOEDIT_MODEL_SERVERS."""

    def __init__(self, target: str, timeout_s: float = 600.0, token: str | None = None):
        self.target = target
        self.timeout_s = timeout_s
        # Every ModelService call carries the model servers' token (VIDEOEDIT_MODEL_TOKEN), if any.
        self.metadata = bearer_metadata(token)
        self._channel = _channel(channel_target(target))
        self._stub = pb_grpc.ModelServiceStub(self._channel)
        self._info: pb.ModelServerInfo | None = None
        self._sessions_lock = threading.Lock()
        self._sessions_on: Counter[str] = Counter()  # replica -> this client's open tracking sessions
        self._unreachable: dict[str, float] = {}  # replica -> when a session there was lost to UNAVAILABLE
        self._turn = itertools.count()
        self.calls = ModelCalls()

    def close(self) -> None:
        """Close the channel (the calls in flight on it end with CANCELLED) and wait for the calls."""
        self._channel.close()
        if left := self.calls.wait(CALLS_STOP_S):
            log.warning("%d model call(s) still running after closing the connection to %s", left, self.target)

    def info(self, wait_s: float = 0.0) -> ModelsInfo:
        """Server info (GetInfo, cached). With `wait_s`, first waits that long for a server to be
        SERVING (model servers open their port before their models are loaded)."""
        info = self._server_info(wait_s)
        return ModelsInfo(
            tiny=info.segmenter.tiny or info.editor.tiny,
            max_edit_batch=info.max_edit_batch,
            description=f"{self.target}: {json_format.MessageToJson(info, indent=None)}",
            identity=json_format.MessageToJson(
                pb.ModelServerInfo(
                    segmenter=info.segmenter,
                    editor=info.editor,
                    dtype=info.dtype,
                    segment_image_size=info.segment_image_size,
                ),
                indent=None,
                sort_keys=True,
            ),
        )

    def _server_info(self, wait_s: float = 0.0) -> pb.ModelServerInfo:
        if self._info is None:
            if wait_s:
                self._wait_until_serving(wait_s)
            self._info = self._call("GetInfo", pb.GetInfoRequest())
        return self._info

    def _wait_until_serving(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        health = health_pb2_grpc.HealthStub(self._channel)
        request = health_pb2.HealthCheckRequest(service="videoedit.v1.ModelService")
        state = "unreachable"
        while time.monotonic() < deadline:
            try:
                response = health.Check(
                    request, timeout=max(0.1, min(5.0, deadline - time.monotonic())), wait_for_ready=True
                )
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                state = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            except grpc.RpcError as err:
                state = err.code().name
            time.sleep(0.5)
        raise ModelServerUnavailable(
            f"model server {self.target} not SERVING after {wait_s:.0f}s (last: {state}); "
            "is videoedit-modelserver running and VIDEOEDIT_MODEL_SERVERS right?"
        )

    def unready(self) -> str | None:
        """Why no job should start now (None: a model server is SERVING): one health check, at most
        READY_CHECK_S long, on the channel every call takes."""
        health = health_pb2_grpc.HealthStub(self._channel)
        try:
            response = health.Check(
                health_pb2.HealthCheckRequest(service="videoedit.v1.ModelService"), timeout=READY_CHECK_S
            )
        except grpc.RpcError as err:
            return f"model server {self.target} unreachable ({err.code().name})"
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            state = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            return f"model server {self.target} is {state}"
        return None

    def track(self, prompts: Sequence[str]) -> Tracker:
        """A tracker on one replica: the one holding the fewest of this client's sessions, taking
        turns among equals, and one that just went unreachable only when no other is left (the
        replicas are resolved anew for every tracker)."""
        if not self._server_info().max_tracking_sessions:
            return _ChunkTracker(self, list(prompts))
        replicas = replica_addresses(self.target)
        with self._sessions_lock:
            turn = next(self._turn)
            recent = time.monotonic() - UNREACHABLE_S
            address = min(
                replicas,
                key=lambda r: (
                    self._unreachable.get(r, -1e9) > recent,
                    self._sessions_on[r],
                    (replicas.index(r) - turn) % len(replicas),
                ),
            )
            self._sessions_on[address] += 1
        return _SessionTracker(self, list(prompts), address)

    def _session_ended(self, address: str) -> None:
        with self._sessions_lock:
            self._sessions_on[address] -= 1

    def _unreachable_now(self, address: str) -> None:
        with self._sessions_lock:
            self._unreachable[address] = time.monotonic()

    def segment(
        self,
        frames: Sequence[np.ndarray],
        prompts: list[str],
        session: pb.TrackingSession | None = None,
        stub: pb_grpc.ModelServiceStub | None = None,
        visual: Sequence[FramePrompt] = (),
    ) -> Segmentation:
        """SAM3 over a chunk of consecutive RGB frames -> detections per frame (on `stub`'s replica
        and carrying on `session` when given). `visual`: clicks and boxes in the frames' pixels,
        sent scaled to the frames as sent."""
        height, width = frames[0].shape[:2]
        side = self._server_info().segment_image_size
        scale = min(1.0, side / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        images = [
            wire.encode_image(shrink(f, size) if scale < 1 else f, jpeg_quality=SEGMENT_JPEG_QUALITY) for f in frames
        ]
        sx, sy = size[0] / width, size[1] / height
        request = pb.SegmentRequest(
            frames=images,
            prompts=prompts,
            session=session,
            visual_prompts=[wire.encode_frame_prompt(p.scaled(sx, sy)) for p in visual],
        )
        response = self._call("Segment", request, stub=stub)
        if len(response.frames) != len(frames):
            raise ModelServerError(f"Segment returned {len(response.frames)} frames for {len(frames)}")
        return Segmentation(
            frames=[
                [self._to_detection(inst, width, height, scale) for inst in fr.instances] for fr in response.frames
            ],
            prompts=list(response.prompts_used) or prompts,
        )

    def edit(
        self,
        crops: Sequence[np.ndarray],
        instruction: str,
        params: EditParams,
        *,
        seeds: Sequence[int],
        anchor: np.ndarray | None = None,
    ) -> list[np.ndarray]:
        """InstructPix2Pix over same-size RGB crops -> edited crops, same order."""
        request = pb.EditRequest(  # EditParams' fields are EditRequest's
            images=[wire.encode_image(c) for c in crops],
            instruction=instruction,
            seeds=list(seeds),
            anchor=wire.encode_image(anchor) if anchor is not None else None,
            **dataclasses.asdict(params),
        )
        response = self._call("Edit", request)
        if len(response.images) != len(crops):
            raise ModelServerError(f"Edit returned {len(response.images)} images for {len(crops)}")
        return [wire.decode_image(img) for img in response.images]

    @staticmethod
    def _to_detection(inst: pb.Instance, width: int, height: int, scale: float) -> Detection:
        mask = wire.decode_mask(inst.mask)
        if mask.shape != (height, width):
            # Linear upsampling of the 0/1 mask then a 0.5 cut gives smoother
            # edges than nearest-neighbour blocks.
            # (in uint8 fixed point: 0/255 then a 128 cut, a quarter of float32's bytes).
            mask = (
                cv2.resize(mask.view(np.uint8) * np.uint8(255), (width, height), interpolation=cv2.INTER_LINEAR) >= 128
            )
        b = inst.box
        box = (b.x0 / scale, b.y0 / scale, b.x1 / scale, b.y1 / scale)
        return Detection(inst.object_id, inst.prompt, inst.score, box, mask)

    def _call(
        self,
        rpc: str,
        request,
        timeout: float | None = None,
        wait_for_ready: bool = False,
        stub: pb_grpc.ModelServiceStub | None = None,
    ):
        try:
            return getattr(stub or self._stub, rpc)(
                request, timeout=timeout or self.timeout_s, wait_for_ready=wait_for_ready, metadata=self.metadata
            )
        except grpc.RpcError as err:
            hint = ""
            if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                hint = (
                    f" (no answer within VIDEOEDIT_MODEL_TIMEOUT_S={timeout or self.timeout_s:g}s; raise it for "
                    "slow GPUs or large batches, or lower extra edit_batch_size/chunk_size)"
                )
            # UNAVAILABLE after the channel's retries: no replica answers, an outage to wait out.
            error = ModelServerUnavailable if err.code() == grpc.StatusCode.UNAVAILABLE else ModelServerError
            raise error(
                f"model server {self.target}: {rpc} failed with {err.code().name}: {err.details()}{hint}"
            ) from err


class _ChunkTracker:
    """A model server without tracking sessions: every call is a session of its own."""

    persistent = False

    def __init__(self, client: ModelClient, prompts: list[str]):
        self._client, self._prompts = client, prompts

    def segment(
        self, frames: Sequence[np.ndarray], first_frame: int, visual: Sequence[FramePrompt] = ()
    ) -> Segmentation:
        return self._client.segment(frames, self._prompts, visual=visual)

    def close(self) -> None:
        pass


class _SessionTracker:
    """One tracking session on one replica, over a channel to that replica alone."""

    persistent = True

    def __init__(self, client: ModelClient, prompts: list[str], address: str):
        self._client, self._prompts, self.address = client, prompts, address
        self.session_id = uuid.uuid4().hex
        self._channel = _channel(address)
        self._stub = pb_grpc.ModelServiceStub(self._channel)
        self._closed = False

    def segment(
        self, frames: Sequence[np.ndarray], first_frame: int, visual: Sequence[FramePrompt] = ()
    ) -> Segmentation:
        session = pb.TrackingSession(id=self.session_id, first_frame=first_frame)
        try:
            return self._client.segment(frames, self._prompts, session, self._stub, visual)
        except ModelServerError as err:
            code = err.__cause__.code() if isinstance(err.__cause__, grpc.RpcError) else None
            if code == grpc.StatusCode.UNAVAILABLE:
                self._client._unreachable_now(self.address)
            if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE):
                raise TrackingLost(f"tracking session on {self.address} lost: {err}") from err
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:  # frees the session's device memory now rather than after its idle time
            self._stub.Segment(
                pb.SegmentRequest(prompts=self._prompts, session=pb.TrackingSession(id=self.session_id, close=True)),
                timeout=5,
                metadata=self._client.metadata,
            )
        except grpc.RpcError as err:
            log.info(
                "closing tracking session %s on %s: %s (it ends by itself when idle)",
                self.session_id,
                self.address,
                err.code().name,
            )
        finally:
            self._channel.close()
            self._client._session_ended(self.address)
