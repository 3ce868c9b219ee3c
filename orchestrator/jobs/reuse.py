"""`extra.masks_from`: which finished job's masks an edit job reuses, checked when the job is
started (so a bad name fails StartEdit with INVALID_ARGUMENT naming the field, not the job later)
and found again when it runs (pipeline.reusing checks the masks against the input it reads)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidArgument
from ..media.object_list import ObjectList
from ..pipeline import OutputPaths
from ..pipeline.checkpoint import file_sha256
from ..request import CheckedRequest, JobStatus, Mode, job_key
from .store import JobStore

FIELD = "extra[masks_from]"


def masks_from(checked: CheckedRequest, store: JobStore) -> OutputPaths | None:
    """The outputs of the job whose masks `checked` reuses (None: it names none)."""
    job_id = checked.options.masks_from
    if job_id is None:
        return None
    stored = store.get(job_key(checked.request.tenant, job_id))  # a job of the same tenant only
    if stored is None:
        raise InvalidArgument(FIELD, f"there is no job {job_id!r}")
    status = stored.status
    if status.mode not in (Mode.MASKS, Mode.VIDEO):
        raise InvalidArgument(FIELD, f"job {job_id!r} is a {status.mode} job; masks come from masks or video jobs")
    if status.status is not JobStatus.FINISHED:
        raise InvalidArgument(FIELD, f"job {job_id!r} is {status.status.value}; its masks are there once it finished")
    assert status.output_dir is not None
    paths = OutputPaths.of(Path(status.output_dir), job_id, Mode(status.mode))
    assert paths.objects is not None
    if not paths.objects.is_file():
        raise InvalidArgument(FIELD, f"job {job_id!r} left no objects list (made by an older release?)")
    return paths


def check_masks_from(checked: CheckedRequest, store: JobStore) -> None:
    """StartEdit's check: the job exists, has finished with masks, tracked this input's content,
    and has the objects extra.objects names."""
    paths = masks_from(checked, store)
    if paths is None:
        return
    assert paths.objects is not None
    try:
        listing = ObjectList.read(paths.objects)
    except (OSError, ValueError) as err:
        raise InvalidArgument(FIELD, f"job {checked.options.masks_from!r}'s objects cannot be read: {err}") from None
    if why := listing.reusable_for(file_sha256(checked.request.input_video_path)):
        raise InvalidArgument(FIELD, why)
    try:
        listing.picked(checked.options.objects)
    except ValueError as err:
        raise InvalidArgument("extra[objects]", str(err)) from None
