"""Checkpoints: what a video job has made durable, so that a job claimed again carries on.

An orchestrator that dies, or hands its jobs back at SIGTERM, leaves the job's scratch directory
on the shared volume: masks spooled at one bit per pixel, edited crops spooled. The next attempt
adopts that directory (jobs.runner) and resumes from its manifest, `checkpoint.json`:

- `fingerprint`: the request, the input's content (SHA-256), the orchestrator's code and the
  models' identity. A manifest with any other fingerprint is ignored: its masks and edits belong
  to another job, input, code or model.
- `tracking`: how far tracking got (frames [0, received) tracked, [0, written) final in the mask
  store) and what carrying on needs: the frames the track assembler holds back for gap filling,
  the objects on the last `chunk_overlap` frames (a new tracking session is matched to them, as
  after a lost session), the id stitcher's next id, last masks and scores. Their masks go to a numbered
  `tracking-N.npz` beside it (its SHA-256 in the manifest).
- `editing`: frames [0, final) have their edits spooled (or none); the cross-frame anchor crop.

Every write is atomic (a temporary file, fsync, rename), after the spools it vouches for are
synced; a torn or unreadable manifest is ignored like a foreign one. Starting over is always
correct; resuming only saves model time.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..request import CheckedRequest
from ..vision.stitching import AssemblyState, Keep, Objects
from .concurrency import SharedRecord

MANIFEST = "checkpoint.json"
FORMAT = 3
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """What a checkpoint is valid for: resuming under any other would mix two jobs' work."""

    request: str  # SHA-256 of the request and its options
    input_sha256: str  # of the input file's content
    code: str  # SHA-256 of the orchestrator's source
    models: str  # the model server's identity (weights, revisions), models.ModelsInfo.identity

    @classmethod
    def of(cls, job: CheckedRequest, models: str) -> Fingerprint:
        request = json.dumps([job.request.to_dict(), repr(job.options)], sort_keys=True, default=str)
        return cls(_sha256(request.encode()), file_sha256(job.request.input_video_path), code_version(), models)


@dataclass
class TrackingCheckpoint:
    """Propagating's state after a chunk: enough to carry on tracking at frame `received`."""

    received: int  # frames [0, received) are tracked
    restarts: int  # tracking sessions restarted so far (the job's budget carries over)
    keep: Keep  # each target's ids to edit (None: all its objects)
    next_id: int  # the id stitcher's
    last_masks: Objects  # the id stitcher's: each object's last mask
    assembly: AssemblyState  # frames [0, assembly.written) are final in the mask store
    tail: list[Objects]  # objects on the last chunk_overlap frames before `received`
    scores: dict[int, float] = field(default_factory=dict)  # the id stitcher's: each object's best score
    prompts: dict[int, str] = field(default_factory=dict)  # the id stitcher's: the prompt that found each object


@dataclass
class EditingCheckpoint:
    final: int  # frames [0, final) have their edits spooled, or have none
    anchor: np.ndarray | None = None  # the cross-frame consistency anchor crop, once there is one


@dataclass
class Resume:
    """What an earlier attempt of the job left to carry on from."""

    tracking: TrackingCheckpoint
    editing: EditingCheckpoint | None


