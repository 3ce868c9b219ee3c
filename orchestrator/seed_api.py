"""The seed's in-process API: run_video_edit and get_video_edit_status.

`run_video_edit` runs the same pipeline as the gRPC service, synchronously,
against the model servers of VIDEOEDIT_MODEL_SERVERS. Status goes to
`<output_dir>/status.json`, so another thread or process can poll it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .config import Settings
from .errors import JobFailed, NotFound
from .jobs.reporter import JobReporter
from .jobs.runner import new_status, run_job
from .jobs.status_file import read_status, write_status
from .jobs.validation import check_job_id, check_request
from .models.grpc_client import ModelClient
from .request import JobStatus, VideoEditRequest, VideoEditStatus


def run_video_edit(request: VideoEditRequest) -> None:
    """Run the job to the end. Raises the validation error, or JobFailed when the job fails."""
    settings = Settings.from_env()
    checked = check_request(request, settings)
    status = new_status(checked)
    write_status(checked.output_dir, status)
    models = ModelClient(settings.model_servers, settings.model_timeout_s)
    try:
        final = run_job(checked, models, JobReporter(status, checked.output_dir))
    finally:
        models.close()
    if final.status is not JobStatus.FINISHED:
        raise JobFailed(final.error or final.status.value)


def get_video_edit_status(job_id: str, output_dir: Optional[Path] = None) -> VideoEditStatus:
    """The job's status from its status.json (default dir: <UR_EDIT_OUTPUT_DIR>/<job_id>)."""
    check_job_id(job_id)
    directory = Path(output_dir) if output_dir else Settings.from_env().output_root / job_id
    status = read_status(directory)
    if status is None:
        raise NotFound(f"no job {job_id!r}: {directory / 'status.json'} does not exist")
    return status
