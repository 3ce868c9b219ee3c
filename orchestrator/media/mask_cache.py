"""The mask cache: objects tracked once, reused by any later job on the same input content with the
same mask prompt, tracking parameters and segmenter, on any orchestrator of the shared volume.

An entry is a directory named by its key (a SHA-256 of all of that) holding a job's
`objects.json` and its objects' files (the masks, the previews), linked rather than copied from
the job's outputs where the volume allows. Entries appear atomically (written under a temporary
name, then renamed), are marked used by their `used` file's time, and the least recently used go
once the cache holds more than its bound. Readers link the files they need into their own outputs
first, so an entry evicted meanwhile costs them nothing but a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LISTING = "objects.json"
FILES = "objects"
_USED = "used"


@dataclass(frozen=True)
class MaskKey:
    """What tracked masks depend on: equal keys give the same masks."""

    input_sha256: str
    mask_prompt: str
    tracking: dict[str, object]  # the tracking parameters (chunks, gaps, instances, max_frames)
    segmenter: str  # the models' identity (GetInfo)
    # Whose entry it is: a tenant never gets another's masks (they would tell it that someone
    # edited the same content, and show that someone's objects).
    tenant: str = ""

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    listing: Path  # objects.json
    files: Path  # the objects' files


class MaskCache:
    def __init__(self, root: Path, max_bytes: int):
        """A cache in `root` (made when first written) holding at most `max_bytes`."""
        self.root, self.max_bytes = root, max_bytes

    def find(self, key: MaskKey) -> CacheEntry | None:
        """The entry for `key` (marked used), or None."""
        entry = self.root / key.digest
        if not (entry / LISTING).is_file():
            return None
        try:
            (entry / _USED).touch()
        except OSError:  # evicted meanwhile
            return None
        return CacheEntry(entry / LISTING, entry / FILES)

    def put(self, key: MaskKey, listing: Path, files: Path) -> None:
        """Keep a job's objects under `key` (linked), then evict down to the bound. Errors are
        logged, never raised: the cache only saves time."""
        target = self.root / key.digest
        if target.exists():
            return
        staging = self.root / f".new-{uuid.uuid4().hex}"
        try:
            staging.mkdir(parents=True)
            shutil.copytree(files, staging / FILES, copy_function=link)
            link(listing, staging / LISTING)
            (staging / _USED).touch()
            os.rename(staging, target)  # atomic; another orchestrator's equal entry may have won
        except OSError as err:
            if not target.exists():
                log.warning("mask cache: could not keep masks under %s: %s", key.digest[:12], err)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.evict()

    def evict(self) -> None:
        """Remove the least recently used entries until the cache holds at most max_bytes."""
        entries = []
        for entry in self.root.iterdir():
            if entry.name.startswith("."):
                continue
            try:
                used = (entry / _USED).stat().st_mtime
            except OSError:
                continue
            entries.append((used, _size(entry), entry))
        total = sum(size for _, size, _ in entries)
        for used, size, entry in sorted(entries):
            if total <= self.max_bytes:
                return
            doomed = self.root / f".old-{uuid.uuid4().hex}"
            try:
                os.rename(entry, doomed)  # gone for readers at once
            except OSError:
                continue
            shutil.rmtree(doomed, ignore_errors=True)
            total -= size
            log.info("mask cache: evicted %s (%d bytes, unused for %.0f s)", entry.name[:12], size, time.time() - used)


def _size(entry: Path) -> int:
    return sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())


def link(source: os.PathLike, target: os.PathLike) -> None:
    """A second name for `source` (nothing copied), or a copy across volumes."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
