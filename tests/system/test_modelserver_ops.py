"""Model server operations over real gRPC: batching across clients, backpressure, oversize
messages, metrics, readiness, graceful shutdown, and loading SAM3 from a `sam3.pt` path.

One dedicated tiny-model server per module (its own flags); the shutdown test starts its own.
"""

from __future__ import annotations

import itertools
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from clients.local_stack import free_port, wait_serving
from tests.helpers import wait_for
from videoedit.v1 import model_service_pb2 as pb
from videoedit.v1 import model_service_pb2_grpc as pb_grpc
from videoedit.v1 import wire

SERVICE = "videoedit.v1.ModelService"
BATCH_DELAY_MS = 400  # long enough that concurrent test clients always meet in one batch
QUEUE = 4  # calls each model's queue holds
SESSIONS = 2  # tracking sessions the server holds
SESSION_IDLE_S = 3
LONG_STEPS = 60  # an Edit call of a 256x256 crop that keeps the tiny model busy for seconds


class Server:
    """A model server subprocess; `health_seen` lists the health states seen while it started."""

    def __init__(self, workdir: Path, model_cache: Path, *flags: str):
        self._long_calls = itertools.count(1)  # each long call a crop of its own (none kept to answer it)
        self.address = f"127.0.0.1:{free_port()}"
        self.metrics_address = f"127.0.0.1:{free_port()}"
        self.log_path = workdir / f"modelserver-{self.address.rsplit(':', 1)[1]}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "modelserver",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    self.address.rsplit(":", 1)[1],
                    "--metrics-port",
                    self.metrics_address.rsplit(":", 1)[1],
                    "--cache-dir",
                    str(model_cache),
                    *flags,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.channel = grpc.insecure_channel(
            self.address,
            options=[("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)],
        )
        self.models = pb_grpc.ModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.health_seen = self._watch_startup()

    def _watch_startup(self) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                state = health_pb2.HealthCheckResponse.ServingStatus.Name(
                    self.health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=1).status
                )
            except grpc.RpcError:
                state = "NO_ANSWER"  # port not open yet
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == "SERVING":
                return seen
            if state == "NOT_SERVING" and "GetInfo before SERVING" not in seen:
                with pytest.raises(grpc.RpcError) as err:
                    self.models.GetInfo(pb.GetInfoRequest(), timeout=5)
                if err.value.code() == grpc.StatusCode.UNAVAILABLE:
                    seen.append("GetInfo before SERVING")
            time.sleep(0.02)
        wait_serving(self.address, SERVICE, 1, self.process, self.log_path)  # raises with the log tail
        return seen

    def metric(self, sample: str, model: str | None = None, **labels: str) -> float:
        """One sample of the server's Prometheus metrics (0 when not there yet)."""
        text = urllib.request.urlopen(f"http://{self.metrics_address}/metrics", timeout=10).read().decode()
        wanted = {**labels, **({"model": model} if model else {})}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == f"videoedit_modelserver_{sample}" and s.labels == wanted:
                    return s.value
        return 0.0

    def batches(self, model: str) -> tuple[float, float]:
        """(items, batches) so far, from the Prometheus histogram."""
        return self.metric("batch_size_sum", model), self.metric("batch_size_count", model)

    def occupy_edit_worker(self, pool: ThreadPoolExecutor) -> Future:
        """Start a long Edit call and return once the Edit worker runs it (its queue is empty)."""
        taken = self.metric("queue_wait_seconds_count", "edit")
        # A crop never sent before: one sent again would come back from the results kept, unqueued.
        seed = next(self._long_calls)
        running = pool.submit(self.models.Edit, edit([crop(seed, 256)], [seed], steps=LONG_STEPS), timeout=300)
        wait_for(lambda: self.metric("queue_wait_seconds_count", "edit") > taken, "the long Edit call to start")
        return running

    def wait_queued(self, calls: int) -> None:
        wait_for(lambda: self.metric("queued_calls", "edit") == calls, f"{calls} queued Edit calls")

    def stop(self) -> None:
        self.channel.close()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)


