"""Security of the orchestrator: bearer token (health stays open), TLS, reflection off, and
paths that try to leave the allowed roots. Orchestrators here talk to the shared model server.
The model server's own token (VIDEOEDIT_MODEL_TOKEN), which the orchestrator carries, and every
service on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.client import VideoEditClient
from clients.local_stack import free_port, wait_serving
from clients.sample_clip import make_sample_clip
from tests.helpers import FAST_JOB, GRPCURL, wait_for
from videoedit.v1 import model_service_pb2, model_service_pb2_grpc
from videoedit.v1 import video_edit_pb2 as pb

TOKEN = "s3cret-token"
SERVICE = "videoedit.v1.VideoEditService"


class Orchestrator:
    def __init__(
        self, workdir: Path, stack, env: dict[str, str], *flags: str, credentials: grpc.ChannelCredentials | None = None
    ):
        self.address = f"localhost:{free_port()}"
        self.log_path = workdir / "orchestrator.log"
        env = {
            **os.environ,
            "VIDEOEDIT_MODEL_SERVERS": stack.modelserver_address,
            "VIDEOEDIT_INPUT_ROOTS": str(stack.input_roots[0]),
            "UR_EDIT_OUTPUT_DIR": str(workdir / "outputs"),
            **env,
        }
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orchestrator",
                    "--host",
                    "localhost",
                    "--port",
                    self.address.rsplit(":", 1)[1],
                    *flags,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_serving(self.address, SERVICE, 60, self.process, self.log_path, credentials)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def secured(tmp_path_factory, stack, tls_files):
    cert, key = tls_files
    server = Orchestrator(
        tmp_path_factory.mktemp("secured"),
        stack,
        {"VIDEOEDIT_AUTH_TOKEN": TOKEN, "VIDEOEDIT_TLS_CERT": str(cert), "VIDEOEDIT_TLS_KEY": str(key)},
        credentials=grpc.ssl_channel_credentials(cert.read_bytes()),
    )
    yield server
    server.stop()


def test_calls_without_the_token_are_unauthenticated_and_health_stays_open(secured, tls_files):
    cert = str(tls_files[0])
    for token in ("", "wrong"):
        with VideoEditClient(secured.address, token=token, tls_ca=cert) as client:
            for call in (
                lambda: client.list_jobs(),
                lambda: client.get_status("x"),
                lambda: list(client.watch("x")),
                lambda: client.start_edit("a.mp4", "car", "red"),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    call()
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "authorization: Bearer" in err.value.details()
    with grpc.secure_channel(secured.address, grpc.ssl_channel_credentials(Path(cert).read_bytes())) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_the_bearer_scheme_is_taken_in_any_case(secured, tls_files):
    cert = tls_files[0].read_bytes()
    with grpc.secure_channel(secured.address, grpc.ssl_channel_credentials(cert)) as channel:
        list_jobs = channel.unary_unary(
            f"/{SERVICE}/ListJobs",
            request_serializer=pb.ListJobsRequest.SerializeToString,
            response_deserializer=pb.ListJobsResponse.FromString,
        )
        for scheme in ("bearer", "BEARER", "Bearer"):
            list_jobs(pb.ListJobsRequest(), metadata=(("authorization", f"{scheme} {TOKEN}"),), timeout=10)
        with pytest.raises(grpc.RpcError) as err:
            list_jobs(pb.ListJobsRequest(), metadata=(("authorization", f"Basic {TOKEN}"),), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_with_the_token_over_tls_a_job_runs(secured, tls_files, clip):
    with VideoEditClient(secured.address, token=TOKEN, tls_ca=str(tls_files[0])) as client:
        client.start_edit(str(clip), "car", "make it red", job_id="secure", **FAST_JOB)
        assert client.wait("secure").status == pb.JOB_STATUS_FINISHED


def test_plaintext_clients_cannot_talk_to_a_tls_server(secured):
    with VideoEditClient(secured.address, token=TOKEN, tls_ca="", timeout_s=5) as client:
        with pytest.raises(grpc.RpcError) as err:
            client.list_jobs()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.skipif(not Path(GRPCURL).exists(), reason="grpcurl is not installed")
def test_grpcurl_needs_the_token_for_reflection_too(secured, tls_files):
    base = [GRPCURL, "-cacert", str(tls_files[0]), secured.address, "list"]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
    allowed = subprocess.run(
        [*base[:-2], "-H", f"authorization: Bearer {TOKEN}", *base[-2:]], capture_output=True, text=True, timeout=60
    )
    assert allowed.returncode == 0 and SERVICE in allowed.stdout


@pytest.mark.skipif(not Path(GRPCURL).exists(), reason="grpcurl is not installed")
def test_reflection_can_be_turned_off(tmp_path, stack):
    server = Orchestrator(tmp_path, stack, {}, "--no-reflection")
    try:
        result = subprocess.run(
            [GRPCURL, "-plaintext", server.address, "list"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode != 0 and "reflection" in result.stderr.lower()
    finally:
        server.stop()


def test_symlinks_and_dotdot_cannot_escape_the_input_root(client, media_dir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "secret.mp4"
    outside.write_bytes(b"not for you")
    link = media_dir / "innocent.mp4"
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    for path in (link, media_dir / ".." / outside.parent.name / outside.name, outside):
        with pytest.raises(grpc.RpcError) as err:
            client.start_edit(str(path), "car", "red", **FAST_JOB)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        client.start_edit(str(media_dir / "clip.mp4"), "car", "red", output_dir="/tmp/elsewhere", **FAST_JOB)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


# --- the model server's token -----------------------------------------------------------------

MODEL_TOKEN = "model-s3cret-" + "x" * 20


@pytest.fixture(scope="module")
def model_token_stack(make_stack):
    """Model server and orchestrator both given VIDEOEDIT_MODEL_TOKEN (LocalStack's env)."""
    with make_stack("model-token", env={"VIDEOEDIT_MODEL_TOKEN": MODEL_TOKEN}) as running:
        yield running


def test_the_model_server_refuses_calls_without_its_token_and_health_stays_open(model_token_stack):
    with grpc.insecure_channel(model_token_stack.modelserver_address) as channel:
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", MODEL_TOKEN),)):
            with pytest.raises(grpc.RpcError) as err:
                models.GetInfo(model_service_pb2.GetInfoRequest(), metadata=metadata, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "VIDEOEDIT_MODEL_TOKEN" in err.value.details() and MODEL_TOKEN not in err.value.details()
        info = models.GetInfo(
            model_service_pb2.GetInfoRequest(), metadata=(("authorization", f"bearer {MODEL_TOKEN}"),), timeout=10
        )
        assert info.segmenter.tiny
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="videoedit.v1.ModelService"), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert MODEL_TOKEN not in model_token_stack.log_path("modelserver").read_text()


def test_an_orchestrator_with_the_token_runs_jobs_and_one_without_it_cannot(model_token_stack, make_stack):
    clip = make_sample_clip(model_token_stack.input_roots[0] / "clip.mp4", frames=8, width=160, height=120)
    with VideoEditClient(model_token_stack.orchestrator_address) as client:
        client.start_edit(str(clip), "car", "make it red", job_id="with-token", **FAST_JOB)
        assert client.wait("with-token").status == pb.JOB_STATUS_FINISHED
    with make_stack.beside(model_token_stack, "no-model-token", env={"VIDEOEDIT_MODEL_TOKEN": ""}) as tokenless:
        with VideoEditClient(tokenless.orchestrator_address) as client:
            client.start_edit(str(clip), "car", "make it red", job_id="without-token", **FAST_JOB)
            final = client.wait("without-token")
    assert final.status == pb.JOB_STATUS_FAILED and "UNAUTHENTICATED" in final.error, final.error
    assert "VIDEOEDIT_MODEL_TOKEN" in final.error


# --- binding ----------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The local addresses of the sockets that listen on TCP `port`, IPv4 and IPv6 (an IPv4 address
    mapped into IPv6, as gRPC binds 127.0.0.1, as the IPv4 address)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            hex_address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(hex_address)  # 32-bit words, each in the machine's (little-endian) order
                address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
                found.add(getattr(address, "ipv4_mapped", None) or address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
@pytest.mark.parametrize("program", ["modelserver", "orchestrator", "gateway"])
def test_every_service_listens_on_loopback_by_default(stack, tmp_path, program):
    """No --host, no VIDEOEDIT_HOST / VIDEOEDIT_HTTP_HOST: only this machine can connect."""
    port = free_port()
    args = {
        "modelserver": ["--tiny", "--metrics-port", "0"],
        "orchestrator": [],
        "gateway": ["--server", stack.orchestrator_address],
    }[program]
    env = {
        key: value
        for key, value in {**stack.env, "VIDEOEDIT_INPUT_ROOTS": str(tmp_path / "media")}.items()
        if key not in ("VIDEOEDIT_HOST", "VIDEOEDIT_HTTP_HOST")
    }
    log_path = tmp_path / f"{program}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", program, "--port", str(port), *args],
            env={**env, "UR_EDIT_OUTPUT_DIR": str(tmp_path / "outputs")},
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        addresses = wait_for(lambda: listening_addresses(port), f"{program} listening on {port}", timeout_s=120)
        assert addresses == {ipaddress.ip_address("127.0.0.1")}, addresses  # and no other interface
        wait_for(lambda: f"127.0.0.1:{port}" in log_path.read_text(), f"{program} logging its address")
    finally:
        process.terminate()
        process.wait(30)
