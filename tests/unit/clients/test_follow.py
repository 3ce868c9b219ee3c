"""The CLI's progress: a bar per stage that works through frames, with the job's time so far and
the orchestrator's estimate of the time left (the job's and the stage's); a line for the others."""

from __future__ import annotations

from dataclasses import dataclass

from clients.follow import follow, job_time
from videoedit.v1 import video_edit_pb2 as pb


@dataclass
class Replayed:
    """A client whose job goes through `statuses`."""

    statuses: list[pb.VideoEditStatus]

    def wait(self, job_id, on_status=None):
        for status in self.statuses:
            on_status(status)
        return self.statuses[-1]


def status(stage: int, progress: float, **fields) -> pb.VideoEditStatus:
    return pb.VideoEditStatus(job_id="j", status=stage, progress=progress, message="working", **fields)


def test_job_time_says_the_time_so_far_and_left():
    assert job_time(status(pb.JOB_STATUS_EDITING, 0.42)) == "42% of the job"
    timed = status(pb.JOB_STATUS_EDITING, 0.42, elapsed_seconds=31, eta_seconds=65, stage_eta_seconds=20)
    assert job_time(timed) == "42% of the job, 0:31 so far, about 1:05 left (0:20 in this stage)"
    assert "1:01:05 left" in job_time(status(pb.JOB_STATUS_EDITING, 0.1, eta_seconds=3665))


def test_the_bars_and_lines_show_the_time_left(capsys):
    statuses = [
        status(pb.JOB_STATUS_QUEUED, 0.0),
        status(pb.JOB_STATUS_EDITING, 0.5, current_frame=3, total_frames=6, elapsed_seconds=10, eta_seconds=12),
        status(pb.JOB_STATUS_SAVING, 0.9, elapsed_seconds=20, eta_seconds=2),
        status(pb.JOB_STATUS_FINISHED, 1.0),
    ]
    final = follow(Replayed(statuses), "j")
    shown = capsys.readouterr().err
    assert final.status == pb.JOB_STATUS_FINISHED
    assert "queued" in shown and "editing" in shown and "3/6" in shown
    assert "0:10 so far, about 0:12 left" in shown  # in the editing bar
    assert "saving      6/6: working (90% of the job, 0:20 so far, about 0:02 left)" in shown