class Checkpoints:
    """The job's checkpoint manifest in its scratch directory: read once when the job starts
    (`load`), rewritten as the stages make their work durable (from their own threads)."""

    def __init__(self, workdir: Path, fingerprint: Fingerprint, log: logging.Logger) -> None:
        self.workdir, self.fingerprint, self.log = workdir, fingerprint, log
        self._record = SharedRecord()  # tracking and editing both write the manifest
        self._manifest: dict[str, Any] = {"format": FORMAT, "fingerprint": asdict(fingerprint)}
        self._sequence = 0

    def load(self, height: int, width: int) -> Resume | None:
        """The earlier attempt's checkpoint; None (said why in the log) when there is none to trust."""
        path = self.workdir / MANIFEST
        if not path.exists():
            return None
        try:
            manifest = json.loads(path.read_text())
            why = self._refusal(manifest)
            if why is None:
                resume = self._read(manifest, height, width)
                self._manifest, self._sequence = manifest, manifest["tracking"]["sequence"]
                return resume
        except (OSError, ValueError, KeyError, TypeError) as err:
            why = f"it cannot be read ({type(err).__name__}: {err})"
        self.log.warning("resume: the checkpoint of an earlier attempt is ignored, %s; starting over", why)
        return None

    def save_tracking(self, checkpoint: TrackingCheckpoint) -> None:
        """Record propagating's state (the mask store synced first by the caller)."""
        objects: dict[str, np.ndarray] = {}
        held = [[index, _add(objects, f"held.{k}", frame)] for k, (index, frame) in enumerate(checkpoint.assembly.held)]
        tail = [_add(objects, f"tail.{k}", frame) for k, frame in enumerate(checkpoint.tail)]
        last = _add(objects, "last", checkpoint.last_masks)
        with self._record.writing():
            self._sequence += 1
            name = f"tracking-{self._sequence}.npz"
            buffer = io.BytesIO()
            np.savez(buffer, **objects)
            data = buffer.getvalue()
            _write_atomically(self.workdir / name, data)
            self._manifest["tracking"] = {
                "sequence": self._sequence,
                "received": checkpoint.received,
                "restarts": checkpoint.restarts,
                "keep": [None if kept is None else sorted(kept) for kept in checkpoint.keep],
                "next_id": checkpoint.next_id,
                "written": checkpoint.assembly.written,
                "filled": checkpoint.assembly.filled,
                "last_seen": {str(g): i for g, i in checkpoint.assembly.last_seen.items()},
                "held": held,
                "tail": tail,
                "last": last,
                "scores": {str(g): score for g, score in checkpoint.scores.items()},
                "prompts": {str(g): prompt for g, prompt in checkpoint.prompts.items()},
                "masks": name,
                "masks_sha256": _sha256(data),
            }
            self._write_manifest()
            for old in self.workdir.glob("tracking-*.npz"):
                if old.name != name:
                    old.unlink(missing_ok=True)

    def save_editing(self, checkpoint: EditingCheckpoint) -> None:
        """Record how far editing is final (the crop spool synced first by the caller)."""
        with self._record.writing():
            if "tracking" not in self._manifest:
                return  # nothing to resume editing with before tracking has a checkpoint
            editing = self._manifest.setdefault("editing", {"anchor": None})
            if checkpoint.anchor is not None and editing["anchor"] is None:
                buffer = io.BytesIO()
                np.save(buffer, checkpoint.anchor)
                _write_atomically(self.workdir / "anchor.npy", buffer.getvalue())
                editing["anchor"] = _sha256(buffer.getvalue())
            editing["final"] = checkpoint.final
            self._write_manifest()

    def clear(self) -> None:
        """Forget every checkpoint (the job starts over in this directory)."""
        with self._record.writing():
            (self.workdir / MANIFEST).unlink(missing_ok=True)
            self._manifest = {"format": FORMAT, "fingerprint": asdict(self.fingerprint)}

    def _refusal(self, manifest: dict[str, Any]) -> str | None:
        if manifest.get("format") != FORMAT:
            return f"its format is {manifest.get('format')!r}, not {FORMAT}"
        theirs = manifest.get("fingerprint", {})
        for name, ours in asdict(self.fingerprint).items():
            if theirs.get(name) != ours:
                return {
                    "request": "it was made for another request",
                    "input_sha256": "the input's content changed",
                    "code": "it was made by another version of the orchestrator",
                    "models": "it was made with other models",
                }[name]
        if "tracking" not in manifest:
            return "tracking had not reached its first checkpoint"
        return None

    def _read(self, manifest: dict[str, Any], height: int, width: int) -> Resume:
        state = manifest["tracking"]
        data = (self.workdir / state["masks"]).read_bytes()
        if _sha256(data) != state["masks_sha256"]:
            raise ValueError(f"{state['masks']} is not the file the manifest names")
        with np.load(io.BytesIO(data)) as arrays:

            def frame(prefix: str, ids: list[int]) -> Objects:
                return {g: _unpack(arrays[f"{prefix}.{g}"], height, width) for g in ids}

            tracking = TrackingCheckpoint(
                received=state["received"],
                restarts=state["restarts"],
                keep=tuple(None if kept is None else frozenset(kept) for kept in state["keep"]),
                next_id=state["next_id"],
                last_masks=frame("last", state["last"]),
                assembly=AssemblyState(
                    written=state["written"],
                    filled=state["filled"],
                    held=[(index, frame(f"held.{k}", ids)) for k, (index, ids) in enumerate(state["held"])],
                    last_seen={int(g): i for g, i in state["last_seen"].items()},
                ),
                tail=[frame(f"tail.{k}", ids) for k, ids in enumerate(state["tail"])],
                scores={int(g): score for g, score in state["scores"].items()},
                prompts={int(g): prompt for g, prompt in state["prompts"].items()},
            )
        return Resume(tracking, self._read_editing(manifest.get("editing")))

    def _read_editing(self, editing: dict[str, Any] | None) -> EditingCheckpoint | None:
        if not editing or "final" not in editing:
            return None
        anchor = None
        if editing["anchor"] is not None:
            data = (self.workdir / "anchor.npy").read_bytes()
            if _sha256(data) != editing["anchor"]:
                raise ValueError("anchor.npy is not the file the manifest names")
            anchor = np.load(io.BytesIO(data))
        return EditingCheckpoint(editing["final"], anchor)

    def _write_manifest(self) -> None:
        _write_atomically(self.workdir / MANIFEST, json.dumps(self._manifest).encode())


def _add(arrays: dict[str, np.ndarray], prefix: str, objects: Objects) -> list[int]:
    """Put one frame's object masks into `arrays` (packed); returns their ids."""
    for g, mask in objects.items():
        arrays[f"{prefix}.{g}"] = np.packbits(mask)
    return sorted(objects)


def _unpack(packed: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.unpackbits(packed, count=height * width).reshape(height, width).astype(bool)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The file's content SHA-256, hashed once per version of it (path, size, modification time):
    StartEdit's reuse check and the job's fingerprint ask for the same input."""
    stat = path.stat()
    return _hashed(path, stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _hashed(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def code_version() -> str:
    """SHA-256 of the orchestrator package's source: any change to how a job computes its
    masks and edits makes earlier checkpoints foreign."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()
