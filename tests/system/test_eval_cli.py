"""`videoedit eval` on the files of a real finished job."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import FAST_JOB


def test_videoedit_eval_on_a_finished_job(client, clip, tmp_path):
    client.start_edit(str(clip), "car", "make it blue", job_id="to-eval", **FAST_JOB)
    final = client.wait("to-eval")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "clients.cli",
            "eval",
            str(clip),
            final.output_video_path,
            final.mask_preview_path,
            "--json",
            str(tmp_path / "q.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "background PSNR" in result.stdout
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["frames"] == 12 and q["background_psnr_db"] > 30  # outside the mask only codec error remains
