"""Each tenant's quotas on new jobs, checked when a job is started (JobManager.start).

What an admin set for a tenant (`videoedit-admin quota set`; TenantSettings, None: no limit):
- max_queued: jobs of the tenant waiting in the queue at once (counted in the job store, so on
  every orchestrator sharing it; counted before the job is added, so StartEdits of one tenant
  racing each other may pass it by as many as run at once, like the whole queue's limit);
- max_video_seconds: how much video one job may process (the input's duration, or less with
  max_frames; an input whose headers do not say its length is refused unless max_frames bounds it);
- max_running is not checked here: the claims enforce it (store/sql.py), a tenant's jobs beyond it
  wait queued while other tenants' run.
Admins' keys and the default tenant "" (one-user setups) have no quotas. Every refusal is
RESOURCE_EXHAUSTED and names the limit, the value that met it and what to do.
"""

from __future__ import annotations

from ..errors import ResourceExhausted
from ..request import CheckedRequest, JobStatus
from .store import JobStore
from .tenants import Caller, TenantSettings

SET_WITH = "set with videoedit-admin quota set"


def check_quotas(store: JobStore, checked: CheckedRequest, caller: Caller) -> None:
    """Refuse (ResourceExhausted) a new job of `caller` that its tenant's quotas do not allow."""
    if caller.admin or not caller.tenant:
        return
    settings = store.tenant_settings(caller.tenant)
    if settings is None:
        return
    _check_queued(store, settings)
    _check_video_seconds(checked, settings)


def _check_queued(store: JobStore, settings: TenantSettings) -> None:
    if settings.max_queued is None:
        return
    queued = store.counts(settings.tenant)[JobStatus.QUEUED]
    if queued >= settings.max_queued:
        raise ResourceExhausted(
            f"tenant {settings.tenant!r} has {queued} jobs queued, its limit (max_queued, {SET_WITH}): "
            "wait for some to start or cancel some"
        )


def _check_video_seconds(checked: CheckedRequest, settings: TenantSettings) -> None:
    limit = settings.max_video_seconds
    if limit is None:
        return
    seconds = checked.processed_seconds
    if seconds is None:  # the headers do not say (a raw stream): refused, or the limit would mean nothing
        raise ResourceExhausted(
            f"the length of the input video is not in its headers, so tenant {settings.tenant!r}'s limit of "
            f"{limit:g} s (max_video_seconds, {SET_WITH}) cannot be checked: set max_frames, or remux the "
            "video into MP4 or MKV"
        )
    if seconds > limit:
        raise ResourceExhausted(
            f"the job would process {seconds:.1f} s of video, over tenant {settings.tenant!r}'s limit of {limit:g} s "
            f"(max_video_seconds, {SET_WITH}): cut the video or set max_frames to process less of it"
        )
