"""API keys across orchestrators: two real orchestrators on one PostgreSQL job store. They start
open (no token, no key); a key made with `videoedit-admin` ends that on both at once and works on
both; revoked with `videoedit-admin`, the very next call with it on the other orchestrator is
UNAUTHENTICATED (keys are read from the store on every call, never cached). No secret, right or
wrong, reaches either orchestrator's log."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest

from clients.client import VideoEditClient
from videoedit.v1.auth import new_api_key

A, B = 0, 1


@pytest.fixture(scope="module")
def cluster(make_stack, postgres):
    with make_stack("api-keys", orchestrators=2, env={"VIDEOEDIT_JOB_DB": postgres.database("keys")}) as stack:
        yield stack


def admin(cluster, *argv: str) -> str:
    """`videoedit-admin` with the orchestrators' environment: its stdout."""
    env = {
        **cluster.env,
        "UR_EDIT_OUTPUT_DIR": str(cluster.output_root),
        "VIDEOEDIT_INPUT_ROOTS": os.pathsep.join(str(p) for p in cluster.input_roots),
    }
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.admin", *argv], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "PostgreSQL" in done.stderr  # the store it opened: the orchestrators'
    return done.stdout


def status_of(cluster, index: int, key: str) -> grpc.StatusCode:
    """The status code of a ListJobs call on orchestrator `index` with `key` ("": none)."""
    with VideoEditClient(cluster.orchestrator_addresses[index], token=key) as client:
        try:
            client.list_jobs()
        except grpc.RpcError as err:
            return err.code()
    return grpc.StatusCode.OK


def test_a_key_made_and_revoked_with_the_cli_works_and_stops_on_every_orchestrator(cluster):
    assert status_of(cluster, A, "") == status_of(cluster, B, "") == grpc.StatusCode.OK  # open: no token, no key

    key = admin(cluster, "keys", "create", "--tenant", "acme").strip()
    key_id = key.split("_")[1]
    for index in (A, B):  # the first key ends open mode at once, everywhere
        assert status_of(cluster, index, "") == grpc.StatusCode.UNAUTHENTICATED
        assert status_of(cluster, index, key) == grpc.StatusCode.OK
    wrong, _ = new_api_key()
    assert status_of(cluster, B, wrong) == grpc.StatusCode.UNAUTHENTICATED
    assert key_id in admin(cluster, "keys", "list", "--tenant", "acme")

    assert status_of(cluster, A, key) == grpc.StatusCode.OK
    assert admin(cluster, "keys", "revoke", "--key-id", key_id) == "revoked 1 key\n"
    assert status_of(cluster, B, key) == grpc.StatusCode.UNAUTHENTICATED  # the very next call, on the other one
    assert status_of(cluster, A, key) == grpc.StatusCode.UNAUTHENTICATED

    secrets = [k.split("_", 2)[2] for k in (key, wrong)]  # vek_<id>_<secret>
    for index in (A, B):
        log = cluster.log_path(cluster.orchestrator_name(index)).read_text()
        assert "auth: no auth" in log  # the startup line says how callers authenticate
        assert not [s for s in secrets if s in log], f"a secret in {cluster.orchestrator_name(index)}'s log"
