"""Security of the orchestrator: bearer token (health stays open), TLS, reflection off, and
paths that try to leave the allowed roots. Orchestrators here talk to the shared model server."""

from __future__ import annotations

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
from tests.helpers import FAST_JOB, GRPCURL
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
