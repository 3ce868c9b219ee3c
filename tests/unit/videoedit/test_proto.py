"""The committed Python stubs match the .proto files, and `buf lint` passes; the compose files are
valid and wire what the services need (all interfaces, the model servers' token)."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT

ROOT = REPO_ROOT
PROTO_DIR = ROOT / "proto"
GENERATED = [
    "model_service_pb2.py",
    "model_service_pb2.pyi",
    "model_service_pb2_grpc.py",
    "video_edit_pb2.py",
    "video_edit_pb2.pyi",
    "video_edit_pb2_grpc.py",
]


def test_generated_code_matches_the_protos(tmp_path):
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / "videoedit" / "v1").glob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ],
        check=True,
        cwd=PROTO_DIR,
    )
    stale = [
        name
        for name in GENERATED
        if not filecmp.cmp(tmp_path / "videoedit" / "v1" / name, PROTO_DIR / "videoedit" / "v1" / name, shallow=False)
    ]
    assert not stale, f"{stale} drifted from the .proto files: run `make proto` and commit"


def test_buf_lint_passes():
    buf = shutil.which("buf") or str(Path(sys.executable).parent / "buf")
    if not Path(buf).exists():
        pytest.skip("buf is not installed (make setup installs buf-bin)")
    result = subprocess.run([buf, "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.scale-out.yml"])
def test_docker_compose_files_are_valid(name):
    checker = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(ROOT / name)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.scale-out.yml"])
def test_compose_services_listen_on_all_interfaces_and_share_the_model_token_from_the_environment(name):
    services = yaml.safe_load((ROOT / name).read_text())["services"]
    programs = {service: spec["command"][0] for service, spec in services.items() if "command" in spec}
    assert programs, name
    for service, program in programs.items():
        env = services[service].get("environment", {})
        host = "VIDEOEDIT_HTTP_HOST" if program == "videoedit-web" else "VIDEOEDIT_HOST"
        assert env.get(host) == "0.0.0.0", f"{name}: {service} listens on loopback only (the default)"
        if program != "videoedit-web":
            # Interpolated from the environment or .env, and required: never a literal in the file.
            assert env["VIDEOEDIT_MODEL_TOKEN"].startswith("${VIDEOEDIT_MODEL_TOKEN:?"), f"{name}: {service}"
