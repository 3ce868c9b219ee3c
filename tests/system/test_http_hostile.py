"""Hostile HTTP clients against a real gateway: every bad input of a JSON body, a path or a query
gets 400 naming the field (never a relayed 502 or a plain-text 500), forged requests (a form's or
a no-cors page's content types, a foreign Host or Origin) are refused before anything happens,
bodies past the limit are 413, one client cannot hold more than its share of streams and uploads,
a stalled upload is 408, and the gateway still serves after all of it. (gRPC side:
test_hostile_inputs.py; a real browser on another origin: test_web_page.py.)"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import httpx
import pytest

from clients.local_stack import free_port
from clients.sample_clip import make_sample_clip
from tests.helpers import EVENT_TIMEOUT_S, wait_for

JSON_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None)


@pytest.fixture
def http(web) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web, timeout=EVENT_TIMEOUT_S) as client:
        yield client


def job(clip, **fields) -> dict:
    return {
        "job_id": "hostile-never",
        "input_video_path": str(clip),
        "mask_prompt": "car",
        "edit_prompt": "red",
    } | fields


def assert_400_naming(reply: httpx.Response, field: str) -> None:
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and field in error["message"], error


@pytest.mark.parametrize(
    "fields, field",
    [
        (dict(input_video_path="/data/a\0b.mp4"), "input_video_path"),
        (dict(output_dir="/tmp/x\0"), "output_dir"),
        (dict(mask_prompt="car\0"), "mask_prompt"),
        (dict(edit_prompt="\0red"), "edit_prompt"),
        (dict(job_id="a\0b"), "job_id"),
        (dict(params={"mode": "video\0"}), "params.mode"),
        (dict(params={"edit_size": "6\0004"}), "params.edit_size"),
        (dict(params={"extra": {"chunk_size": "\0"}}), "params.chunk_size"),
        (dict(params={"extra": {"a\0": "1"}}), "params.extra"),
        (dict(params={"num_inference_steps": 1e30}), "params.num_inference_steps"),
        (dict(params={"num_inference_steps": 2**31}), "params.num_inference_steps"),
        (dict(params={"max_frames": -(2**31) - 1}), "params.max_frames"),
        (dict(params={"erode_kernel": 2**40}), "params.erode_kernel"),
        (dict(params={"smoothing_window": 1e300}), "params.smoothing_window"),
        (dict(params={"seed": 2**70}), "params.seed"),
        (dict(params={"seed": 2**63}), "params.seed"),
        (dict(params={"guidance_scale": 1e39}), "params.guidance_scale"),  # past float32
        (dict(params={"seed": 1.5}), "params.seed"),
        (dict(params={"extra": ["not", "an", "object"]}), "params.extra"),
    ],
)
def test_nul_and_numbers_past_the_wire_format_are_400_naming_the_field(http, clip, fields, field):
    assert_400_naming(http.post("/api/video/edit", json=job(clip, **fields)), field)


@pytest.mark.parametrize(
    "raw, field",
    [
        ('"guidance_scale": Infinity', "params.guidance_scale"),
        ('"smoothing_alpha": NaN', "params.smoothing_alpha"),
        ('"num_inference_steps": -Infinity', "params.num_inference_steps"),
        ('"seed": 1e400', "params.seed"),  # inf once parsed
    ],
)
def test_non_finite_numbers_are_400(http, clip, raw, field):
    body = json.dumps(job(clip))[:-1] + ', "params": {' + raw + "}}"
    reply = http.post("/api/video/edit", content=body, headers={"Content-Type": "application/json"})
    assert_400_naming(reply, field)


def test_bodies_that_do_not_parse_are_400(http):
    for body in (b"{", b"\xff\xfe{}", b"[" * 200_000 + b"]" * 200_000, b'"a string"'):
        reply = http.post("/api/video/edit", content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "INVALID_ARGUMENT", body[:10]


@pytest.mark.parametrize(
    "method, path, field",
    [
        ("GET", "/api/video/jobs?page_size=99999999999", "page_size"),
        ("GET", "/api/video/jobs?page_size=-1", "page_size"),
        ("GET", "/api/video/jobs?page_size=1e30", "page_size"),
        ("GET", "/api/video/jobs?page_token=%00", "page_token"),
        ("GET", "/api/video/jobs?status=running%00", "status"),
        ("GET", "/api/video/status/a%00b", "job_id"),
        ("GET", "/api/video/events/a%00b", "job_id"),
        ("GET", "/api/video/artifact/a%00b/log", "job_id"),
        ("POST", "/api/video/cancel/a%00b", "job_id"),
        ("POST", "/api/video/links/a%00b", "job_id"),
        ("POST", "/api/video/upload?filename=a%00.mp4", "filename"),
        ("POST", "/api/video/upload?filename=a.mp4&sha256=%00", "sha256"),
        ("POST", "/api/video/upload", "filename"),  # not FastAPI's 422 shape
    ],
)
def test_bad_paths_and_queries_are_400_naming_the_parameter(http, method, path, field):
    headers = {"Content-Type": "application/json" if "upload" not in path else "video/mp4"}
    body = b'{"for": "events"}' if "upload" not in path else b"x"
    assert_400_naming(http.request(method, path, content=body, headers=headers), field)


def test_state_changes_take_only_json_or_an_upload_of_its_own_type(http, clip, stack):
    """What a form or a no-cors page can send is 415, whatever the body says: nothing happens."""
    body = json.dumps(job(clip, job_id="forged")).encode()
    for content_type in JSON_TYPES:
        headers = {"Content-Type": content_type} if content_type else {}
        for path in ("/api/video/edit", "/api/video/cancel/forged", "/api/video/links/forged"):
            reply = http.post(path, content=body, headers=headers)
            assert reply.status_code == 415, (path, content_type, reply.text)
            assert reply.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
        upload = http.post("/api/video/upload", params={"filename": "forged.html"}, content=b"<p>", headers=headers)
        assert upload.status_code == 415 and "Content-Type" in upload.json()["error"]["message"]
    assert http.get("/api/video/status/forged").status_code == 404
    assert not list(stack.input_roots[0].rglob("forged.html"))
    typed = json.dumps(job(clip, job_id="typed", params={"seed": "x"})).encode()
    reply = http.post("/api/video/edit", content=typed, headers={"Content-Type": "application/json; charset=utf-8"})
    assert_400_naming(reply, "params.seed")  # with a charset, past the type check


def test_json_bodies_past_the_limit_are_413_unread(http, clip):
    big = json.dumps(job(clip, edit_prompt="x" * (2 << 20))).encode()
    declared = http.post("/api/video/edit", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and "VIDEOEDIT_HTTP_MAX_BODY_KB" in declared.json()["error"]["message"]
    chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))  # chunked: no Content-Length to go by
    streamed = http.post("/api/video/edit", content=chunks, headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and "retry-after" not in streamed.headers


def test_foreign_hosts_and_origins_are_403_and_nothing_happens(http, web, clip, stack, make_stack):
    own = web.rstrip("/")
    port = urlsplit(web).port
    body = job(clip, job_id="from-elsewhere")
    for headers in (
        {"Host": f"evil.example:{port}"},  # a DNS name rebound to 127.0.0.1
        {"Host": "127.0.0.1"},  # not the gateway's port
        {"Origin": "http://evil.example"},
        {"Origin": f"http://localhost:{free_port()}"},  # another loopback origin
        {"Origin": "null"},  # a sandboxed frame, a file:// page
    ):
        for method, path, payload in (("POST", "/api/video/edit", body), ("GET", "/api/video/jobs", None)):
            reply = http.request(method, path, json=payload, headers=headers)
            assert reply.status_code == 403, (headers, path)
            error = reply.json()["error"]
            assert error["code"] == "PERMISSION_DENIED" and "VIDEOEDIT_HTTP_ALLOWED_ORIGINS" in error["message"]
    assert http.get("/api/video/status/from-elsewhere").status_code == 404
    for origin in (own, own.replace("127.0.0.1", "localhost")):
        assert http.get("/api/video/jobs", headers={"Origin": origin}).status_code == 200, origin
    assert http.get("/healthz", headers={"Host": "10.0.0.7:8000"}).json() == {"status": "ok"}  # probes
    env = {"VIDEOEDIT_HTTP_ALLOWED_ORIGINS": "https://video.example.com, http://127.0.0.1:1"}
    with make_stack.gateway("origins", stack.orchestrator_address, env=env) as configured:
        with httpx.Client(base_url=configured.gateway_url, timeout=EVENT_TIMEOUT_S) as other:
            assert other.get("/", headers={"Host": "video.example.com"}).status_code == 200
            assert other.get("/", headers={"Host": "video.example.com:443"}).status_code == 200
            assert other.get("/").status_code == 403  # its own address is not among the configured ones
            https = {"Host": "video.example.com", "Origin": "https://video.example.com"}
            assert other.get("/api/video/jobs", headers=https).status_code == 200
            plain = {"Host": "video.example.com", "Origin": "http://video.example.com"}
            assert other.get("/api/video/jobs", headers=plain).status_code == 403


def test_every_error_is_the_error_json_and_the_headers_are_set(http):
    for method, path, status in (("GET", "/nowhere", 404), ("GET", "/static/nothing.js", 404)):
        reply = http.request(method, path)
        assert reply.status_code == status and reply.json()["error"]["code"] == "NOT_FOUND", path
    wrong_method = http.delete("/api/video/edit")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    for path in ("/", "/static/app.js"):
        reply = http.get(path)
        policy = reply.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert reply.headers["x-frame-options"] == "DENY" and reply.headers["x-content-type-options"] == "nosniff"
    api = http.get("/api/video/jobs")
    assert api.headers["x-content-type-options"] == "nosniff" and "sandbox" in api.headers["content-security-policy"]


@pytest.fixture(scope="module")
def held(make_stack):
    """An orchestrator with no model server (its jobs stay queued, so their event streams stay
    open) behind a gateway with small limits: 2 streams per client, 3 in all, 2 uploads per
    client, 2 s for a stalled upload."""
    held = make_stack("held")
    held.modelserver_addresses = [f"127.0.0.1:{free_port()}"]  # nothing listens there
    env = {
        "VIDEOEDIT_HTTP_MAX_STREAMS_PER_CLIENT": "2",
        "VIDEOEDIT_HTTP_MAX_STREAMS": "3",
        "VIDEOEDIT_HTTP_MAX_UPLOADS_PER_CLIENT": "2",
        "VIDEOEDIT_UPLOAD_IDLE_S": "2",
    }
    try:
        held.start_orchestrator()
        held.start_gateway(env)
        clip = make_sample_clip(held.input_roots[0] / "clip.mp4", frames=4, width=64, height=48)
        with httpx.Client(base_url=held.gateway_url, timeout=EVENT_TIMEOUT_S) as http:
            started = http.post("/api/video/edit", json=job(clip, job_id="waits"))
            assert started.status_code == 200, started.text
        yield held
    finally:
        held.stop()


@contextmanager
def client_from(base_url: str, address: str) -> Iterator[httpx.Client]:
    """A client whose requests come from `address` (another loopback address: another client)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=base_url, timeout=EVENT_TIMEOUT_S, transport=transport) as client:
        yield client