def crop(seed: int, side: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def edit(images, seeds, steps=2) -> pb.EditRequest:
    return pb.EditRequest(
        images=[wire.encode_image(i) for i in images],
        instruction="make it red",
        image_guidance_scale=1.5,
        guidance_scale=7.5,
        num_inference_steps=steps,
        seeds=seeds,
    )


@pytest.fixture(scope="module")
def tiny_sam3_pt(model_cache, tmp_path_factory) -> Path:
    """A copy of the tiny SAM3 with a `sam3.pt` beside it, as in a download of facebook/sam3."""
    copy = tmp_path_factory.mktemp("sam3-download") / "sam3"
    shutil.copytree(model_cache / "tiny" / "tiny-sam3", copy)
    (copy / "sam3.pt").write_bytes(b"the original checkpoint; not read")
    return copy / "sam3.pt"


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache, tiny_sam3_pt):
    running = Server(
        tmp_path_factory.mktemp("ms"),
        model_cache,
        "--sam3",
        str(tiny_sam3_pt),
        "--pix2pix",
        str(model_cache / "tiny" / "tiny-instruct-pix2pix"),
        "--max-batch-delay-ms",
        str(BATCH_DELAY_MS),
        "--max-queued-calls",
        str(QUEUE),
        "--max-message-mb",
        "1",
        "--max-tracking-sessions",
        str(SESSIONS),
        "--tracking-session-idle-s",
        str(SESSION_IDLE_S),
    )
    yield running
    running.stop()


def test_health_is_not_serving_until_models_are_loaded_and_warmed_up(server):
    assert server.health_seen[-1] == "SERVING"
    assert "NOT_SERVING" in server.health_seen and "GetInfo before SERVING" in server.health_seen
    assert server.health_seen.index("NOT_SERVING") < server.health_seen.index("SERVING")


def test_sam3_pt_inside_a_hub_download_loads_that_download(server, tiny_sam3_pt):
    info = server.models.GetInfo(pb.GetInfoRequest())
    assert info.segmenter.source == str(tiny_sam3_pt.parent.resolve())
    assert not info.segmenter.tiny and info.warmup_seconds > 0
    assert info.max_batch_delay_ms == BATCH_DELAY_MS and info.max_queued_calls == QUEUE
    assert info.segmenter.settings["hotstart_delay"] == "15"


def test_concurrent_clients_are_served_in_one_batch_with_their_own_results(server):
    seeds = [11, 12, 13, 14]
    items_before, batches_before = server.batches("edit")
    with ThreadPoolExecutor(1 + len(seeds)) as pool:
        # While a long call keeps the worker busy, the four clients' calls meet in the queue,
        # however slowly they arrive; then they run as one batch.
        running = server.occupy_edit_worker(pool)
        calls = [pool.submit(server.models.Edit, edit([crop(s)], [s]), timeout=300) for s in seeds]
        server.wait_queued(len(seeds))
        merged = [c.result() for c in calls]
        assert running.result().images
    items, batches = server.batches("edit")
    assert (items - items_before, batches - batches_before) == (1 + 4, 1 + 1)
    for seed, reply in zip(seeds, merged):
        alone = server.models.Edit(edit([crop(seed)], [seed]), timeout=120)
        a, b = wire.decode_image(reply.images[0]).astype(int), wire.decode_image(alone.images[0]).astype(int)
        assert np.abs(a - b).max() <= 1  # float rounding across batch sizes, nothing more
    others = [wire.decode_image(r.images[0]) for r in merged]
    assert not np.array_equal(others[0], others[1])  # each client got its own crop back


def test_a_full_queue_answers_resource_exhausted_and_the_rest_finish(server):
    with ThreadPoolExecutor(1 + QUEUE) as pool:
        # A long call occupies the Edit worker; QUEUE more fill the queue; one more is refused.
        running = server.occupy_edit_worker(pool)
        queued = [
            pool.submit(server.models.Edit, edit([crop(i)], [i], steps=3), timeout=300) for i in range(2, 2 + QUEUE)
        ]
        server.wait_queued(QUEUE)
        with pytest.raises(grpc.RpcError) as err:
            server.models.Edit(edit([crop(4)], [4]), timeout=60)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "queue is full" in err.value.details()
        assert running.result().images and all(q.result().images for q in queued)


def test_a_crop_sent_again_comes_back_kept_without_being_edited_again(server):
    request = edit([crop(77)], [77], steps=2)
    first = server.models.Edit(request, timeout=120)
    edited_before = server.metric("items_total", "edit")
    again = server.models.Edit(request, timeout=120)
    assert server.metric("items_total", "edit") == edited_before  # no crop denoised this time
    assert server.metric("edit_results_reused_total") >= 1
    assert again.images[0].data == first.images[0].data


def test_oversize_message_is_resource_exhausted_with_the_limit(server):
    junk = pb.Image(data=b"\0" * (2 << 20))
    with pytest.raises(grpc.RpcError) as err:
        server.models.Edit(pb.EditRequest(images=[junk], instruction="x", num_inference_steps=1, seeds=[1]))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and str(1 << 20) in err.value.details()
    assert server.models.GetInfo(pb.GetInfoRequest()).device == "cpu"  # still serving


