"""Many users on one service: two tenants (and an admin) with API keys made by `videoedit-admin`,
against every RPC and every HTTP route of a live stack. Each tenant sees only its own jobs and
uploads (another's answers exactly as a missing one), both may use the same job id, an admin sees
every tenant's, a revoked key is refused at once (links included), and no key appears in a log."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from clients.client import VideoEditClient
from clients.sample_clip import make_sample_clip
from tests.helpers import EVENT_TIMEOUT_S, FAST_JOB, REPO_ROOT, wait_for
from tests.system.test_webhooks import HOOKS_ENV, SECRET, Receiver
from videoedit.v1 import video_edit_pb2 as pb

KEY = re.compile(r"vek_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
VIDEO = {"Content-Type": "application/octet-stream"}  # an upload's body
ARTIFACTS = (pb.ARTIFACT_OUTPUT_VIDEO, pb.ARTIFACT_MASK_VIDEO, pb.ARTIFACT_LOG, pb.ARTIFACT_INPUT_VIDEO)


def admin_cli(stack, *args: str) -> str:
    """`videoedit-admin ARGS` on the stack's job store, as an operator runs it; its stdout."""
    env = {**stack.env, "UR_EDIT_OUTPUT_DIR": str(stack.output_root)}
    env["VIDEOEDIT_INPUT_ROOTS"] = os.pathsep.join(str(p) for p in stack.input_roots)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.admin", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_key(stack, tenant: str, role: str = "user") -> str:
    (key,) = KEY.findall(admin_cli(stack, "keys", "create", "--tenant", tenant, "--role", role))
    return key


@dataclass
class Tenant:
    key: str
    grpc: VideoEditClient
    http: httpx.Client


@pytest.fixture(scope="module")
def tenants(make_stack, tmp_path_factory):
    clip = make_sample_clip(tmp_path_factory.mktemp("tenant-clips") / "clip.mp4", frames=8, width=96, height=64)
    with make_stack("tenants", env=HOOKS_ENV) as stack:
        stack.start_gateway()
        keys = {"a": new_key(stack, "a"), "b": new_key(stack, "b"), "admin": new_key(stack, "ops", "admin")}
        made = {
            name: Tenant(
                key,
                VideoEditClient(stack.orchestrator_address, token=key),
                httpx.Client(
                    base_url=stack.gateway_url, timeout=EVENT_TIMEOUT_S, headers={"Authorization": f"Bearer {key}"}
                ),
            )
            for name, key in keys.items()
        }
        try:
            yield stack, made, clip
        finally:
            for tenant in made.values():
                tenant.grpc.close()
                tenant.http.close()


@pytest.fixture(scope="module")
def jobs(tenants):
    """Both tenants upload the same clip and run a job `test_001` (each its own); A also runs
    `a_only`. Returns the uploads and the final statuses."""
    stack, t, clip = tenants
    uploads = {name: t[name].grpc.upload(clip) for name in ("a", "b")}
    ends = {}
    for name, job_id, prompt in (("a", "test_001", "red"), ("b", "test_001", "blue"), ("a", "a_only", "green")):
        t[name].grpc.start_edit(
            uploads[name].input_video_path, "car", f"make it {prompt}", job_id=job_id, mode="single_frame", **FAST_JOB
        )
        ends[name, job_id] = t[name].grpc.wait(job_id)
    return uploads, ends


def rpc_code(call) -> tuple[grpc.StatusCode, str]:
    """The code and message of the RpcError `call` raises."""
    with pytest.raises(grpc.RpcError) as failed:
        call()
    return failed.value.code(), failed.value.details()


