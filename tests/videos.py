"""Helpers for reading videos back in tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def streams(path: Path) -> dict[str, str]:
    with av.open(str(path)) as container:
        return {s.type: s.codec_context.name for s in container.streams}


def fps(path: Path):
    with av.open(str(path)) as container:
        return container.streams.video[0].average_rate
