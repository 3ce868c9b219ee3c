"""UploadVideo's storage (receive_upload) and FindUpload (find_upload): the same content is stored
once, under any name, and found by its whole SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from clients.sample_clip import make_sample_clip
from orchestrator.api.transfers import find_upload, receive_upload
from orchestrator.config import Settings
from orchestrator.errors import InvalidArgument, NotFound


@pytest.fixture
def settings(tmp_path) -> Settings:
    media = tmp_path / "media"
    media.mkdir()
    return Settings(input_roots=(media,), output_root=tmp_path / "out")


def upload(data: bytes, name: str, settings: Settings):
    async def chunks():
        yield data

    async def run():
        with ThreadPoolExecutor(1) as blocking:
            return await receive_upload(name, len(data), "", chunks(), settings, blocking, settings.upload_path)

    return asyncio.run(run())


def test_the_same_content_is_stored_once_and_found_by_its_hash(settings, tmp_path):
    data = make_sample_clip(tmp_path / "clip.mp4", frames=3, width=64, height=48).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(NotFound, match="upload the file"):
        find_upload(sha, settings.upload_path)
    first = upload(data, "clip.mp4", settings)
    again = upload(data, "renamed.mp4", settings)
    assert again.path == first.path and first.sha256 == sha
    assert first.path.name.startswith(sha)
    assert [p.name for p in settings.upload_path.iterdir()] == [first.path.name]  # no temp file left
    assert find_upload(sha.upper(), settings.upload_path).path == first.path


def test_a_name_sharing_only_a_prefix_of_the_hash_is_not_found(settings):
    sha = "ab" * 32
    settings.upload_path.mkdir(parents=True)
    (settings.upload_path / f"{sha[:16]}-old.mp4").write_bytes(b"x")
    with pytest.raises(NotFound):
        find_upload(sha, settings.upload_path)
    for wild in ("../../etc/passwd", "*" * 64):  # a path or a glob pattern is not a hash
        with pytest.raises(InvalidArgument, match="64 hex digits"):
            find_upload(wild, settings.upload_path)
