"""The original worker API, in process: run_video_edit and get_video_edit_status.

`run_video_edit` runs the same pipeline as the gRPC service, synchronously,
against the model servers of VIDEOEDIT_MODEL_SERVERS. Status goes to
`<output_dir>/status.json`, so another thread or process can poll it.

The original worker's UI flow polls right after starting the job's thread, often before the
thread has written status.json, or even called run_video_edit. So a job this process has started
reads as `queued` until its file exists (or `failed`, if its request was refused), and a status
asked for before anything exists waits up to START_GRACE_S for the job to appear before it is
NotFound.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from pathlib import Path

from .config import Settings
from .errors import InvalidArgument, JobFailed, NotFound, VideoEditError
from .jobs.reporter import JobReporter
from .jobs.runner import new_status, run_job
from .jobs.status_file import read_status, write_status
from .jobs.validation import check_job_id, check_no_nul, check_request
from .models.grpc_client import ModelClient
from .request import JobStatus, VideoEditRequest, VideoEditStatus

# How long a status asked for before its job shows up waits for it (a thread about to start).
START_GRACE_S = 2.0
_STARTING_KEPT = 1000  # refused requests remembered, newest last

# Jobs of this process whose status.json does not exist (yet): starting, or refused by validation.
_starting: OrderedDict[str, VideoEditStatus] = OrderedDict()
_starting_lock = threading.Lock()


def run_video_edit(request: VideoEditRequest) -> None:
    """Run the job to the end. Raises the validation error, or JobFailed when the job fails."""
    _remember(
        VideoEditStatus(
            job_id=request.job_id,
            status=JobStatus.QUEUED,
            message="starting",
            created_at=time.time(),
            updated_at=time.time(),
        )
    )
    settings = Settings.from_env()
    try:
        checked = check_request(request, settings)
        if checked.options.callback_url is not None:  # nothing here would send them: refused, not ignored
            raise InvalidArgument(
                "extra[callback_url]", "webhooks are sent by the orchestrator service, not by the in-process API"
            )
    except VideoEditError as err:
        _remember(
            dataclasses.replace(
                _starting.get(request.job_id) or VideoEditStatus(job_id=request.job_id),
                status=JobStatus.FAILED,
                error=str(err),
                message="refused",
                updated_at=time.time(),
            )
        )
        raise
    status = new_status(checked)
    write_status(checked.output_dir, status)
    with _starting_lock:
        _starting.pop(request.job_id, None)  # status.json speaks for the job from now on
    models = ModelClient(settings.model_servers, settings.model_timeout_s, settings.model_token)
    try:
        final = run_job(checked, models, JobReporter(status, checked.output_dir))
    finally:
        models.close()
    if final.status is not JobStatus.FINISHED:
        raise JobFailed(final.error or final.status.value)


def get_video_edit_status(job_id: str, output_dir: Path | None = None) -> VideoEditStatus:
    """The job's status from its status.json (default dir: <UR_EDIT_OUTPUT_DIR>/<job_id>)."""
    check_job_id(job_id)
    check_no_nul("output_dir", output_dir)
    directory = Path(output_dir) if output_dir else Settings.from_env().output_root / job_id
    deadline = time.monotonic() + START_GRACE_S
    while True:
        status = read_status(directory)
        if status is not None:
            return status
        with _starting_lock:
            starting = _starting.get(job_id)
        if starting is not None:
            return dataclasses.replace(starting, output_dir=starting.output_dir or directory)
        if time.monotonic() > deadline:
            raise NotFound(f"no job {job_id!r}: {directory / 'status.json'} does not exist")
        time.sleep(0.02)


def _remember(status: VideoEditStatus) -> None:
    if not status.job_id:
        return  # an id is made up during validation: nobody can be polling for it yet
    with _starting_lock:
        _starting[status.job_id] = status
        _starting.move_to_end(status.job_id)
        while len(_starting) > _STARTING_KEPT:
            _starting.popitem(last=False)
