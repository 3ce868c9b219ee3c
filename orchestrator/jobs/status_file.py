"""`status.json`, the original worker's status file: written atomically, read by anyone."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..request import VideoEditStatus

STATUS_FILE = "status.json"


def write_status(output_dir: Path, status: VideoEditStatus) -> None:
    """Write to a temp file in the same directory, then rename over the old one,
    so a reader never sees a half-written file."""
    output_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output_dir, prefix=".status.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(status.to_dict(), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, output_dir / STATUS_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_status(output_dir: Path) -> VideoEditStatus | None:
    """The status stored in `output_dir`, or None when there is none."""
    try:
        data = json.loads((output_dir / STATUS_FILE).read_text())
    except FileNotFoundError:
        return None
    return VideoEditStatus.from_dict(data)
