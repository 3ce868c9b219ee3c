"""Both services as local subprocesses on free loopback ports.

Used by `videoedit demo`, the integration tests and the benchmarks: real
processes, real gRPC, the same command lines a user would run.
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Building the tiny models the first time takes a while on 2 cores.
START_TIMEOUT_S = 600.0


def free_port() -> int:
    """A loopback port nothing listens on, from below the kernel's ephemeral range: a port the
    kernel hands out itself (bind to port 0) can meanwhile become the source port of an outgoing
    connection, and the server started on it then fails with "address already in use"."""
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port below {low}")


_handed_out: set[int] = set()  # ports given to servers of this process (they may not listen yet)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: IANA's dynamic range starts here
        return 49152


def wait_serving(
    address: str,
    service: str,
    timeout_s: float,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Block until `service` at `address` reports SERVING; fail early if the process dies.
    `credentials`: for a TLS server."""
    deadline = time.monotonic() + timeout_s
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                tail = log_path.read_text()[-3000:] if log_path and log_path.exists() else ""
                raise RuntimeError(f"{service} at {address} exited with {process.returncode}:\n{tail}")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"{service} at {address} not SERVING after {timeout_s:.0f}s")


def wait_http(url: str, timeout_s: float, process: subprocess.Popen, log_path: Path) -> None:
    """Block until `url` answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")


class LocalStack:
    """`with LocalStack(workdir) as stack:` -> stack.orchestrator_address is ready to use."""

    def __init__(
        self,
        workdir: Path,
        input_roots: list[Path] | None = None,
        output_root: Path | None = None,
        modelserver_args: tuple[str, ...] = (),
        orchestrator_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        replicas: int = 1,
        orchestrators: int = 1,
    ):
        self.workdir = Path(workdir).resolve()
        # Inputs in a folder of their own: the outputs (and the job store) may not lie in an input root.
        self.input_roots = input_roots or [self.workdir / "media"]
        self.output_root = output_root or self.workdir / "outputs"
        self.modelserver_args, self.orchestrator_args = modelserver_args, orchestrator_args
        self.env = {**os.environ, **(env or {})}
        # As `make serve` does: the gateway proves itself to the orchestrator, whose per-client
        # limits then count each HTTP client (videoedit/v1/gateway.py).
        self.env.setdefault("VIDEOEDIT_GATEWAY_TOKEN", secrets.token_hex(16))
        # One model server per replica; the orchestrator gets them all (round_robin over the list).
        self.modelserver_addresses = [f"127.0.0.1:{free_port()}" for _ in range(replicas)]
        self.metrics_addresses = [f"127.0.0.1:{free_port()}" for _ in range(replicas)]  # Prometheus endpoints
        # Several orchestrators make sense only on a shared job store (VIDEOEDIT_JOB_DB=postgresql://...).
        self.orchestrator_addresses = [f"127.0.0.1:{free_port()}" for _ in range(orchestrators)]
        self.gateway_url = f"http://127.0.0.1:{free_port()}"  # once start_gateway() ran
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def modelserver_address(self) -> str:
        return self.modelserver_addresses[0]

    @property
    def metrics_address(self) -> str:
        return self.metrics_addresses[0]

    @property
    def orchestrator_address(self) -> str:
        return self.orchestrator_addresses[0]

    @orchestrator_address.setter
    def orchestrator_address(self, address: str) -> None:
        self.orchestrator_addresses[0] = address

    def __enter__(self) -> LocalStack:
        for folder in (self.workdir, *self.input_roots):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            for replica in range(len(self.modelserver_addresses)):
                self.start_modelserver(replica)
            for index in range(len(self.orchestrator_addresses)):
                self.start_orchestrator(index)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start_modelserver(self, replica: int = 0) -> None:
        name = self.modelserver_name(replica)
        port = self.modelserver_addresses[replica].rsplit(":", 1)[1]
        metrics_port = self.metrics_addresses[replica].rsplit(":", 1)[1]
        self._spawn(
            name,
            [
                "-m",
                "modelserver",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--metrics-port",
                metrics_port,
                *self.modelserver_args,
            ],
            self.env,
        )
        self._wait(name, self.modelserver_addresses[replica], "videoedit.v1.ModelService")

    @staticmethod
    def modelserver_name(replica: int) -> str:
        return "modelserver" if replica == 0 else f"modelserver{replica}"

    def start_orchestrator(self, index: int = 0, args: tuple[str, ...] = ()) -> None:
        """Orchestrator `index` with the stack's orchestrator_args plus `args`."""
        name, address = self.orchestrator_name(index), self.orchestrator_addresses[index]
        env = {
            **self.env,
            "VIDEOEDIT_MODEL_SERVERS": ",".join(self.modelserver_addresses),
            "UR_EDIT_OUTPUT_DIR": str(self.output_root),
            "VIDEOEDIT_INPUT_ROOTS": os.pathsep.join(str(p) for p in self.input_roots),
        }
        self._spawn(
            name,
            [
                "-m",
                "orchestrator",
                "--host",
                "127.0.0.1",
                "--port",
                address.rsplit(":", 1)[1],
                *self.orchestrator_args,
                *args,
            ],
            env,
        )
        self._wait(name, address, "videoedit.v1.VideoEditService")

    @staticmethod
    def orchestrator_name(index: int) -> str:
        return "orchestrator" if index == 0 else f"orchestrator{index}"

    def start_gateway(self, env: dict[str, str] | None = None) -> None:
        """The HTTP API and web page (videoedit-web) in front of the orchestrator, at gateway_url."""
        port = self.gateway_url.rsplit(":", 1)[1]
        self._spawn(
            "gateway",
            ["-m", "gateway", "--host", "127.0.0.1", "--port", port, "--server", self.orchestrator_address],
            {**self.env, **(env or {})},
        )
        wait_http(f"{self.gateway_url}/healthz", START_TIMEOUT_S, self.processes["gateway"], self.log_path("gateway"))

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with open(self.log_path(name), "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir
            )

    def _wait(self, name: str, address: str, service: str) -> None:
        wait_serving(address, service, START_TIMEOUT_S, self.processes[name], self.log_path(name))