def test_uploads_land_per_tenant_and_are_found_only_by_their_tenant(tenants, jobs):
    stack, t, clip = tenants
    uploads, _ = jobs
    a, b = uploads["a"], uploads["b"]
    assert a.sha256 == b.sha256 and a.input_video_path != b.input_video_path
    assert "/tenants/a/" in a.input_video_path and "/tenants/b/" in b.input_video_path
    assert t["a"].grpc.find_upload(a.sha256).input_video_path == a.input_video_path
    other = make_sample_clip(stack.workdir / "only-a.mp4", frames=4, width=64, height=48)
    only_a = t["a"].grpc.upload(other)
    code, _ = rpc_code(lambda: t["b"].grpc.find_upload(only_a.sha256))
    assert code == grpc.StatusCode.NOT_FOUND
    # B may not name A's upload (nor anything outside its own uploads) as its input.
    code, message = rpc_code(lambda: t["b"].grpc.start_edit(only_a.input_video_path, "car", "x", job_id="steal"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "tenants/a" not in message.split("allowed input roots")[1]
    code, _ = rpc_code(lambda: t["b"].grpc.start_edit(str(clip), "car", "x", job_id="steal2"))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_the_same_job_id_in_two_tenants_is_two_jobs(tenants, jobs):
    _, t, _ = tenants
    _, ends = jobs
    a, b = ends["a", "test_001"], ends["b", "test_001"]
    assert a.status == b.status == pb.JOB_STATUS_FINISHED, (a.error, b.error)
    assert (a.tenant, a.edit_prompt, b.tenant, b.edit_prompt) == ("a", "make it red", "b", "make it blue")
    assert a.output_dir != b.output_dir and "/tenants/a/" in a.output_dir
    assert t["b"].grpc.get_status("test_001").edit_prompt == "make it blue"
    assert t["a"].grpc.get_status("test_001").edit_prompt == "make it red"


def test_another_tenants_job_answers_exactly_as_a_missing_one_on_every_rpc(tenants, jobs):
    _, t, _ = tenants
    b = t["b"].grpc

    def answers(job_id: str) -> list:
        calls = [
            lambda: b.get_status(job_id),
            lambda: list(b.watch(job_id)),
            lambda: b.cancel(job_id),
            *(lambda kind=kind: b.download(job_id, kind, "/tmp/never") for kind in ARTIFACTS),
            lambda: b.download(job_id, pb.ARTIFACT_OBJECT_PREVIEW, "/tmp/never", object_id=1),
        ]
        return [rpc_code(call) for call in calls]

    theirs, missing = answers("a_only"), answers("zz_none")
    assert {code for code, _ in theirs} == {grpc.StatusCode.NOT_FOUND}
    assert [(c, m.replace("zz_none", "a_only")) for c, m in missing] == theirs
    # Its masks cannot be reused, and a tenant-qualified name is not a user's to use.
    code, message = rpc_code(
        lambda: b.start_edit(jobs[0]["b"].input_video_path, "", "x", job_id="reuse", extra={"masks_from": "a_only"})
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no job 'a_only'" in message
    code, _ = rpc_code(lambda: b.get_status("a/a_only"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert t["a"].grpc.get_status("a_only").status == pb.JOB_STATUS_FINISHED  # untouched


def test_listings_show_a_tenant_its_own_jobs_and_an_admin_every_tenants(tenants, jobs):
    _, t, _ = tenants

    def listed(name: str) -> set[tuple[str, str]]:
        return {(s.tenant, s.job_id) for s in t[name].grpc.list_jobs(page_size=1000).jobs}

    assert listed("a") == {("a", "test_001"), ("a", "a_only")}
    assert listed("b") == {("b", "test_001")}
    assert listed("admin") >= listed("a") | listed("b")
    admin = t["admin"].grpc
    assert admin.get_status("a/test_001").edit_prompt == "make it red"
    assert admin.get_status("b/test_001").edit_prompt == "make it blue"
    assert [s.tenant for s in admin.watch("b/test_001")] == ["b"]


def test_every_http_route_keeps_tenants_apart(tenants, jobs):
    stack, t, _ = tenants
    a, b = t["a"].http, t["b"].http
    for path in (
        "/api/video/status/a_only",
        "/api/video/events/a_only",
        *(f"/api/video/artifact/a_only/{kind}" for kind in ("output", "mask", "log", "input")),
    ):
        assert a.get(path).status_code == 200, path
        assert b.get(path).status_code == 404, path
    # A single-frame job has no objects: 404 for both, and B's answer is a missing job's.
    for path in ("/api/video/artifact/a_only/objects", "/api/video/artifact/a_only/object/1"):
        theirs, missing = b.get(path), b.get(path.replace("a_only", "zz_none"))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json() == json.loads(missing.text.replace("zz_none", "a_only"))
    assert b.post("/api/video/cancel/a_only", json={}).status_code == 404
    assert [j["job_id"] for j in b.get("/api/video/jobs").json()["jobs"]] == ["test_001"]
    assert {j["tenant"] for j in t["admin"].http.get("/api/video/jobs").json()["jobs"]} >= {"a", "b"}
    uploaded = jobs[0]["a"]
    assert a.get(f"/api/video/uploads/{uploaded.sha256}").json()["input_video_path"] == uploaded.input_video_path
    # An upload through HTTP lands in the caller's tenant too.
    data = make_sample_clip(stack.workdir / "http.mp4", frames=4, width=64, height=40).read_bytes()
    put = b.post("/api/video/upload", params={"filename": "h.mp4"}, content=data, headers=VIDEO)
    assert put.status_code == 200 and "/tenants/b/" in put.json()["input_video_path"]
    assert a.get(f"/api/video/uploads/{put.json()['sha256']}").status_code == 404
    request = {
        "job_id": "http_b",
        "input_video_path": put.json()["input_video_path"],
        "mask_prompt": "car",
        "edit_prompt": "x",
        "mode": "single_frame",
        "params": {"num_inference_steps": 2, "edit_size": 64},
    }
    started = b.post("/api/video/edit", json=request)
    assert started.status_code == 200 and started.json()["tenant"] == "b"


def test_a_link_acts_for_its_key_only(tenants, jobs):
    _, t, _ = tenants
    link = t["a"].http.post("/api/video/links/a_only", json={"for": "log"}).json()["url"]
    assert "k=" in link and t["a"].key not in link
    with httpx.Client(base_url=str(t["a"].http.base_url)) as anonymous:
        assert anonymous.get(link).status_code == 200
        mine = t["b"].http.post("/api/video/links/a_only", json={"for": "log"}).json()["url"]
        assert anonymous.get(mine).status_code == 404  # B's link to that id finds B's (no) job


def test_calls_without_a_valid_key_are_unauthenticated(tenants):
    stack, t, _ = tenants
    forged = "vek_" + t["a"].key[4:20] + "_" + "x" * 43  # A's key id, another secret
    for token in ("", forged, "not-a-key"):
        with VideoEditClient(stack.orchestrator_address, token=token) as anyone:
            code, message = rpc_code(lambda anyone=anyone: anyone.list_jobs())
            assert code == grpc.StatusCode.UNAUTHENTICATED and (not token or token not in message)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert httpx.get(f"{stack.gateway_url}/api/video/jobs", headers=headers).status_code == 401


def test_a_revoked_key_is_refused_at_once_and_its_links_with_it(tenants, jobs):
    stack, _, _ = tenants
    key = new_key(stack, "c")
    with VideoEditClient(stack.orchestrator_address, token=key) as c:
        assert list(c.list_jobs().jobs) == []
        http = httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {key}"})
        link = http.post("/api/video/links/none", json={"for": "log"}).json()["url"]
        assert httpx.get(stack.gateway_url + link).status_code == 404  # the link works (no such job)
        key_id = key[4:20]
        assert "1" in admin_cli(stack, "keys", "revoke", "--key-id", key_id)
        code, _ = rpc_code(lambda: c.list_jobs())
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert http.get("/api/video/jobs").status_code == 401
        assert httpx.get(stack.gateway_url + link).status_code == 401
        listed = admin_cli(stack, "keys", "list", "--tenant", "c")
        assert key_id in listed and key[20:] not in listed


def test_no_key_appears_in_any_log_or_listing(tenants, jobs):
    stack, t, _ = tenants
    logs = "".join(p.read_text(errors="replace") for p in stack.workdir.glob("*.log"))
    logs += "".join(p.read_text(errors="replace") for p in Path(stack.output_root).rglob("*_log.txt"))
    listing = admin_cli(stack, "keys", "list")
    for tenant in t.values():
        secret = tenant.key[21:]
        assert secret not in logs and secret not in listing


def test_a_tenants_webhooks_are_signed_with_its_own_key(tenants, jobs):
    stack, t, _ = tenants
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, name="tenant-receiver", daemon=True).start()
    try:
        extra = {**FAST_JOB["extra"], "callback_url": receiver.url("/a")}
        upload = jobs[0]["a"].input_video_path
        job = dict(FAST_JOB, extra=extra, mode="single_frame")
        t["a"].grpc.start_edit(upload, "car", "make it red", job_id="hooked", **job)
        assert t["a"].grpc.wait("hooked").status == pb.JOB_STATUS_FINISHED
        posts = wait_for(
            lambda: (p := receiver.received("/a")) and json.loads(p[-1][1])["status"] == "finished" and p,
            "the final callback",
        )
    finally:
        receiver.shutdown()
        receiver.server_close()
    key = admin_cli(stack, "webhook-secret", "--tenant", "a").strip().encode()
    for headers, body in posts:
        signed = headers["X-Videoedit-Timestamp"].encode() + b"." + body
        given = headers["X-Videoedit-Signature"]
        assert given == "sha256=" + hmac.new(key, signed, hashlib.sha256).hexdigest()
        assert given != "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        assert headers["X-Videoedit-Job"] == "hooked" and json.loads(body)["tenant"] == "a"


def test_a_quota_refuses_over_grpc_and_http_naming_the_limit(tenants, jobs):
    stack, _, clip = tenants
    key = new_key(stack, "q")
    admin_cli(stack, "quota", "set", "--tenant", "q", "--max-video-seconds", "0.1")
    with VideoEditClient(stack.orchestrator_address, token=key) as q:
        upload = q.upload(clip)
        code, message = rpc_code(lambda: q.start_edit(upload.input_video_path, "car", "x", job_id="long"))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_video_seconds" in message
    request = {"input_video_path": upload.input_video_path, "mask_prompt": "car", "edit_prompt": "x"}
    refused = httpx.post(
        f"{stack.gateway_url}/api/video/edit", json=request, headers={"Authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 429 and "max_video_seconds" in refused.json()["error"]["message"]
