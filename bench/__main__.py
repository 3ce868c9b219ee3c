"""`make bench`: every benchmark, one table each (model server, then pipeline)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see modelserver.server

from bench import modelserver, pipeline  # noqa: E402

if __name__ == "__main__":
    modelserver.main([])
    pipeline.main()