class LocalPostgres:
    """A throwaway PostgreSQL server in `datadir` (the `pgserver` wheel, a dev dependency), for
    the tests and benchmarks of orchestrators sharing a job store; `database()` makes a fresh
    database and returns its postgresql:// URL. The server listens on a Unix socket only
    (`socket_path`); a TCP proxy in front of it (tests/proxy.py) lets tests cut the network."""

    def __init__(self, datadir: Path):
        import pgserver

        self._datadir = Path(datadir)
        self._server = pgserver.get_server(self._datadir, cleanup_mode="stop")
        self._count = 0

    @property
    def socket_path(self) -> Path:
        """The server's Unix socket: what a proxy in front of it forwards to."""
        return self._server.get_postmaster_info().socket_path

    def database(self, prefix: str = "videoedit", via: str | None = None) -> str:
        """A new database's URL; `via`: the host:port of a TCP proxy in front of `socket_path`,
        which the URL then goes through."""
        import psycopg

        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        with psycopg.connect(self._server.get_uri(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@{via}/{name}" if via else self._server.get_uri(database=name)

    def restart(self) -> None:
        """Stop the server (a fast shutdown: every session is ended, as in a real restart) and
        start it again on the same data directory and socket: the URLs given out still work."""
        import pgserver

        stopped = self._server.get_pid()
        self._server.cleanup()  # this process's handle is the last one: the server stops
        self._server = pgserver.get_server(self._datadir, cleanup_mode="stop")
        if self._server.get_pid() == stopped:
            raise RuntimeError(f"PostgreSQL in {self._datadir} did not stop: another process uses it too")

    def stop(self) -> None:
        self._server.cleanup()

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
