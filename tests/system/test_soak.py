"""Soak: jobs back to back leave no leaked threads, file descriptors, child processes, scratch
files or memory growth, in the orchestrator or the model server."""

from __future__ import annotations

from pathlib import Path

from bench.load import process_stats
from tests.helpers import FAST_JOB
from videoedit.v1 import video_edit_pb2 as pb

WARM_UP, JOBS = 3, 12


def children(pid: int) -> list[str]:
    return [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def test_jobs_back_to_back_leak_nothing(stack, client, clip):
    orchestrator, modelserver = stack.processes["orchestrator"].pid, stack.processes["modelserver"].pid
    stats = {}
    for i in range(JOBS):
        client.start_edit(str(clip), "car", "make it red", job_id=f"soak-{i}", **FAST_JOB)
        assert client.wait(f"soak-{i}").status == pb.JOB_STATUS_FINISHED
        if i + 1 in (WARM_UP, JOBS):
            stats[i + 1] = (process_stats(orchestrator), process_stats(modelserver))
    (o_threads, o_fds, o_rss), (m_threads, m_fds, m_rss) = stats[WARM_UP]
    (o_threads2, o_fds2, o_rss2), (m_threads2, m_fds2, m_rss2) = stats[JOBS]
    assert o_threads2 <= o_threads + 2 and o_fds2 <= o_fds + 2 and o_rss2 < o_rss + 40
    assert m_threads2 <= m_threads + 2 and m_fds2 <= m_fds + 2 and m_rss2 < m_rss + 100
    assert children(orchestrator) == []
    assert not list(stack.output_root.glob("*/.work-*"))  # every job's scratch dir is gone
    assert not list(stack.output_root.glob("*/.status.*.tmp"))
