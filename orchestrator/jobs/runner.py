"""One job from start to end: log file, scratch space, the pipeline, and the
final status (FINISHED, FAILED with an actionable error, or CANCELLED)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
import traceback
from pathlib import Path

from ..errors import JobCancelled, JobInterrupted, JobLost, VideoEditError
from ..models import Models
from ..pipeline import output_paths, run_pipeline
from ..request import CheckedRequest, JobStatus, VideoEditRequest, VideoEditStatus
from .reporter import JobReporter

# How long a job waits for a model server to come up before failing.
MODEL_SERVER_WAIT_S = 120.0


def new_status(checked: CheckedRequest) -> VideoEditStatus:
    req, output_dir = checked.request, checked.output_dir
    now = time.time()
    return VideoEditStatus(
        job_id=req.job_id,
        status=JobStatus.QUEUED,
        message="queued",
        logs_path=output_dir / f"{req.job_id}_log.txt",
        output_dir=output_dir,
        created_at=now,
        updated_at=now,
    )


def run_job(
    checked: CheckedRequest,
    models: Models,
    reporter: JobReporter,
    threads: int = 0,
    orchestrator: str = "",
    attempt: int = 1,
) -> VideoEditStatus:
    """Run the job to its end and publish its final status. `threads`: decoder/encoder threads
    the job may use (0: one or more per core). `orchestrator` names who runs it in each line of
    the job's log (a job taken over by another orchestrator appends to the same log)."""
    req, output_dir = checked.request, checked.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    log, handler = _job_logger(req.job_id, output_dir / f"{req.job_id}_log.txt", orchestrator)
    workdir = Path(tempfile.mkdtemp(prefix=".work-", dir=output_dir))
    started = time.monotonic()
    # The terminal status is published last, after scratch files are gone and the log is
    # closed: a client that sees the job end finds its output dir in its final state.
    try:
        log.info(
            "job %s started%s\nrequest: %s\noptions: %s",
            req.job_id,
            f" (attempt {attempt}: earlier runs did not finish)" if attempt > 1 else "",
            json.dumps(req.to_dict(), ensure_ascii=False),
            checked.options,
        )
        info = models.info(wait_s=MODEL_SERVER_WAIT_S)
        log.info("model server %s", info.description)
        if info.tiny:
            log.warning("the model server runs TINY RANDOM-WEIGHT models: outputs are not meaningful")
        outputs = run_pipeline(checked, models, reporter, log, workdir, reporter.stop, threads)
        # A cancel that came while the last frames were written still wins; a shutdown does not
        # throw away a job that is done.
        reporter.check_cancelled(finishing=True)
        final: dict | None = dict(
            status=JobStatus.FINISHED,
            progress=1.0,
            current_frame=None,
            message=f"finished: {outputs.summary}" if outputs.summary else "finished",
            total_frames=None,
            output_video_path=outputs.video,
            mask_preview_path=outputs.mask,
        )
    except Exception as err:  # every way a job ends early: stopped (why says how) or FAILED with the reason
        final = _ended_early(err, req, reporter.status.status.value, log)
    finally:
        reporter.end_stage()
        shutil.rmtree(workdir, ignore_errors=True)
    timings = ", ".join(
        f"{k} {v:.2f}s (CPU {reporter.stage_cpu_seconds[k]:.2f}s)" for k, v in reporter.stage_seconds.items()
    )
    if final is not None:
        log.info(
            "job %s ended %s after %.2fs (%s)", req.job_id, final["status"].value, time.monotonic() - started, timings
        )
    log.removeHandler(handler)
    handler.close()
    if final is not None:
        reporter.publish(**final)
    return reporter.status


def _ended_early(err: Exception, req: VideoEditRequest, stage: str, log: logging.Logger) -> dict | None:
    """The final status fields of a job that stopped or failed while in `stage` (None: another
    orchestrator runs it now and owns its status); partial outputs are removed."""
    if isinstance(err, JobLost):  # the new owner runs the job and owns its files and status now
        log.warning(
            "job stopped: another orchestrator took it over (this one's lease expired); its files are "
            "left to the new run"
        )
        return None
    removed = _remove_partial_outputs(req)  # saving runs behind editing: it may have begun
    removed_text = f"; removed partial {', '.join(removed)}" if removed else ""
    if isinstance(err, JobInterrupted):
        log.info(
            "job interrupted by a server shutdown%s; queued again, it runs from the start on the next "
            "orchestrator to claim it",
            removed_text,
        )
        return dict(
            status=JobStatus.QUEUED,
            progress=0.0,
            current_frame=None,
            total_frames=None,
            message="interrupted by a server shutdown; queued again for the next orchestrator to claim it",
        )
    if isinstance(err, JobCancelled):
        log.info("job cancelled%s", removed_text)
        return dict(status=JobStatus.CANCELLED, message="cancelled")
    error = str(err) if isinstance(err, VideoEditError) else f"{type(err).__name__}: {err}"
    log.error("job failed while %s: %s%s\n%s", stage, error, removed_text, traceback.format_exc())
    return dict(status=JobStatus.FAILED, error=f"{stage}: {error}", message=f"failed while {stage}")


def _job_logger(job_id: str, path: Path, orchestrator: str) -> tuple[logging.Logger, logging.Handler]:
    """A logger whose records also go to the job's `{job_id}_log.txt` (appended: every run)."""
    log = logging.getLogger(f"videoedit.job.{job_id}")
    log.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8")
    where = f"[{orchestrator}] " if orchestrator else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {where}%(message)s"))
    log.addHandler(handler)
    return log, handler


def _remove_partial_outputs(request: VideoEditRequest) -> list[str]:
    removed = []
    outputs = output_paths(request)
    for path in (outputs.video, outputs.mask):
        if path.exists():
            path.unlink()
            removed.append(path.name)
    return removed
