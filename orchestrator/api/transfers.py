"""Files in and out for clients without a shared disk: UploadVideo and DownloadArtifact.

Uploads are streamed to a temp file in the upload dir (inside an input root, so jobs can read
them), checked against the declared size and SHA-256 and probed (only videos are kept), then
renamed into place under a name that starts with the content's SHA-256: the same content
uploaded again, under any name, is stored once (the first copy's path is the answer), and a
half-received file never carries a final name. FindUpload looks a hash up, so a client that
hashes its file first need not send it again. Downloads serve only
the files a job's status names.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..config import Settings
from ..errors import DataLoss, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from ..media.probe import NotAVideo, probe_video
from ..pipeline import OutputPaths
from ..request import JobStatus, Mode, VideoEditStatus

CHUNK_BYTES = 1 << 20
ARTIFACTS = ("output", "mask", "log", "input")


@dataclass(frozen=True)
class Upload:
    """A stored upload: where it lies (the `input_video_path` for a job), its size and SHA-256."""

    path: Path
    size_bytes: int
    sha256: str


async def receive_upload(
    filename: str,
    size_bytes: int,
    sha256: str,
    chunks: AsyncIterable[bytes],
    settings: Settings,
    blocking: Executor,
    folder: Path,
) -> Upload:
    """Store an uploaded file in `folder` (the caller's upload dir); raise
    InvalidArgument/ResourceExhausted/DataLoss on bad uploads. The disk work runs in `blocking`;
    waiting for the chunks holds no thread."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[-100:].lstrip(".")
    if not name:
        raise InvalidArgument("metadata.filename", f"{filename!r} has no usable file name")
    if size_bytes <= 0:
        raise InvalidArgument("metadata.size_bytes", f"{size_bytes} must be the file's size in bytes (> 0)")
    if size_bytes > settings.max_upload_bytes:
        raise ResourceExhausted(
            f"upload of {size_bytes} bytes is over the limit of {settings.max_upload_bytes} "
            "bytes (VIDEOEDIT_MAX_UPLOAD_MB on the server)"
        )
    if sha256:
        _check_sha256("metadata.sha256", sha256)
    loop = asyncio.get_running_loop()
    fd, tmp = await loop.run_in_executor(blocking, _temp_file, folder)
    digest, received = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                received += len(chunk)
                if received > size_bytes:
                    raise InvalidArgument("chunk", f"more bytes than the declared size_bytes {size_bytes}")
                await loop.run_in_executor(blocking, _append, out, digest, chunk)
        if received != size_bytes:
            raise DataLoss(f"received {received} of {size_bytes} bytes; the upload was cut short, send it again")
        actual = digest.hexdigest()
        if sha256 and actual != sha256.lower():
            raise DataLoss(f"the received file's SHA-256 is {actual}, not {sha256}; send it again")
        stored = await loop.run_in_executor(blocking, _stored, folder, actual)
        if stored is not None:
            Path(tmp).unlink()
            return stored
        await loop.run_in_executor(blocking, _check_video, Path(tmp), filename)
        final = folder / f"{actual}-{name}"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Upload(final, received, actual)


def find_upload(sha256: str, folder: Path) -> Upload:
    """The stored upload in `folder` (the caller's upload dir) of the content with this SHA-256;
    NotFound when there is none."""
    _check_sha256("sha256", sha256)
    stored = _stored(folder, sha256.lower())
    if stored is None:
        raise NotFound(f"no stored upload has the SHA-256 {sha256}; upload the file")
    return stored


def _check_sha256(field: str, sha256: str) -> None:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise InvalidArgument(field, f"{sha256!r} is not a hex SHA-256 (64 hex digits)")


def _stored(folder: Path, sha256: str) -> Upload | None:
    """The first stored copy of this content (its name starts with the whole hash: a name that
    merely shares a prefix is not taken for it)."""
    for path in sorted(folder.glob(f"{sha256}-*")):
        if path.is_file():
            return Upload(path, path.stat().st_size, sha256)
    return None


def _temp_file(folder: Path) -> tuple[int, str]:
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")


def _append(out: BinaryIO, digest: hashlib._Hash, chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)


def _check_video(path: Path, filename: str) -> None:
    """Only videos are kept: anything else under an input root could be named by a job and served
    back as its input (a page, a script)."""
    try:
        probe_video(path)
    except NotAVideo as err:
        raise InvalidArgument("chunk", f"the uploaded {filename!r} is not a video: {err}") from None


def artifact_path(
    status: VideoEditStatus,
    artifact: str,
    settings: Settings,
    input_path: Path | None = None,
    object_id: int = 0,
) -> Path:
    """The file of `artifact` for a job, if it exists and lies in the output root (the input: in
    an input root). `input_path`: the job's input video, when this server knows the job;
    `object_id`: which object's preview."""
    if artifact == "input":
        return _input_artifact(status.job_id, input_path, settings)
    if artifact == "log":
        path = status.logs_path
    elif status.status is not JobStatus.FINISHED:
        raise FailedPrecondition(
            f"job {status.job_id!r} is {status.status.value}; its {artifact} exists once it is finished"
        )
    elif artifact in ("objects", "object preview"):
        path = _object_artifact(status, artifact, object_id)
    else:
        path = status.output_video_path if artifact == "output" else status.mask_preview_path
    if path is None or not Path(path).is_file():
        raise NotFound(
            f"job {status.job_id!r} has no {artifact} file" + (f" for object {object_id}" if object_id else "")
        )
    resolved = Path(path).resolve()
    if settings.output_root not in resolved.parents:
        raise NotFound(f"job {status.job_id!r} has no {artifact} file under the output root")
    return resolved


def _object_artifact(status: VideoEditStatus, artifact: str, object_id: int) -> Path | None:
    """The objects list or one object's preview (video and masks jobs have them)."""
    if status.output_dir is None or status.mode not in (Mode.VIDEO, Mode.MASKS):
        return None
    paths = OutputPaths.of(Path(status.output_dir), status.job_id, Mode(status.mode))
    if artifact == "objects":
        return paths.objects
    if object_id < 1:
        raise InvalidArgument("object_id", f"{object_id} is not an object id (1 or more, from the objects list)")
    return paths.preview(object_id)


def _input_artifact(job_id: str, path: Path | None, settings: Settings) -> Path:
    resolved = Path(path).resolve() if path is not None else None
    if resolved is None or not resolved.is_file():
        raise NotFound(f"job {job_id!r} has no input video on this server")
    if not any(root == resolved or root in resolved.parents for root in settings.input_roots):
        raise NotFound(f"job {job_id!r} has no input video under the input roots")
    try:  # the file may have been replaced since the job was validated
        probe_video(resolved)
    except NotAVideo as err:
        raise NotFound(f"job {job_id!r} has no input video: its input is {err}") from None
    return resolved


async def file_chunks(path: Path, blocking: Executor, offset: int = 0, length: int = 0) -> AsyncIterator[bytes]:
    """The file's bytes from `offset`, `length` of them (0: to the end), in CHUNK_BYTES pieces,
    each read in `blocking` (opened for each piece: nothing is left open when a client goes away)."""
    loop = asyncio.get_running_loop()
    size = (await loop.run_in_executor(blocking, path.stat)).st_size
    if offset < 0 or length < 0 or offset > size:
        raise InvalidArgument("offset", f"bytes {offset}+{length} are outside the file's {size} bytes")
    left = size - offset if length == 0 else min(length, size - offset)
    while left > 0 and (chunk := await loop.run_in_executor(blocking, _read, path, offset, min(CHUNK_BYTES, left))):
        offset, left = offset + len(chunk), left - len(chunk)
        yield chunk


def _read(path: Path, offset: int, count: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(count)
