"""How long a running job has left, from its own timings so far (reporter.py publishes it as
VideoEditStatus.eta_seconds, and stage_eta_seconds for the current stage, with every status).

The current stage: its pace so far (seconds per frame done) times the frames it has left. The
stages after it: the job's pace per unit of overall progress so far, times the progress they
cover (their bands in contract.STAGES). Simple on purpose: no history of other jobs, so the
first seconds of a job, before any progress, have no estimate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Where a running job is: overall `progress` (0..1), the current stage's band of it
    (`band_start`..`band_end`), and the seconds spent in that stage and in the run so far."""

    progress: float
    band_start: float
    band_end: float
    stage_seconds: float
    run_seconds: float


@dataclass(frozen=True)
class Estimate:
    """Seconds left: in the current stage, and in the whole job."""

    stage: float
    job: float


def estimate(t: Timing) -> Estimate | None:
    """Seconds left (None: no progress yet to measure a pace by)."""
    if t.progress <= 0 or t.run_seconds <= 0:
        return None
    pace = t.run_seconds / t.progress  # seconds per unit of overall progress
    band = t.band_end - t.band_start
    done_in_stage = (t.progress - t.band_start) / band if band > 0 else 0.0
    if done_in_stage > 0:
        stage_left = t.stage_seconds * (1 - done_in_stage) / done_in_stage
    else:  # just entered: the job's pace over what the stage covers
        stage_left = pace * max(0.0, t.band_end - t.progress)
    stage_left = max(0.0, stage_left)
    return Estimate(stage_left, stage_left + pace * max(0.0, 1.0 - t.band_end))


def eta_seconds(t: Timing) -> float | None:
    """Seconds left in the whole job (None: no progress yet)."""
    found = estimate(t)
    return found.job if found is not None else None