def test_metrics_count_rpcs_by_code(server):
    with pytest.raises(grpc.RpcError):
        server.models.Edit(edit([crop(0)], []))  # no seeds -> INVALID_ARGUMENT
    text = urllib.request.urlopen(f"http://{server.metrics_address}/metrics", timeout=10).read().decode()
    assert 'videoedit_modelserver_requests_total{code="INVALID_ARGUMENT",rpc="Edit"}' in text
    assert 'videoedit_modelserver_requests_total{code="OK",rpc="GetInfo"}' in text
    for name in ("queue_wait_seconds", "compute_seconds", "items_total", "queued_calls"):
        assert f"videoedit_modelserver_{name}" in text


def test_sigterm_drains_running_calls_then_exits(tmp_path, model_cache):
    server = Server(tmp_path, model_cache, "--tiny")
    try:
        with ThreadPoolExecutor(1) as pool:
            running = server.occupy_edit_worker(pool)
            server.process.send_signal(signal.SIGTERM)
            wait_for(
                lambda: (
                    server.health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=30).status
                    == health_pb2.HealthCheckResponse.NOT_SERVING
                ),
                "health NOT_SERVING after SIGTERM",
            )
            with pytest.raises(grpc.RpcError) as err:
                server.models.Edit(edit([crop(2)], [2]), timeout=30)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert len(running.result().images) == 1  # the call in flight finished
        assert server.process.wait(60) == 0
        assert "drained" in server.log_path.read_text()
    finally:
        server.stop()


def frames(count: int, first: int = 0) -> list[pb.Image]:
    """A red square moving right on grey, from frame `first` on."""
    images = []
    for i in range(first, first + count):
        frame = np.full((96, 128, 3), 60, np.uint8)
        frame[30:60, 10 + 3 * i : 40 + 3 * i] = (210, 30, 40)
        images.append(wire.encode_image(frame))
    return images


def track(server: Server, session_id: str, first: int, count: int, close: bool = False, timeout: float = 120):
    return server.models.Segment(
        pb.SegmentRequest(
            frames=frames(count, first),
            prompts=["red square"],
            session=pb.TrackingSession(id=session_id, first_frame=first, close=close),
        ),
        timeout=timeout,
    )


def refused(call) -> str:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
    return err.value.details()


def test_a_tracking_session_carries_on_over_calls_in_order_until_closed(server):
    info = server.models.GetInfo(pb.GetInfoRequest())
    assert info.max_tracking_sessions == SESSIONS and info.tracking_session_idle_s == SESSION_IDLE_S
    closed_before = server.metric("tracking_sessions_ended_total", reason="closed")
    assert len(track(server, "walk", 0, 3).frames) == 3
    assert server.metric("tracking_sessions") == 1
    # A call that arrives early waits for the one before it.
    with ThreadPoolExecutor(2) as pool:
        later = pool.submit(track, server, "walk", 5, 2)
        time.sleep(0.5)
        assert not later.done()
        assert len(track(server, "walk", 3, 2).frames) == 2
        assert [f.frame_index for f in later.result().frames] == [0, 1]
    assert "repeats frames" in refused(lambda: track(server, "walk", 2, 2))
    assert "open already" in refused(lambda: track(server, "walk", 0, 2))
    with pytest.raises(grpc.RpcError) as err:  # frames 7-8 never come: it waits until its deadline
        track(server, "walk", 9, 1, timeout=1.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    track(server, "walk", 7, 1, close=True)
    assert server.metric("tracking_sessions") == 0
    assert server.metric("tracking_sessions_ended_total", reason="closed") == closed_before + 1
    assert "closed by the caller" in refused(lambda: track(server, "walk", 8, 1))
    # Closing with no frames is how a client lets go early; an unknown session is fine there.
    server.models.Segment(pb.SegmentRequest(prompts=["red square"], session=pb.TrackingSession(id="x", close=True)))


def test_sessions_are_bounded_in_number_and_idle_time(server):
    for name in ("first", "second", "third"):  # the third needs room: the least recently used goes
        track(server, name, 0, 1)
    assert server.metric("tracking_sessions") == SESSIONS
    assert "to make room" in refused(lambda: track(server, "first", 1, 1))
    assert server.metric("tracking_sessions_ended_total", reason="evicted") >= 1
    time.sleep(SESSION_IDLE_S + 1.5)  # idle sessions end without any call
    assert server.metric("tracking_sessions") == 0
    assert f"no calls for {SESSION_IDLE_S} s" in refused(lambda: track(server, "second", 1, 1))
    assert "never opened" in refused(lambda: track(server, "unknown", 3, 1))
    with pytest.raises(grpc.RpcError) as err:
        track(server, "", 0, 1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "session.id" in err.value.details()
