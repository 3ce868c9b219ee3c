"""Stage 5, smoothing: cut flicker inside the edited region.

Each frame's edited region is blended with the mean of up to
`smoothing_window - 1` previous smoothed frames, with weight `smoothing_alpha`
(times the paste weight, so the background is never touched). The history
restarts whenever the object leaves the frame.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

from .context import JobContext
from .editing import paste_weight
from .frame_spool import SpoolWriter, read_spool
from .mask_store import MaskStore
from .request import JobStatus


def smooth_frames(ctx: JobContext, masks: MaskStore, edited: Path, out_path: Path) -> Path:
    info = ctx.info
    assert info is not None
    req = ctx.request
    ctx.reporter.stage(JobStatus.SMOOTHING, f"smoothing (window {req.smoothing_window}, alpha {req.smoothing_alpha})",
                       total_frames=info.frame_count)
    history: deque[np.ndarray] = deque(maxlen=max(req.smoothing_window - 1, 1))
    with SpoolWriter(out_path, info.width, info.height, info.fps) as spool:
        for index, frame in enumerate(read_spool(edited)):
            if masks.box(index) is None or req.smoothing_window < 2:
                history.clear()
                out = frame
            else:
                out = frame
                if history:
                    weight = req.smoothing_alpha * paste_weight(masks.get(index), req.erode_kernel)[..., None]
                    past = np.mean(np.stack(history), axis=0)
                    blended = np.clip(np.rint(frame * (1 - weight) + past * weight), 0, 255).astype(np.uint8)
                    out = np.where(weight > 0, blended, frame)
                history.append(out)
            spool.write(out)
            if index % 8 == 7:
                ctx.reporter.advance(index + 1)
    ctx.reporter.advance(info.frame_count)
    return out_path
