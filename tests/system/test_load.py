"""The bounded load test (bench/load.py): a burst of 50 StartEdit and 200 watchers."""

from __future__ import annotations

from bench.load import run_load
from orchestrator.api.server import BLOCKING_THREADS


def test_a_burst_is_bounded_and_every_accepted_job_finishes(tmp_path, model_cache):
    result = run_load(tmp_path, env={"VIDEOEDIT_CACHE_DIR": str(model_cache)})
    assert result.refused_other == []  # nothing but RESOURCE_EXHAUSTED beyond the queue limit
    assert result.refused_resource_exhausted > 0 and result.accepted + result.refused_resource_exhausted == 50
    assert result.finished == result.accepted and result.watcher_errors == 0
    # Threads: the pool of blocking calls grows on demand up to its size and keeps its threads; no
    # thread per stream.
    assert result.threads_peak <= result.threads_before + BLOCKING_THREADS + 16  # 16: the running jobs' stage threads
    assert result.threads_after <= result.threads_peak
    assert result.fds_after <= result.fds_before + 8  # streams and job files closed
    assert result.rss_mb_after < result.rss_mb_before + 150
