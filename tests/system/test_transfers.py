"""Remote clients without a shared disk: UploadVideo -> StartEdit -> DownloadArtifact, from the
Python client and the CLI, and uploads/downloads that must be refused."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from clients.sample_clip import make_sample_clip
from tests.helpers import FAST_JOB, decode
from videoedit.v1 import video_edit_pb2 as pb
from videoedit.v1 import video_edit_pb2_grpc as pb_grpc


@pytest.fixture(scope="module")
def local_clip(tmp_path_factory) -> Path:
    """A clip outside every input root: only an upload can bring it to the server."""
    return make_sample_clip(tmp_path_factory.mktemp("laptop") / "my clip.mp4", frames=8, width=160, height=120)


def test_upload_edit_download(client, local_clip, media_dir, tmp_path):
    uploaded = client.upload(local_clip)
    assert Path(uploaded.input_video_path).parent == media_dir / "uploads"
    assert uploaded.sha256 == hashlib.sha256(local_clip.read_bytes()).hexdigest()
    assert client.upload(local_clip).input_video_path == uploaded.input_video_path  # stored once
    client.start_edit(uploaded.input_video_path, "car", "make it blue", job_id="uploaded", **FAST_JOB)
    assert client.wait("uploaded").status == pb.JOB_STATUS_FINISHED
    saved = [
        client.download("uploaded", a, tmp_path)
        for a in (pb.ARTIFACT_OUTPUT_VIDEO, pb.ARTIFACT_MASK_VIDEO, pb.ARTIFACT_LOG)
    ]
    assert [p.name for p in saved] == ["uploaded_output.mp4", "uploaded_mask.mp4", "uploaded_log.txt"]
    assert len(decode(saved[0])) == 8 and "job uploaded started" in saved[2].read_text()


def test_cli_uploads_edits_and_downloads(stack, local_clip, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "clients.cli",
            "--server",
            stack.orchestrator_address,
            "edit",
            str(local_clip),
            "--upload",
            "--download",
            str(tmp_path),
            "--mask",
            "car",
            "--edit",
            "make it red",
            "--job-id",
            "cli-up",
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
    assert "uploaded" in result.stderr and "finished" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli-up_log.txt", "cli-up_mask.mp4", "cli-up_output.mp4"]


PAGE = b"<html><script>fetch('/api/video/jobs').then(r => r.text()).then(alert)</script></html>"


def upload(stack, messages):
    with grpc.insecure_channel(stack.orchestrator_address) as channel:
        return pb_grpc.VideoEditServiceStub(channel).UploadVideo(iter(messages), timeout=60)


def meta(filename="x.mp4", size=10, sha=""):
    return pb.UploadVideoRequest(metadata=pb.UploadMetadata(filename=filename, size_bytes=size, sha256=sha))


@pytest.mark.parametrize(
    "messages, code, words",
    [
        ([meta(size=3 << 30)], grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit"),
        ([meta(size=4, sha="0" * 64), pb.UploadVideoRequest(chunk=b"abcd")], grpc.StatusCode.DATA_LOSS, "SHA-256"),
        ([meta(size=100), pb.UploadVideoRequest(chunk=b"abcd")], grpc.StatusCode.DATA_LOSS, "cut short"),
        ([meta(size=2), pb.UploadVideoRequest(chunk=b"abcd")], grpc.StatusCode.INVALID_ARGUMENT, "more bytes"),
        ([pb.UploadVideoRequest(chunk=b"abcd")], grpc.StatusCode.INVALID_ARGUMENT, "metadata"),
        ([meta(size=4), meta(size=4)], grpc.StatusCode.INVALID_ARGUMENT, "only the first"),
        ([meta(filename="...", size=4)], grpc.StatusCode.INVALID_ARGUMENT, "file name"),
        ([meta(size=0)], grpc.StatusCode.INVALID_ARGUMENT, "size_bytes"),
        # Whole, intact and not a video: probed before it gets a name, and dropped.
        ([meta(size=4), pb.UploadVideoRequest(chunk=b"abcd")], grpc.StatusCode.INVALID_ARGUMENT, "not a video"),
        (
            [meta(filename="x.html", size=len(PAGE)), pb.UploadVideoRequest(chunk=PAGE)],
            grpc.StatusCode.INVALID_ARGUMENT,
            "chunk: the uploaded 'x.html' is not a video: not a media file FFmpeg can read",
        ),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(stack, media_dir, messages, code, words):
    uploads = media_dir / "uploads"
    uploads.mkdir(exist_ok=True)
    before = set(uploads.iterdir())
    with pytest.raises(grpc.RpcError) as err:
        upload(stack, messages)
    assert err.value.code() == code and words in err.value.details()
    assert set(uploads.iterdir()) == before


def test_upload_names_cannot_climb_out_of_the_upload_dir(stack, media_dir, tmp_path):
    data = make_sample_clip(tmp_path / "climber.mp4", frames=5, width=160, height=120).read_bytes()  # new content
    reply = upload(stack, [meta(filename="../../etc/passwd", size=len(data)), pb.UploadVideoRequest(chunk=data)])
    assert Path(reply.input_video_path).parent == media_dir / "uploads"
    assert Path(reply.input_video_path).name.endswith("-passwd")


def test_the_same_content_is_stored_once_and_found_by_its_hash(stack, local_clip):
    data = local_clip.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    first = upload(stack, [meta(filename="one.mp4", size=len(data)), pb.UploadVideoRequest(chunk=data)])
    again = upload(stack, [meta(filename="two.mp4", size=len(data)), pb.UploadVideoRequest(chunk=data)])
    assert again.input_video_path == first.input_video_path
    with grpc.insecure_channel(stack.orchestrator_address) as channel:
        stub = pb_grpc.VideoEditServiceStub(channel)
        found = stub.FindUpload(pb.FindUploadRequest(sha256=sha), timeout=30)
        assert (found.input_video_path, found.size_bytes) == (first.input_video_path, len(data))
        with pytest.raises(grpc.RpcError) as err:
            stub.FindUpload(pb.FindUploadRequest(sha256="0" * 64), timeout=30)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_downloads_only_what_exists(client, tmp_path, media_dir):
    with pytest.raises(grpc.RpcError) as err:
        client.download("no-such-job", pb.ARTIFACT_LOG, tmp_path)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        client.download("no-such-job", pb.ARTIFACT_UNSPECIFIED, tmp_path)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    tiny = make_sample_clip(media_dir / "tiny.mp4", frames=2, width=8, height=8, audio=False)  # fails: too small
    client.start_edit(str(tiny), "car", "red", job_id="junk-dl", **FAST_JOB)
    assert client.wait("junk-dl").status == pb.JOB_STATUS_FAILED
    with pytest.raises(grpc.RpcError) as err:
        client.download("junk-dl", pb.ARTIFACT_OUTPUT_VIDEO, tmp_path)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "failed" in err.value.details()
    assert "junk-dl" in client.download("junk-dl", pb.ARTIFACT_LOG, tmp_path).read_text()


def test_the_input_artifact_is_served_only_while_it_is_a_video(client, media_dir, tmp_path):
    swapped = media_dir / "swapped.mp4"
    make_sample_clip(swapped, frames=4, width=160, height=120)
    client.start_edit(str(swapped), "car", "red", job_id="swapped", **FAST_JOB)
    assert client.wait("swapped").status == pb.JOB_STATUS_FINISHED
    assert client.download("swapped", pb.ARTIFACT_INPUT_VIDEO, tmp_path).read_bytes() == swapped.read_bytes()
    swapped.write_bytes(PAGE)  # replaced behind the server's back after the job was validated
    with pytest.raises(grpc.RpcError) as err:
        client.download("swapped", pb.ARTIFACT_INPUT_VIDEO, tmp_path / "again")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "not a media file" in err.value.details()
