"""Webhooks end to end: a real receiver on loopback (http.server on a thread), a real stack with
the tiny models. Every stage in order then the end, each signed; 503s retried; a dead receiver
delays neither the job nor a shutdown; callbacks that lead inside refused at StartEdit; no key
material (the secret, the URL's query) in any log."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections import defaultdict
from pathlib import Path

import grpc
import httpx
import pytest

from clients.client import VideoEditClient
from clients.local_stack import free_port
from tests.helpers import FAST_JOB, wait_for
from videoedit.v1 import contract
from videoedit.v1 import video_edit_pb2 as pb

SECRET = "whsec-system-test-0123456789"
QUERY_SECRET = "qs-token-987654"  # in the callback URLs' query: never logged
STAGE_ORDER = ["queued", *(s.name for s in contract.STAGES), "finished", "failed", "cancelled"]
SLOW_JOB = dict(num_inference_steps=20, extra={"edit_size": "256", "chunk_size": "6", "edit_batch_size": "2"})


class Receiver(http.server.ThreadingHTTPServer):
    """Records every POST by path; a path's first `failures[path]` POSTs get 503."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: dict[str, list[tuple[dict[str, str], bytes]]] = defaultdict(list)
        self.failures: dict[str, int] = {}
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}?token={QUERY_SECRET}"

    def received(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.posts[path])


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        path = self.path.partition("?")[0]
        with self.server.lock:
            self.server.posts[path].append((dict(self.headers), body))
            failing = self.server.failures.get(path, 0)
            self.server.failures[path] = max(0, failing - 1)
        self.send_response(503 if failing else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# Loopback allowed by address; the name entry restricts hosts (so `localhost` is not allowed).
HOOKS_ENV = {
    "VIDEOEDIT_WEBHOOK_SECRET": SECRET,
    "VIDEOEDIT_CALLBACK_ALLOW": "127.0.0.1,hooks.example.com",
    "VIDEOEDIT_CALLBACK_RETRY_S": "30",
}


@pytest.fixture(scope="module")
def hooks_stack(make_stack):
    with make_stack("hooks", env=HOOKS_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def hooks_clip(hooks_stack) -> Path:
    from clients.sample_clip import make_sample_clip

    return make_sample_clip(hooks_stack.input_roots[0] / "clip.mp4", frames=12, width=96, height=64, fps=12)


@pytest.fixture
def hooks_client(hooks_stack):
    with VideoEditClient(hooks_stack.orchestrator_address) as c:
        yield c


def verified(headers: dict[str, str], body: bytes) -> dict:
    """The receiver's check (as in the README): the signature over "<timestamp>.<body>", a recent
    timestamp; the status JSON."""
    timestamp = headers["X-Videoedit-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Videoedit-Signature"], f"sha256={expected}")
    assert abs(time.time() - int(timestamp)) < 300
    assert headers["Content-Type"] == "application/json"
    return json.loads(body)


def states(posts: list[tuple[dict[str, str], bytes]]) -> list[str]:
    return [verified(headers, body)["status"] for headers, body in posts]


def ended(receiver: Receiver, path: str) -> list[str]:
    """The states delivered to `path`, once the job's end was."""
    return wait_for(
        lambda: (s := states(receiver.received(path))) and s[-1] in ("finished", "failed", "cancelled") and s,
        f"the final callback to {path}",
        timeout_s=60,
    )


def test_every_stage_in_order_then_the_end_each_signed(hooks_client, hooks_clip, receiver):
    job = "hook-stages"
    hooks_client.start_edit(str(hooks_clip), "car", "make it red", job_id=job, **_with_callback(receiver, "/stages"))
    final = hooks_client.wait(job)
    assert final.status == pb.JOB_STATUS_FINISHED, final.error
    delivered = ended(receiver, "/stages")
    assert delivered[-1] == "finished" and "extracting" in delivered and "editing" in delivered
    order = [STAGE_ORDER.index(s) for s in delivered]
    assert order == sorted(order) and len(set(delivered)) == len(delivered), delivered  # each stage once, in order
    posts = receiver.received("/stages")
    assert {h["X-Videoedit-Job"] for h, _ in posts} == {job}
    assert len({h["X-Videoedit-Delivery"] for h, _ in posts}) == len(posts)
    last = json.loads(posts[-1][1])
    assert last == json.loads(Path(final.output_dir, "status.json").read_text())  # the same JSON as status.json


def test_a_receiver_answering_503_twice_gets_it_after_retries(hooks_client, hooks_clip, receiver):
    receiver.failures["/flaky"] = 2
    job = "hook-flaky"
    hooks_client.start_edit(str(hooks_clip), "car", "make it red", job_id=job, **_with_callback(receiver, "/flaky"))
    assert hooks_client.wait(job).status == pb.JOB_STATUS_FINISHED
    delivered = ended(receiver, "/flaky")
    posts = receiver.received("/flaky")
    first_three = [h["X-Videoedit-Delivery"] for h, _ in posts[:3]]
    assert len(set(first_three)) == 1  # one delivery, tried three times
    assert delivered[0] == delivered[1] == delivered[2] and delivered[-1] == "finished"
    distinct = list(dict.fromkeys(delivered))
    assert [STAGE_ORDER.index(s) for s in distinct] == sorted(STAGE_ORDER.index(s) for s in distinct)


def test_a_cancel_while_queued_gets_its_final_callback(hooks_client, hooks_clip, receiver):
    hooks_client.start_edit(str(hooks_clip), "car", "make it red", job_id="hook-blocker", **SLOW_JOB)
    job = "hook-queued"
    hooks_client.start_edit(str(hooks_clip), "car", "make it red", job_id=job, **_with_callback(receiver, "/queued"))
    assert hooks_client.cancel(job).status == pb.JOB_STATUS_CANCELLED  # one worker: still queued
    hooks_client.cancel("hook-blocker")
    assert ended(receiver, "/queued") == ["cancelled"]


def test_a_dead_receiver_delays_neither_the_job_nor_a_shutdown(make_stack, hooks_stack, hooks_clip, receiver):
    dead = f"http://127.0.0.1:{free_port()}/gone?token={QUERY_SECRET}"  # nothing listens there
    with make_stack.beside(hooks_stack, "hooks-dead") as own, VideoEditClient(own.orchestrator_address) as client:
        client.start_edit(str(hooks_clip), "car", "make it red", job_id="plain", **FAST_JOB)
        plain = client.wait("plain")
        extra = {**FAST_JOB["extra"], "callback_url": dead}
        client.start_edit(str(hooks_clip), "car", "make it red", job_id="dead", **{**FAST_JOB, "extra": extra})
        final = client.wait("dead")
        assert final.status == pb.JOB_STATUS_FINISHED, final.error
        assert final.elapsed_seconds < plain.elapsed_seconds * 3 + 5  # loosely: as fast as without a callback
        log = own.log_path("orchestrator")
        wait_for(lambda: "retrying in" in log.read_text(), "a failed delivery, to be retried", timeout_s=30)
        started = time.monotonic()
    assert time.monotonic() - started < 15  # the grace (2 s), not the retry time (30 s)
    assert "webhook deliveries dropped after a 2.0s grace" in log.read_text()
    _assert_no_key_material(log, Path(final.logs_path))


@pytest.mark.parametrize(
    "url, says",
    [
        ("http://10.0.0.1/hook", "10.0.0.1, a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://localhost:8080/hook", "host 'localhost' is not in VIDEOEDIT_CALLBACK_ALLOW"),
        ("http://[::1]:8080/hook", "::1, a loopback address"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://127.0.0.1:70/", "scheme 'gopher' is not allowed"),
        ("http://user:pw@127.0.0.1/", "user name or password"),
    ],
)
def test_callbacks_that_lead_inside_are_refused_at_start_edit(hooks_client, hooks_clip, url, says):
    with pytest.raises(grpc.RpcError) as err:
        hooks_client.start_edit(str(hooks_clip), "car", "make it red", extra={"callback_url": url})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "extra[callback_url]" in err.value.details() and says in err.value.details()


def test_without_a_secret_callbacks_are_refused(make_stack, hooks_stack, hooks_clip, receiver):
    with (
        make_stack.beside(hooks_stack, "hooks-nosecret", env={"VIDEOEDIT_WEBHOOK_SECRET": ""}) as own,
        VideoEditClient(own.orchestrator_address) as client,
    ):
        with pytest.raises(grpc.RpcError) as err:
            client.start_edit(str(hooks_clip), "car", "make it red", extra={"callback_url": receiver.url("/x")})
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no webhook secret" in err.value.details()


def test_the_http_api_takes_params_callback_url(hooks_stack, hooks_clip, receiver):
    hooks_stack.start_gateway()
    job = {"input_video_path": str(hooks_clip), "mask_prompt": "car", "edit_prompt": "make it red"}
    params = {"num_inference_steps": 2, "edit_size": 64, "chunk_size": 6}
    with httpx.Client(base_url=hooks_stack.gateway_url, timeout=60) as http:
        hooked = {**params, "callback_url": receiver.url("/http")}
        started = http.post("/api/video/edit", json={**job, "job_id": "hook-http", "params": hooked})
        assert started.status_code == 200, started.text
        assert ended(receiver, "/http")[-1] == "finished"
        refused = http.post(
            "/api/video/edit",
            json={
                **job,
                "job_id": "hook-http-refused",
                "params": {**params, "callback_url": "http://169.254.169.254/"},
            },
        )
        assert refused.status_code == 400 and "extra[callback_url]" in refused.text and "link-local" in refused.text


def test_no_key_material_in_the_logs(hooks_stack):
    logs = [hooks_stack.log_path(name) for name in ("orchestrator", "gateway") if hooks_stack.log_path(name).exists()]
    logs += list(hooks_stack.output_root.rglob("*_log.txt"))
    _assert_no_key_material(*logs)


def _with_callback(receiver: Receiver, path: str) -> dict:
    return {**FAST_JOB, "extra": {**FAST_JOB["extra"], "callback_url": receiver.url(path)}}


def _assert_no_key_material(*logs: Path) -> None:
    for log in logs:
        text = log.read_text()
        assert SECRET not in text, log
        assert QUERY_SECRET not in text, log
        assert "sha256=" not in text, log