def test_streams_are_limited_per_client_and_in_all(held):
    with ExitStack() as open_streams, client_from(held.gateway_url, "127.0.0.1") as a:
        with client_from(held.gateway_url, "127.0.0.2") as b:
            for _ in range(2):
                stream = open_streams.enter_context(a.stream("GET", "/api/video/events/waits"))
                assert stream.status_code == 200
            third = a.get("/api/video/events/waits")
            assert third.status_code == 429 and third.headers["retry-after"] == "5"
            assert "VIDEOEDIT_HTTP_MAX_STREAMS_PER_CLIENT" in third.json()["error"]["message"]
            posing = a.get("/api/video/events/waits", headers={"X-Forwarded-For": "10.9.8.7"})
            assert posing.status_code == 429  # no trusted proxy (FORWARDED_ALLOW_IPS): the address counts
            assert a.get("/api/video/artifact/waits/input", headers={"Range": "bytes=0-9"}).status_code == 429
            assert a.get("/api/video/status/waits").json()["status"] == "queued"  # other calls go on
            b_stream = open_streams.enter_context(b.stream("GET", "/api/video/events/waits"))
            assert b_stream.status_code == 200
            full = b.get("/api/video/events/waits")
            assert full.status_code == 429 and "(VIDEOEDIT_HTTP_MAX_STREAMS)" in full.json()["error"]["message"]
            open_streams.close()  # the slots come back once the gateway sees the streams end (not at once)
            ranged = {"Range": "bytes=0-9"}
            wait_for(lambda: b.get("/api/video/artifact/waits/input", headers=ranged).status_code == 206, "a slot")


