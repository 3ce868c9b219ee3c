"""One pipeline run in a process of its own, so its peak RSS is the pipeline's.

    python -m bench.pipeline_run CLIP OUTPUT_ROOT MODEL_SERVER [json request fields]

Prints one JSON line: total and per-stage seconds (wall), the process's CPU seconds in all and
per stage (all its threads: the orchestrator's own cost; the model server is another process),
peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from orchestrator.config import Settings
from orchestrator.jobs.reporter import JobReporter
from orchestrator.jobs.runner import new_status, run_job
from orchestrator.jobs.validation import check_request
from orchestrator.models.grpc_client import ModelClient
from orchestrator.request import VideoEditRequest


def peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux carries that across exec from
    the parent, so a child of a big process (the benchmark holding models) would report its parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def main() -> None:
    clip, output_root, target = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), sys.argv[3]
    fields = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    settings = Settings(input_roots=(clip.parent,), output_root=output_root, model_servers=target)
    checked = check_request(
        VideoEditRequest(input_video_path=clip, mask_prompt="car", edit_prompt="make the car blue", **fields), settings
    )
    models = ModelClient(target)
    models.info(wait_s=300)
    status = new_status(checked)
    reporter = JobReporter(status, checked.request.output_dir)
    started, cpu_started = time.monotonic(), time.process_time()
    # Codec threads as the orchestrator gives its one job (cores / --max-concurrent-jobs 1).
    final = run_job(checked, models, reporter, threads=os.cpu_count() or 1)
    total, cpu = time.monotonic() - started, time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "status": final.status.value,
                "error": final.error,
                "total_s": total,
                "cpu_s": cpu,
                "stages": reporter.stage_seconds,
                "stage_cpu_s": reporter.stage_cpu_seconds,
                "peak_rss_mb": peak_rss_mb(),
                "output": str(final.output_video_path),
                "mask": str(final.mask_preview_path),
            }
        )
    )


if __name__ == "__main__":
    main()
