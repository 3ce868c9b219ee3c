"""Orchestrators sharing a PostgreSQL job store (`python -m bench.scale_out`): jobs/min for 8
jobs of 48 frames submitted at once to the first orchestrator, 2 tiny-model server replicas,
4 jobs running at a time in all: one orchestrator on SQLite (the default), one on PostgreSQL,
and two on PostgreSQL (2 jobs each; either may claim any job). Writes bench-results/scale_out.json.

On one 2-core machine a second orchestrator adds no CPU, so the rows show what sharing the store
costs (claims, leases, watchers polling the database), not the gain of a second machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from bench.modelserver import EDIT_EACH_TIME
from bench.pipeline import measure_jobs_per_minute
from clients.local_stack import LocalPostgres, LocalStack
from clients.sample_clip import make_sample_clip

JOBS = 8
CONCURRENT = 4  # jobs running at once, over all orchestrators
REPLICAS = 2


def rows(workdir: Path, clip: Path, postgres: LocalPostgres) -> list[dict]:
    setups = [("SQLite", 1, None), ("PostgreSQL", 1, "db"), ("PostgreSQL", 2, "db")]
    results = []
    for store, orchestrators, db in setups:
        env = {"VIDEOEDIT_JOB_DB": postgres.database("bench")} if db else {}
        print(f"jobs/min: {orchestrators} orchestrator(s) on {store}...", file=sys.stderr)
        stack = LocalStack(
            workdir / f"{store}-{orchestrators}",
            input_roots=[clip.parent],
            replicas=REPLICAS,
            orchestrators=orchestrators,
            modelserver_args=("--tiny", *EDIT_EACH_TIME),
            env=env,
            orchestrator_args=("--max-concurrent-jobs", str(CONCURRENT // orchestrators)),
        )
        with stack:
            per_min = measure_jobs_per_minute(stack, clip, JOBS)
        results.append({"store": store, "orchestrators": orchestrators, "jobs_per_min": per_min})
    return results


def main(results_dir: Path = Path("bench-results")) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="videoedit-bench-scale-") as tmp:
        workdir = Path(tmp)
        clip = make_sample_clip(workdir / "media" / "clip.mp4", frames=48)
        with LocalPostgres(workdir / "pg") as postgres:
            results = rows(workdir, clip, postgres)
    print(
        f"\nScale-out: {JOBS} jobs of 48 frames at once, {CONCURRENT} running at a time in all, {REPLICAS} "
        "tiny-model server replicas, 2 CPU cores (median of 3 rounds)"
    )
    print(f"{'job store':<12}{'orchestrators':>14}{'jobs/min':>10}")
    for r in results:
        print(f"{r['store']:<12}{r['orchestrators']:>14}{r['jobs_per_min']:>10.1f}")
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "scale_out.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