def stalled_upload(base_url: str, filename: str, source: str = "127.0.0.1") -> socket.socket:
    """An upload from `source` (a loopback address: a client) that declares 1 MB and sends 1 byte."""
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), source_address=(source, 0))
    head = (
        f"POST /api/video/upload?filename={filename} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        "Content-Type: video/mp4\r\nContent-Length: 1048576\r\n\r\nx"
    )
    sock.sendall(head.encode())
    return sock


def read_answer(sock: socket.socket) -> str:
    """The HTTP answer on `sock`, up to the end of its (JSON) body."""
    sock.settimeout(30)
    answer = b""
    while not answer.endswith(b"}}") and (chunk := sock.recv(65536)):
        answer += chunk
    return answer.decode()


def test_uploads_are_limited_per_client_and_a_stalled_one_is_408(held):
    stalled = [stalled_upload(held.gateway_url, f"stalled{i}.mp4") for i in range(2)]
    try:
        time.sleep(0.5)
        with client_from(held.gateway_url, "127.0.0.1") as a:
            third = a.post(
                "/api/video/upload",
                params={"filename": "third.mp4"},
                content=b"x",
                headers={"Content-Type": "video/mp4"},
            )
            assert third.status_code == 429 and "VIDEOEDIT_HTTP_MAX_UPLOADS_PER_CLIENT" in third.text
        data = make_sample_clip(held.workdir / "mine.mp4", frames=4, width=64, height=48).read_bytes()
        with client_from(held.gateway_url, "127.0.0.2") as b:  # another client uploads meanwhile
            reply = b.post(
                "/api/video/upload", params={"filename": "b.mp4"}, content=data, headers={"Content-Type": "video/mp4"}
            )
            assert reply.status_code == 200, reply.text
        started = time.monotonic()
        for sock in stalled:
            answer = read_answer(sock)
            assert answer.startswith("HTTP/1.1 408"), answer
            assert '"code":"DEADLINE_EXCEEDED"' in answer and "VIDEOEDIT_UPLOAD_IDLE_S" in answer
        assert time.monotonic() - started < 10
    finally:
        for sock in stalled:
            sock.close()
    with client_from(held.gateway_url, "127.0.0.1") as a:  # the slots came back, nothing was kept
        reply = a.post(
            "/api/video/upload", params={"filename": "after.mp4"}, content=data, headers={"Content-Type": "video/mp4"}
        )
        assert reply.status_code == 200, reply.text
    # UploadVideo was cancelled: the orchestrator dropped the part files of the stalled ones.
    deadline = time.monotonic() + 10
    while list(held.input_roots[0].rglob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list(held.input_roots[0].rglob("*.part")) and not list(held.input_roots[0].rglob("*stalled*"))


def test_after_all_that_the_gateway_serves(http, clip):
    assert http.get("/api/video/jobs").status_code == 200
    assert http.get("/api/video/status/hostile-never").status_code == 404  # no bad request made a job
    assert http.get("/").status_code == 200


def test_an_orchestrator_refusal_during_an_upload_is_429_with_its_message(make_stack):
    """The orchestrator allows one upload per client here, the gateway two: the second upload of a
    client passes the gateway and is refused by the orchestrator, which the client sees as 429
    naming the orchestrator's limit (not a relayed 502)."""
    narrow = make_stack("narrow", env={"VIDEOEDIT_MAX_UPLOADS_PER_CLIENT": "1"})
    narrow.modelserver_addresses = [f"127.0.0.1:{free_port()}"]  # no jobs run here
    try:
        narrow.start_orchestrator()
        narrow.start_gateway()
        stalled = stalled_upload(narrow.gateway_url, "stalled.mp4")
        uploads = narrow.input_roots[0] / "uploads"
        wait_for(lambda: list(uploads.glob(".upload-*.part")), "the stalled upload under way", timeout_s=15)
        with client_from(narrow.gateway_url, "127.0.0.1") as a:
            data = make_sample_clip(narrow.workdir / "second.mp4", frames=4, width=64, height=48).read_bytes()
            second = a.post(
                "/api/video/upload",
                params={"filename": "second.mp4"},
                content=data,
                headers={"Content-Type": "video/mp4"},
            )
        stalled.close()
        assert second.status_code == 429, second.text
        assert second.headers["retry-after"] == "5"
        error = second.json()["error"]
        assert error["code"] == "RESOURCE_EXHAUSTED" and "VIDEOEDIT_MAX_UPLOADS_PER_CLIENT=1" in error["message"]
    finally:
        narrow.stop()


STALLED = 50


def test_50_stalled_uploads_from_many_clients_change_nothing_for_another_with_the_default_limits(make_stack):
    """Default limits everywhere: the orchestrator grants a client 4 uploads, the gateway each HTTP
    client 4; 50 stalled uploads through the gateway (13 clients, each at the gateway's limit) are
    far past what the orchestrator grants one client, yet another client's upload goes through:
    the gateway names each HTTP client to the orchestrator (VIDEOEDIT_GATEWAY_TOKEN, which
    LocalStack sets as `make serve` does), so none of them is counted as the gateway's own."""
    defaults = make_stack("defaults")
    defaults.modelserver_addresses = [f"127.0.0.1:{free_port()}"]  # no jobs run here
    stalled: list[socket.socket] = []
    try:
        defaults.start_orchestrator()
        defaults.start_gateway()
        uploads = defaults.input_roots[0] / "uploads"
        data = make_sample_clip(defaults.workdir / "mine.mp4", frames=4, width=64, height=48).read_bytes()
        stalled = [stalled_upload(defaults.gateway_url, f"s{i}.mp4", f"127.0.1.{10 + i // 4}") for i in range(STALLED)]
        under_way = lambda: len(list(uploads.glob(".upload-*.part"))) == STALLED  # noqa: E731
        wait_for(under_way, "every stalled upload under way", timeout_s=15)
        with client_from(defaults.gateway_url, "127.0.0.2") as other:
            began = time.perf_counter()
            reply = other.post(
                "/api/video/upload", params={"filename": "b.mp4"}, content=data, headers={"Content-Type": "video/mp4"}
            )
            upload_s = time.perf_counter() - began
            assert reply.status_code == 200, reply.text
            began = time.perf_counter()
            assert other.get("/api/video/jobs").status_code == 200
            list_s = time.perf_counter() - began
        assert upload_s < 2 and list_s < 1, (upload_s, list_s)
    finally:
        for sock in stalled:
            sock.close()
        defaults.stop()
