"""The Node.js client (clients/node: @grpc/grpc-js + proto-loader on the repo's .proto) starts a
job and follows WatchStatus to the end against the live orchestrator."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.helpers import REPO_ROOT

NODE_DIR = REPO_ROOT / "clients" / "node"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("clients/node has no node_modules: run `make node-setup` (npm ci)")
    return path


def test_node_client_starts_a_job_and_follows_it_to_the_end(node, stack, clip):
    result = subprocess.run(
        [
            node,
            str(NODE_DIR / "edit.js"),
            "--server",
            stack.orchestrator_address,
            str(clip),
            "car",
            "make the car green",
            "--job-id",
            "from-node",
            "--steps",
            "2",
            "--extra",
            "edit_size=64",
            "--extra",
            "chunk_size=6",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    statuses = [line["status"] for line in lines[:-1]]
    order = ["QUEUED", "EXTRACTING", "MASKING", "PROPAGATING", "EDITING", "SMOOTHING", "SAVING", "FINISHED"]
    ranks = [order.index(s.removeprefix("JOB_STATUS_")) for s in statuses]
    assert ranks == sorted(ranks) and statuses[-1] == "JOB_STATUS_FINISHED"  # stages in order, to the end
    assert "JOB_STATUS_EDITING" in statuses
    assert lines[-1]["final"] == "JOB_STATUS_FINISHED" and lines[-1]["output"].endswith("from-node_output.mp4")


def test_node_client_reports_a_bad_request_with_exit_code_2(node, stack, media_dir):
    result = subprocess.run(
        [
            node,
            str(NODE_DIR / "edit.js"),
            "--server",
            stack.orchestrator_address,
            str(media_dir / "missing.mp4"),
            "car",
            "red",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "does not exist" in result.stderr
