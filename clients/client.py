"""Python client library for VideoEditService."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from videoedit.v1 import video_edit_pb2 as pb
from videoedit.v1 import video_edit_pb2_grpc as pb_grpc

TERMINAL = (pb.JOB_STATUS_FINISHED, pb.JOB_STATUS_FAILED, pb.JOB_STATUS_CANCELLED)
CHUNK_BYTES = 1 << 20


class VideoEditClient:
    """Thin wrapper over the generated stub. Errors surface as grpc.RpcError.

    `token` (default: $VIDEOEDIT_API_KEY, your API key, else $VIDEOEDIT_AUTH_TOKEN) is sent as
    `authorization: Bearer <token>`;
    `tls_ca` (default: $VIDEOEDIT_TLS_CA), a PEM file of the CA that signed the server's
    certificate, switches the channel to TLS ("system" uses the system's CAs).
    """

    def __init__(
        self,
        target: str = "localhost:50051",
        timeout_s: float = 30.0,
        token: str | None = None,
        tls_ca: str | None = None,
    ):
        self.target = target
        self.timeout_s = timeout_s
        if token is None:
            token = os.environ.get("VIDEOEDIT_API_KEY") or os.environ.get("VIDEOEDIT_AUTH_TOKEN", "")
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        tls_ca = tls_ca if tls_ca is not None else os.environ.get("VIDEOEDIT_TLS_CA", "")
        options = [("grpc.keepalive_time_ms", 30_000)]
        if tls_ca:
            roots = None if tls_ca == "system" else Path(tls_ca).read_bytes()
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots), options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._stub = pb_grpc.VideoEditServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> VideoEditClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start_edit(self, input_video_path: str, mask_prompt: str, edit_prompt: str, **fields) -> pb.VideoEditStatus:
        """Start a job. `fields` are other VideoEditRequest fields (job_id, max_frames, seed, extra, ...)."""
        request = pb.VideoEditRequest(
            input_video_path=str(input_video_path), mask_prompt=mask_prompt, edit_prompt=edit_prompt, **fields
        )
        return self._stub.StartEdit(request, timeout=self.timeout_s, metadata=self._metadata)

    def watch(self, job_id: str) -> Iterator[pb.VideoEditStatus]:
        """Every status change until the job ends (no deadline: jobs can run long)."""
        yield from self._stub.WatchStatus(pb.WatchStatusRequest(job_id=job_id), metadata=self._metadata)

    def wait(self, job_id: str, on_status: Callable[[pb.VideoEditStatus], None] | None = None) -> pb.VideoEditStatus:
        """Follow the job to its end; returns the final status."""
        last = None
        for status in self.watch(job_id):
            last = status
            if on_status:
                on_status(status)
        return last if last is not None else self.get_status(job_id)

    def get_status(self, job_id: str) -> pb.VideoEditStatus:
        return self._stub.GetStatus(pb.GetStatusRequest(job_id=job_id), timeout=self.timeout_s, metadata=self._metadata)

    def cancel(self, job_id: str) -> pb.VideoEditStatus:
        return self._stub.CancelEdit(
            pb.CancelEditRequest(job_id=job_id), timeout=self.timeout_s, metadata=self._metadata
        )

    def list_jobs(
        self, status: int = pb.JOB_STATUS_UNSPECIFIED, page_size: int = 0, page_token: str = ""
    ) -> pb.ListJobsResponse:
        return self._stub.ListJobs(
            pb.ListJobsRequest(status=status, page_size=page_size, page_token=page_token),
            timeout=self.timeout_s,
            metadata=self._metadata,
        )

    def upload(self, path: str | Path) -> pb.UploadVideoResponse:
        """Send a local video to the server; the reply's input_video_path is for start_edit."""
        path = Path(path)
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)

        def messages() -> Iterator[pb.UploadVideoRequest]:
            yield pb.UploadVideoRequest(
                metadata=pb.UploadMetadata(
                    filename=path.name, size_bytes=path.stat().st_size, sha256=digest.hexdigest()
                )
            )
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield pb.UploadVideoRequest(chunk=chunk)

        return self._stub.UploadVideo(messages(), metadata=self._metadata)

    def find_upload(self, sha256: str) -> pb.UploadVideoResponse:
        """The upload of yours with this content's SHA-256 (NOT_FOUND: upload it)."""
        return self._stub.FindUpload(
            pb.FindUploadRequest(sha256=sha256), timeout=self.timeout_s, metadata=self._metadata
        )

    def download(self, job_id: str, artifact: int, directory: str | Path, object_id: int = 0) -> Path:
        """Save one result file of a job (pb.ARTIFACT_OUTPUT_VIDEO, _MASK_VIDEO, _LOG, _OBJECTS, or
        with `object_id` _OBJECT_PREVIEW) into `directory`."""
        replies = self._stub.DownloadArtifact(
            pb.DownloadArtifactRequest(job_id=job_id, artifact=artifact, object_id=object_id), metadata=self._metadata
        )
        first = next(replies)
        target = Path(directory) / Path(first.filename).name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as out:
            out.write(first.chunk)
            for reply in replies:
                out.write(reply.chunk)
        if partial.stat().st_size != first.size_bytes:
            raise OSError(f"{first.filename}: got {partial.stat().st_size} of {first.size_bytes} bytes")
        partial.replace(target)
        return target
