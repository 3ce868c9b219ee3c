"""Shared fixtures: tiny models built once per session, and both services running as real
processes on loopback (LocalStack), shared by the system tests to keep the suite fast.
Every stack a system test needs comes from `make_stack` (StackFactory).
Helpers (constants, video readers, waits) are in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clients.local_stack import LocalPostgres, LocalStack, free_port
from clients.sample_clip import make_sample_clip
from tests.helpers import CLIP_FPS, CLIP_FRAMES, CLIP_HEIGHT, CLIP_WIDTH


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    from modelserver.backends.tiny import ensure_tiny_models

    cache = tmp_path_factory.mktemp("model-cache")
    ensure_tiny_models(cache / "tiny")
    return cache


class StackFactory:
    """The system tests' LocalStacks, set up in one place: each in a fresh temp dir named after it,
    on the session's tiny models, and all stopped when the session ends (when a test did not).

    `make_stack(name, **overrides)`: a stack of its own, not started yet (`with make_stack("x") as
    stack:` starts it, and stops it after). Its model servers run `--tiny` (unless `tiny=False`:
    then `modelserver_args` name the weights) and keep no edited crops (tests repeat jobs to
    compare them, or to cancel them mid-edit: kept crops would answer the repeats at once;
    test_modelserver_ops and the unit tests cover keeping them) plus `modelserver_args`,
    with the session's model cache (VIDEOEDIT_CACHE_DIR) plus `env`; input root `<dir>/media`,
    output root `<dir>/outputs`; other `overrides` (replicas, orchestrators, orchestrator_args,
    ...) go to LocalStack.
    `make_stack.beside(stack, name, ...)`: an orchestrator of its own on `stack`'s model servers.
    `make_stack.gateway(name, ...)`: an HTTP gateway alone, in front of any orchestrator address.
    """

    def __init__(self, tmp_path_factory: pytest.TempPathFactory, model_cache: Path):
        self._tmp = tmp_path_factory
        self.env = {"VIDEOEDIT_CACHE_DIR": str(model_cache)}
        self.made: list[LocalStack] = []

    def __call__(
        self,
        name: str,
        *,
        modelserver_args: tuple[str, ...] = (),
        tiny: bool = True,
        env: dict[str, str] | None = None,
        **overrides,
    ) -> LocalStack:
        work = self._tmp.mktemp(name)
        if "input_roots" not in overrides:
            (work / "media").mkdir()
            overrides["input_roots"] = [work / "media"]
        made = LocalStack(
            work,
            output_root=work / "outputs",
            modelserver_args=(*(("--tiny",) if tiny else ()), "--edit-results-mb", "0", *modelserver_args),
            env={**self.env, **(env or {})},
            **overrides,
        )
        self.made.append(made)
        return made

    @contextmanager
    def beside(
        self,
        stack: LocalStack,
        name: str,
        *,
        env: dict[str, str] | None = None,
        gateway: bool = False,
        orchestrator_args: tuple[str, ...] = (),
        output_root: Path | None = None,
    ) -> Iterator[LocalStack]:
        """A started orchestrator with `orchestrator_args`, on `stack`'s model servers, input roots and
        environment (plus `env`), with outputs of its own (or `output_root`, a volume it shares
        with another orchestrator); with `gateway`, an HTTP gateway in front."""
        own = self(name, input_roots=stack.input_roots, orchestrator_args=orchestrator_args)
        own.output_root = output_root or own.output_root
        own.modelserver_addresses, own.env = stack.modelserver_addresses, {**stack.env, **(env or {})}
        try:
            own.start_orchestrator()
            if gateway:
                own.start_gateway()
            yield own
        finally:
            own.stop()

    @contextmanager
    def gateway(
        self, name: str, orchestrator_address: str | None = None, env: dict[str, str] | None = None
    ) -> Iterator[LocalStack]:
        """A started HTTP gateway (`.gateway_url`) with `env`, in front of `orchestrator_address`
        (None: a loopback port nothing listens on)."""
        own = self(name)
        own.orchestrator_address = orchestrator_address or f"127.0.0.1:{free_port()}"
        try:
            own.start_gateway(env)
            yield own
        finally:
            own.stop()

    def close(self) -> None:
        for made in self.made:
            made.stop()


@pytest.fixture(scope="session")
def make_stack(tmp_path_factory, model_cache) -> Iterator[StackFactory]:
    """Makes the stacks of the system tests (StackFactory); stops them all at the end."""
    factory = StackFactory(tmp_path_factory, model_cache)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def stack(make_stack):
    """The stack most system tests share: one tiny-model server and one orchestrator."""
    with make_stack("stack") as running:
        yield running


@pytest.fixture(scope="session")
def media_dir(stack) -> Path:
    return stack.input_roots[0]


@pytest.fixture(scope="session")
def clip(media_dir) -> Path:
    return make_sample_clip(
        media_dir / "clip.mp4", frames=CLIP_FRAMES, width=CLIP_WIDTH, height=CLIP_HEIGHT, fps=CLIP_FPS
    )


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
