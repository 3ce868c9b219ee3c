"""Following a job from a terminal: one progress bar per stage, a one-line summary, exit codes.

Shared by `videoedit` (cli.py) and `videoedit demo` (demo.py).
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from videoedit.v1 import contract
from videoedit.v1 import video_edit_pb2 as pb

from .client import TERMINAL, VideoEditClient

EXIT_FINISHED, EXIT_FAILED, EXIT_BAD_REQUEST, EXIT_CANCELLED, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4


def status_name(value: int) -> str:
    return pb.JobStatus.Name(value).removeprefix("JOB_STATUS_").lower()


def stage_label(value: int) -> str:
    """ "editing 4/6": the stage and where it stands in the job's stage list."""
    name = status_name(value)
    if name not in contract.STAGE_NAMES:
        return f"{name:<15}"
    return f"{name:<11} {contract.STAGE_NAMES.index(name) + 1}/{len(contract.STAGE_NAMES)}"


def describe(status: pb.VideoEditStatus) -> str:
    frames = f" frame {status.current_frame}/{status.total_frames}" if status.HasField("total_frames") else ""
    line = f"{status.job_id}: {status_name(status.status)} {status.progress:6.1%}{frames} {status.message}"
    if status.HasField("elapsed_seconds"):
        line += f" ({_clock(status.elapsed_seconds)})"
    if status.error:
        line += f"\n  error: {status.error}"
    if status.status == pb.JOB_STATUS_FINISHED:
        line += f"\n  output: {status.output_video_path}\n  mask:   {status.mask_preview_path}"
    if status.logs_path:
        line += f"\n  log:    {status.logs_path}"
    return line


def job_time(status: pb.VideoEditStatus) -> str:
    """ "42% of the job, 0:31 so far, about 1:05 left (0:20 in this stage)": from the
    orchestrator's estimates."""
    parts = [f"{status.progress:.0%} of the job"]
    if status.HasField("elapsed_seconds"):
        parts.append(f"{_clock(status.elapsed_seconds)} so far")
    if status.HasField("eta_seconds"):
        stage = f" ({_clock(status.stage_eta_seconds)} in this stage)" if status.HasField("stage_eta_seconds") else ""
        parts.append(f"about {_clock(status.eta_seconds)} left{stage}")
    return ", ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


def exit_code(status: pb.VideoEditStatus) -> int:
    return {
        pb.JOB_STATUS_FINISHED: EXIT_FINISHED,
        pb.JOB_STATUS_FAILED: EXIT_FAILED,
        pb.JOB_STATUS_CANCELLED: EXIT_CANCELLED,
    }.get(status.status, EXIT_FINISHED)


def follow(client: VideoEditClient, job_id: str, quiet: bool = False) -> pb.VideoEditStatus:
    """Follow a job with one progress bar per stage; returns the final status."""
    bar: tqdm | None = None
    stage = None

    def show(status: pb.VideoEditStatus) -> None:
        nonlocal bar, stage
        if quiet or status.status in TERMINAL:
            return
        if status.status != stage:
            if bar is not None:
                bar.close()
            stage, bar = status.status, None
            if status.HasField("total_frames"):  # stages that work through frames get a bar
                bar = tqdm(total=status.total_frames, desc=stage_label(stage), unit="frame", dynamic_ncols=True)
            else:  # queued, saving: a line, with the time when there is an estimate
                timed = f" ({job_time(status)})" if status.HasField("eta_seconds") else ""
                print(f"{stage_label(stage)}: {status.message}{timed}", file=sys.stderr)
        if bar is not None and status.HasField("current_frame"):
            if status.HasField("total_frames") and status.total_frames != bar.total:
                bar.total = status.total_frames  # a stage that ended early (masking found the object)
            bar.n = status.current_frame
            bar.set_postfix_str(job_time(status))
            bar.refresh()

    final = client.wait(job_id, on_status=show)
    if bar is not None:
        bar.close()
    return final
