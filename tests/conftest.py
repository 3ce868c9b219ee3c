"""Shared fixtures: tiny models built once per session, and both services running as real
processes on loopback (LocalStack), shared by the system tests to keep the suite fast.
Helpers (constants, video readers, waits) are in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.local_stack import LocalPostgres, LocalStack
from clients.sample_clip import make_sample_clip
from tests.helpers import CLIP_FPS, CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    from modelserver.backends.tiny import ensure_tiny_models

    cache = tmp_path_factory.mktemp("model-cache")
    ensure_tiny_models(cache / "tiny")
    return cache


@pytest.fixture(scope="session")
def stack(tmp_path_factory, model_cache):
    work = tmp_path_factory.mktemp("stack")
    media = work / "media"
    media.mkdir()
    with LocalStack(work, input_roots=[media], output_root=work / "outputs", modelserver_args=("--tiny",),
                    env={"VIDEOEDIT_CACHE_DIR": str(model_cache)}) as running:
        yield running


@pytest.fixture(scope="session")
def media_dir(stack) -> Path:
    return stack.input_roots[0]


@pytest.fixture(scope="session")
def clip(media_dir) -> Path:
    return make_sample_clip(media_dir / "clip.mp4", frames=CLIP_FRAMES, width=CLIP_WIDTH, height=CLIP_HEIGHT,
                            fps=CLIP_FPS)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    """A real PostgreSQL server for the session; `postgres.database()` gives a fresh database's URL."""
    with LocalPostgres(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(scope="session")
def web(stack) -> str:
    """The HTTP gateway (videoedit-web) in front of the shared stack: its base URL."""
    stack.start_gateway()
    return stack.gateway_url


@pytest.fixture
def client(stack):
    from clients.client import VideoEditClient

    with VideoEditClient(stack.orchestrator_address) as c:
        yield c
