"""`make bench`: every benchmark, one table each (model server, then pipeline, smoothing, the
naive baseline and jobs/min, then HD throughput and overlap, keyframes against per-frame
editing, tracking continuity across Segment chunks, orchestrators sharing PostgreSQL, an
interrupted job resumed, several instructions on masks tracked once, what many tenants cost the
job store), with JSON and a PNG plot in bench-results/."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see modelserver.cli

from bench import hd, keyframes, modelserver, pipeline, resume, reuse, scale_out, tenancy, tracking  # noqa: E402

RESULTS = Path("bench-results")

if __name__ == "__main__":
    RESULTS.mkdir(exist_ok=True)
    modelserver.main(["--json", str(RESULTS / "modelserver.json")])
    pipeline.main(RESULTS)
    hd.main(RESULTS)
    keyframes.main(RESULTS)
    tracking.main(RESULTS)
    scale_out.main(RESULTS)
    resume.main(RESULTS)
    reuse.main(RESULTS)
    tenancy.main(RESULTS)
