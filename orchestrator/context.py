"""What every pipeline stage gets: the job, its options, the model client,
the progress reporter, the job's logger and a scratch directory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .extracting import VideoInfo
from .model_client import ModelClient
from .progress import JobReporter
from .request import VideoEditRequest
from .validation import EditOptions


@dataclass
class JobContext:
    request: VideoEditRequest
    options: EditOptions
    models: ModelClient
    reporter: JobReporter
    log: logging.Logger
    workdir: Path  # scratch space, removed when the job ends
    info: Optional[VideoInfo] = None  # set by the extracting stage

    @property
    def job_id(self) -> str:
        return self.request.job_id

    @property
    def output_dir(self) -> Path:
        assert self.request.output_dir is not None
        return self.request.output_dir
