"""What many users cost the job store (`python -m bench.tenancy`): the CPU of one claim with 1,000
and 10,000 jobs queued over 50 tenants (fair claims: round robin over the tenants, with and without
`max_running` on every tenant), and of judging one call's API key, on SQLite and PostgreSQL.
Writes bench-results/tenancy.json.

Claims in CPU ms of this process (all of SQLite's work, only the client side of PostgreSQL's) and
in wall ms (PostgreSQL's own work included); keys in CPU us. The point is how the cost grows with
the queue, not the machine's speed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from clients.local_stack import LocalPostgres
from orchestrator.admin import issue_key
from orchestrator.api.security import KeyAuthenticator
from orchestrator.jobs.store import JobStore, SqliteJobStore
from orchestrator.jobs.store.postgres import PostgresJobStore
from orchestrator.jobs.tenants import TenantSettings
from orchestrator.request import VideoEditRequest, VideoEditStatus

TENANTS = 50
QUEUES = (1_000, 10_000)
CLAIMS = 200
AUTH_CALLS = 2_000


def fill(store: JobStore, jobs: int, max_running: int | None) -> None:
    for t in range(TENANTS):
        store.set_tenant_settings(TenantSettings(f"t{t}", max_running=max_running))
    for i in range(jobs):
        tenant, job_id = f"t{i % TENANTS}", f"j{i}"
        request = VideoEditRequest(
            job_id=job_id,
            input_video_path=Path("/in/clip.mp4"),
            output_dir=Path("/out") / tenant / job_id,
            mask_prompt="car",
            edit_prompt="make it red",
            tenant=tenant,
        )
        store.add(request, VideoEditStatus(job_id=job_id, created_at=1000.0 + i, tenant=tenant))


def cpu_ms(calls: int, call: Callable[[], object]) -> float:
    return timed(calls, call)[0]


def timed(calls: int, call: Callable[[], object]) -> tuple[float, float]:
    """Milliseconds per call: this process's CPU, and wall time (PostgreSQL's own work shows only
    in the wall time)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        call()
    return (time.process_time() - cpu) / calls * 1e3, (time.perf_counter() - wall) / calls * 1e3


def claim_rows(name: str, open_store: Callable[[str], JobStore]) -> list[dict]:
    rows = []
    for jobs in QUEUES:
        for max_running in (None, CLAIMS):
            store = open_store(f"{name}-{jobs}-{max_running}")
            try:
                print(f"claims: {name}, {jobs} queued, max_running {max_running}...", file=sys.stderr)
                fill(store, jobs, max_running)
                cpu, wall = timed(CLAIMS, lambda s=store: s.claim("bench", 30))
            finally:
                store.close()
            rows.append(
                {
                    "store": name,
                    "queued": jobs,
                    "max_running": max_running,
                    "claim_cpu_ms": round(cpu, 3),
                    "claim_wall_ms": round(wall, 3),
                }
            )
    return rows


def auth_row(name: str, store: JobStore) -> dict:
    auth = KeyAuthenticator(store, None, None)
    open_us = cpu_ms(AUTH_CALLS, lambda: auth.caller(())) * 1e3
    key, _ = issue_key(store, "acme")
    metadata = (("authorization", f"Bearer {key}"),)
    key_us = cpu_ms(AUTH_CALLS, lambda: auth.caller(metadata)) * 1e3
    return {"store": name, "open_us_per_call": round(open_us, 1), "api_key_us_per_call": round(key_us, 1)}


def main(results: Path = Path("bench-results")) -> None:
    results.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, LocalPostgres(Path(tmp) / "pg") as postgres:
        work = Path(tmp)
        claims = claim_rows("SQLite", lambda n: SqliteJobStore(work / f"{n}.sqlite3"))
        claims += claim_rows("PostgreSQL", lambda n: PostgresJobStore(postgres.database("tenancy")))
        auth = []
        for name, store in (
            ("SQLite", SqliteJobStore(work / "auth.sqlite3")),
            ("PostgreSQL", PostgresJobStore(postgres.database("auth"))),
        ):
            try:
                auth.append(auth_row(name, store))
            finally:
                store.close()
    print(f"\nOne claim, {TENANTS} tenants (ms, mean of {CLAIMS})")
    print("| store | queued | max_running | CPU ms (this process) | wall ms |\n|---|---|---|---|---|")
    for row in claims:
        limit = row["max_running"] or "-"
        print(f"| {row['store']} | {row['queued']} | {limit} | {row['claim_cpu_ms']} | {row['claim_wall_ms']} |")
    print(f"\nJudging one call's key (CPU us, mean of {AUTH_CALLS})")
    print("| store | open (no keys yet) | API key |\n|---|---|---|")
    for row in auth:
        print(f"| {row['store']} | {row['open_us_per_call']} | {row['api_key_us_per_call']} |")
    (results / "tenancy.json").write_text(json.dumps({"claims": claims, "auth": auth}, indent=2))


if __name__ == "__main__":
    main()
