"""One job from start to end: log file, scratch space, the pipeline, and how it ended: FINISHED,
FAILED with an actionable error, CANCELLED, or handed back to the queue (a server shutdown, a
model-server outage to wait out).

Every write goes through the job's claim (claims.py): the log and status.json only while the
claim holds the job, the outputs first under names of this attempt, renamed into place in the
transaction that records the end in the job store; status.json follows the store. A run that
lost its claim leaves everything to the run that holds it.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import shutil
import time
import traceback
from pathlib import Path

from ..errors import JobCancelled, JobInterrupted, JobLost, ModelServerUnavailable, VideoEditError
from ..models import Models
from ..pipeline import MaskSources, OutputPaths, output_paths, run_pipeline
from ..pipeline.checkpoint import MANIFEST
from ..request import CheckedRequest, JobStatus, VideoEditRequest, VideoEditStatus
from .callback_urls import redact
from .claims import JobClaim
from .reporter import JobReporter

log = logging.getLogger(__name__)

# How long a job waits for a model server to come up before failing.
MODEL_SERVER_WAIT_S = 120.0
# A job that meets a model-server outage is queued again, not to be claimed for a while (doubling
# from the first, up to the most); after this many attempts it fails.
OUTAGE_RETRY_FIRST_S, OUTAGE_RETRY_MAX_S = 5.0, 60.0
MAX_ATTEMPTS = 6
SCRATCH_PREFIX = ".work-attempt-"
# Written into a scratch directory by a run that handed its job back (and writes no more there).
RELEASED = "released"


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
        # Several objects: theirs, one per object, "; " apart.
        mask_prompt="; ".join(t.mask_prompt for t in checked.targets),
        edit_prompt="; ".join(t.edit_prompt for t in checked.targets),
        mode=req.mode,
        tenant=req.tenant,
    )


@dataclasses.dataclass(frozen=True)
class Ending:
    """How a run ended: the status to record (None: the job is another run's now), and whether it
    goes back to the queue (and after how long) rather than ending."""

    status: dict | None
    requeue_after_s: float | None = None
    outputs: OutputPaths | None = None  # the staged outputs to rename into place (FINISHED)
    failed: dict | None = None  # how it ends when it cannot be queued again (no queue: legacy_api)


def run_job(
    checked: CheckedRequest,
    models: Models,
    reporter: JobReporter,
    threads: int = 0,
    orchestrator: str = "",
    masks: MaskSources = MaskSources(),
) -> VideoEditStatus:
    """Run the job to its end and publish how it ended. `threads`: decoder/encoder threads the
    job may use (0: one or more per core). `orchestrator` names who runs it in each line of the
    job's log (a job taken over by another orchestrator appends to the same log). `masks`: where
    masks tracked before may come from."""
    req, output_dir, claim = checked.request, checked.output_dir, reporter.claim
    final_paths = output_paths(req)
    staged = final_paths.staged(claim.attempt)
    job_log, handler = _job_logger(req.job_id, output_dir / f"{req.job_id}_log.txt", orchestrator, claim)
    workdir = output_dir / f"{SCRATCH_PREFIX}{claim.attempt}"
    started, started_at = time.monotonic(), time.time()
    ending = Ending(None)
    try:  # nothing raises past here: a job that cannot even start (a full volume) ends FAILED
        _adopt_scratch(output_dir, workdir, started_at, job_log)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / RELEASED).unlink(missing_ok=True)
        _start(checked, models, job_log, claim.attempt)
        outputs = run_pipeline(
            checked, models, reporter, job_log, workdir, reporter.stop, staged, threads, claim.attempt, masks
        )
        # A cancel that came while the last frames were written still wins; a shutdown does not
        # throw away a job that is done.
        reporter.check_cancelled(finishing=True)
        ending = Ending(_finished(outputs, final_paths), outputs=outputs)
    except Exception as err:  # every way a job ends early: stopped (why says how) or FAILED with the reason
        ending = _ended_early(err, reporter.status.status.value, claim.attempt, job_log, output_dir)
    finally:
        reporter.end_stage()
        if ending.requeue_after_s is None:  # gone before the end is published: a watcher sees no scratch left
            shutil.rmtree(workdir, ignore_errors=True)
        elif workdir.is_dir():  # to be queued again: this run writes no more there, the next resumes from it
            (workdir / RELEASED).touch()
    if ending.status is not None:
        timings = ", ".join(
            f"{k} {v:.2f}s (CPU {reporter.stage_cpu_seconds[k]:.2f}s)" for k, v in reporter.stage_seconds.items()
        )
        job_log.info(
            "job %s ended %s after %.2fs (%s)",
            req.job_id,
            ending.status["status"].value,
            time.monotonic() - started,
            timings,
        )
    job_log.removeHandler(handler)
    handler.close()
    recorded = _record(ending, reporter, final_paths)
    if not (recorded and reporter.status.status is JobStatus.QUEUED):  # not queued again after all
        shutil.rmtree(workdir, ignore_errors=True)
    for path in staged.files():  # what was not renamed into place: this attempt's leftovers
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if recorded:  # the job was this run's to its end: earlier attempts' scratch is nobody's now
        _remove_stale_scratch(output_dir, claim.attempt, started_at)
    return reporter.status


def _start(checked: CheckedRequest, models: Models, job_log: logging.Logger, attempt: int) -> None:
    req = checked.request
    job_log.info(
        "job %s started%s\nrequest: %s\noptions: %s",
        req.job_id,
        f" (attempt {attempt}: earlier runs did not finish)" if attempt > 1 else "",
        json.dumps(_loggable(req), ensure_ascii=False),
        checked.options,
    )
    info = models.info(wait_s=MODEL_SERVER_WAIT_S)
    job_log.info("model server %s", info.description)
    if info.tiny:
        job_log.warning("the model server runs TINY RANDOM-WEIGHT models: outputs are not meaningful")


def _loggable(req: VideoEditRequest) -> dict:
    """The request for the job's log: the callback URL without its query (it may carry the
    receiver's secrets)."""
    out = req.to_dict()
    if "callback_url" in out["extra"]:
        out["extra"] = {**out["extra"], "callback_url": redact(out["extra"]["callback_url"])}
    return out


def _finished(outputs: OutputPaths, final: OutputPaths) -> dict:
    return dict(
        status=JobStatus.FINISHED,
        progress=1.0,
        current_frame=None,
        message=f"finished: {outputs.summary}" if outputs.summary else "finished",
        total_frames=None,
        output_video_path=final.video,
        mask_preview_path=final.mask,
        objects_found=outputs.objects_found,
    )


def _record(ending: Ending, reporter: JobReporter, final: OutputPaths) -> bool:
    """Record the end in the job store first (the outputs renamed into place in the same
    transaction), then in status.json: a job whose end is stored never runs again, and a run
    that no longer holds the job changes nothing. False: not recorded."""
    if ending.status is None:
        return False
    claim, status = reporter.claim, reporter.final(**ending.status)
    if ending.requeue_after_s is not None:
        if claim.release(status, ending.requeue_after_s):
            reporter.ended(status)
            return True
        if ending.failed is None:  # lost meanwhile: the run that holds it now owns its status
            return False
        status = reporter.final(**ending.failed)  # nowhere to hand it back to (legacy_api): it ends here
    staged = ending.outputs
    if claim.finish(status, lambda: _rename(staged, final) if staged is not None else None):
        reporter.ended(status)
        return True
    log.warning(
        "job %s: its end (%s) was not recorded: the job is another run's now", status.job_id, status.status.value
    )
    return False


def _rename(staged: OutputPaths, final: OutputPaths) -> None:
    """The outputs into place. Again after a try whose transaction did not land: already there."""
    for source, target in zip(staged.files(), final.files(), strict=True):
        if source.exists() or not target.exists():
            if source.is_dir() and target.is_dir():  # an earlier run's, whose end was not recorded
                shutil.rmtree(target)
            os.replace(source, target)


def _ended_early(err: Exception, stage: str, attempt: int, job_log: logging.Logger, output_dir: Path) -> Ending:
    """How a run that stopped or failed while in `stage` ends."""
    if isinstance(err, JobLost):  # the new owner runs the job and owns its files and status now
        log.warning("a job stopped here: %s; its files are left to the run that holds it", err or "its claim was lost")
        return Ending(None)
    if isinstance(err, JobInterrupted):
        job_log.info(
            "job interrupted by a server shutdown; queued again, the next orchestrator to claim it "
            "resumes from its last checkpoint"
        )
        return Ending(
            _queued("interrupted by a server shutdown; queued again for the next orchestrator to claim it"),
            requeue_after_s=0.0,
        )
    if isinstance(err, JobCancelled):
        job_log.info("job cancelled")
        return Ending(dict(status=JobStatus.CANCELLED, message="cancelled"))
    failed = dict(
        status=JobStatus.FAILED, error=f"{stage}: {describe_error(err, output_dir)}", message=f"failed while {stage}"
    )
    if _is_outage(err) and attempt < MAX_ATTEMPTS:
        wait_s = min(OUTAGE_RETRY_MAX_S, OUTAGE_RETRY_FIRST_S * 2 ** (attempt - 1))
        job_log.warning(
            "job stopped while %s: %s; queued again, to be tried in %.0fs (attempt %d of at most %d)",
            stage,
            err,
            wait_s,
            attempt,
            MAX_ATTEMPTS,
        )
        message = (
            f"waiting out a model-server outage ({err}); queued again, tried in {wait_s:.0f}s "
            f"(attempt {attempt} of at most {MAX_ATTEMPTS})"
        )
        return Ending(_queued(message), requeue_after_s=wait_s, failed=failed)
    job_log.error("job failed while %s: %s\n%s", stage, failed["error"], traceback.format_exc())
    return Ending(failed)


def _queued(message: str) -> dict:
    return dict(status=JobStatus.QUEUED, progress=0.0, current_frame=None, total_frames=None, message=message)


def _is_outage(err: BaseException) -> bool:
    """No model server answered: the call itself, or a tracking session lost to it."""
    return isinstance(err, ModelServerUnavailable) or isinstance(err.__cause__, ModelServerUnavailable)


def describe_error(err: Exception, output_dir: Path | None = None) -> str:
    """What went wrong, for a person: a full volume named as such (by the file, else `output_dir`),
    our errors as they say."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        where = err.filename or output_dir or "the output directory"
        return f"no space left on the volume of {where}: free some space there or choose another output_dir"
    return str(err) if isinstance(err, VideoEditError) else f"{type(err).__name__}: {err}"


# Clocks of machines sharing the output volume may differ by this much (file times are the writer's).
CLOCK_SKEW_S = 2.0


def _remove_stale_scratch(output_dir: Path, attempt: int, since: float) -> None:
    """Scratch directories of earlier attempts of the job (an orchestrator that died, or lost its
    lease, while running it) in which nothing was written since this run began (`since`, unix s):
    an attempt that lost its claim stopped writing before this one could claim the job, and one
    still writing is left alone."""
    for scratch in output_dir.glob(f"{SCRATCH_PREFIX}*"):
        if scratch.name != f"{SCRATCH_PREFIX}{attempt}" and _nobody_writes(scratch, since):
            shutil.rmtree(scratch, ignore_errors=True)


def _adopt_scratch(output_dir: Path, workdir: Path, since: float, job_log: logging.Logger) -> None:
    """Make the newest earlier attempt's scratch directory this attempt's `workdir` (a rename), so
    the pipeline resumes from its checkpoints: one its run handed back (RELEASED), or one nothing
    was written to since this run began (`since`, unix s: its run died, or stopped when it lost
    the claim). One still being written is left alone, and the job starts over."""
    if workdir.exists() or not output_dir.is_dir():
        return
    earlier = sorted(
        (p for p in output_dir.glob(f"{SCRATCH_PREFIX}*") if p.name.removeprefix(SCRATCH_PREFIX).isdigit()),
        key=lambda p: int(p.name.removeprefix(SCRATCH_PREFIX)),
        reverse=True,
    )
    for scratch in earlier:
        if not (scratch / MANIFEST).exists():
            continue
        if _nobody_writes(scratch, since):
            os.rename(scratch, workdir)
            job_log.info("resume: this attempt carries on from the checkpoints of %s", scratch.name)
        return


def _nobody_writes(scratch: Path, since: float) -> bool:
    """No run writes to `scratch` any more: its run said so (RELEASED: it handed the job back, or
    died and an orchestrator on its machine expired its lease), or nothing was written there since
    `since` (unix s), when this run began."""
    return (scratch / RELEASED).exists() or _last_written(scratch) < since - CLOCK_SKEW_S


def release_scratch(output_dir: Path | None) -> None:
    """Mark every scratch directory of the job writing into `output_dir` as written by nobody (the
    process running it is known to be gone): its next attempt resumes from it at once."""
    for scratch in output_dir.glob(f"{SCRATCH_PREFIX}*") if output_dir is not None and output_dir.is_dir() else ():
        (scratch / RELEASED).touch()


def remove_scratch(output_dir: Path | None) -> None:
    """Every scratch directory of the job writing into `output_dir` (it ended without running)."""
    for scratch in output_dir.glob(f"{SCRATCH_PREFIX}*") if output_dir is not None and output_dir.is_dir() else ():
        shutil.rmtree(scratch, ignore_errors=True)


def _last_written(directory: Path) -> float:
    """When anything in `directory` was last written (unix s)."""
    newest = 0.0
    for root, _, files in os.walk(directory):
        for path in (root, *(os.path.join(root, name) for name in files)):
            try:
                newest = max(newest, os.stat(path).st_mtime)
            except OSError:  # removed meanwhile
                pass
    return newest


class _Fenced(logging.Filter):
    """Lets a job's log lines through only while its claim holds the job."""

    def __init__(self, claim: JobClaim) -> None:
        super().__init__()
        self._claim = claim

    def filter(self, record: logging.LogRecord) -> bool:
        return self._claim.holds()


def _job_logger(job_id: str, path: Path, orchestrator: str, claim: JobClaim) -> tuple[logging.Logger, logging.Handler]:
    """A logger whose records also go to the job's `{job_id}_log.txt` (appended: every run), as
    long as the claim holds the job."""
    job_log = logging.getLogger(f"videoedit.job.{job_id}")
    job_log.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)  # opened at the first line
    handler.addFilter(_Fenced(claim))
    where = f"[{orchestrator}] " if orchestrator else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {where}%(message)s"))
    job_log.addHandler(handler)
    return job_log, handler
