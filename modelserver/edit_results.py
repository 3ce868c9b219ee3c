"""Edited crops kept for a while, by what they were computed from.

An Edit crop's result depends only on its image, instruction, seed, EditParams and its call's
anchor crop (backends.base.Editor). When an orchestrator dies mid-job, the batch the model server
was computing for it still completes, and the job's next attempt (resumed from its checkpoint)
sends the same crops again; kept here, they come back without being denoised twice. Bounded by
bytes, least recently used out; the key is a SHA-256 of everything the result depends on, so a
hit is the very result the editor would compute again.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import numpy as np

from videoedit.v1.contract import EditParams


def item_key(image: np.ndarray, instruction: str, seed: int, params: EditParams, anchor: bytes = b"") -> bytes:
    """What one crop's result depends on, as a digest (`anchor`: its call's anchor's item_key)."""
    digest = hashlib.sha256()
    digest.update(repr((image.shape, str(image.dtype), instruction, int(seed), params)).encode())
    digest.update(np.ascontiguousarray(image).data)
    digest.update(anchor)
    return digest.digest()


class EditResults:
    """Edited crops by item_key, at most `max_bytes` of them (0: none kept)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._held: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # the RPC threads look up, the batch worker puts

    def get(self, key: bytes) -> np.ndarray | None:
        with self._lock:
            found = self._held.get(key)
            if found is not None:
                self._held.move_to_end(key)
            return found

    def put(self, key: bytes, edited: np.ndarray) -> None:
        if edited.nbytes > self.max_bytes:
            return
        edited = edited.copy()
        edited.flags.writeable = False  # handed out again: nobody may change it
        with self._lock:
            if key in self._held:
                return
            self._held[key] = edited
            self._bytes += edited.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._held.popitem(last=False)
                self._bytes -= dropped.nbytes
