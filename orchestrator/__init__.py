"""The orchestrator: jobs, frames, tracking, crop-edit-paste, smoothing, encoding.

The original worker API (see README.md) is importable from here:

    from orchestrator import VideoEditRequest, run_video_edit, get_video_edit_status
"""

from .legacy_api import get_video_edit_status, run_video_edit
from .request import JobStatus, VideoEditRequest, VideoEditStatus

__all__ = ["JobStatus", "VideoEditRequest", "VideoEditStatus", "get_video_edit_status", "run_video_edit"]
