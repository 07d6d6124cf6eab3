"""A bounded, content-addressed store of epoch-start parameters: ``SnapshotStore``.

Files (in one directory): ``<params hash hex>.pt``, the format of ``node.work.snapshots`` that validators
load, and next to each ``<params hash hex>.epoch``, the newest epoch that started from those parameters.
After each ``put`` the store prunes: snapshots whose epoch is ``keep_epochs`` or more behind the current one
go (a validator settles an epoch once receipts of a later one appear, so only the last few are still
asked for), then the oldest go while the total passes ``cap_bytes``. The snapshot just put is never
pruned. Several trainers of one machine may share the directory: identical parameters are stored once,
and a file another store removed is simply gone.

The raw form (``raw_params`` / ``load_raw``) is what travels over the network: every parameter's bytes in
``parameters()`` order, so its SHA-256 *is* the params hash, and a fetcher verifies what arrived by hashing
the bytes, before parsing anything.

    store = SnapshotStore(Path("snapshots"), SnapshotLimits(cap_bytes=64 << 20, keep_epochs=8))
    digest = store.put(model, epoch)
    store.size_bytes()   # what the directory holds now (at most the cap, but for the newest snapshot)

    .venv/bin/python -m pytest tests/work/test_snapshot_store.py -q
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from node.work.snapshots import params_hash, save_snapshot, snapshot_path

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[0-9a-f]{64}$")


class SnapshotKeeper(Protocol):
    """Where a trainer's recorder puts the parameters each epoch starts from (a store, maybe served)."""

    def put(self, model: torch.nn.Module, epoch: int) -> bytes: ...


@dataclass(frozen=True)
class SnapshotLimits:
    # Total bytes the store may hold; 0: no cap. A validator that cannot find a snapshot rejects the
    # receipts that name it, so size the cap for keep_epochs snapshots of the model.
    cap_bytes: int = 0
    # Keep the snapshots of this many latest epochs (validators recompute them until the epoch is settled
    # and, for watchers, until its challenge ends); 0: keep all.
    keep_epochs: int = 0


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    epoch: int
    mtime: float
    size: int  # bytes of the snapshot and its epoch file


def raw_size(model: torch.nn.Module) -> int:
    """Bytes of the raw form of ``model``'s parameters: exactly what a snapshot of it sends."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def load_raw(model: torch.nn.Module, raw: bytes) -> bool:
    """Copies the raw form into ``model``'s parameters; False (model untouched) when the size does not fit."""
    params = list(model.parameters())
    if len(raw) != raw_size(model):
        return False
    buffer = bytearray(raw)  # torch.frombuffer wants a writable buffer
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel() * p.element_size()
            t = torch.frombuffer(buffer, dtype=p.dtype, count=p.numel(), offset=offset).view(p.shape)
            p.copy_(t)
            offset += n
    return True


class SnapshotStore:
    """Content-addressed snapshots in ``directory``, bounded by ``limits`` (see the module docstring)."""

    def __init__(self, directory: Path, limits: SnapshotLimits = SnapshotLimits()) -> None:
        self.directory, self.limits = directory, limits
        self.pruned = 0  # snapshots this store removed

    def path(self, digest: bytes) -> Path:
        return snapshot_path(self.directory, digest)

    def has(self, digest: bytes) -> bool:
        return self.path(digest).exists()

    def put(self, model: torch.nn.Module, epoch: int) -> bytes:
        """Stores ``model``'s parameters as the start of ``epoch`` (once per content), prunes; returns the hash."""
        digest = params_hash(model)
        if not self.has(digest):  # make room first: the folder never holds more than the cap, even mid-write
            self.prune(epoch, protect=digest, reserve=self._largest())
        save_snapshot(model, self.directory, digest)
        self._mark(digest, epoch)
        self.prune(epoch, protect=digest)
        return digest

    def _largest(self) -> int:
        """Bytes of the largest snapshot held: what the next one (same model) will take."""
        return max((e.size for e in self._entries()), default=0)

    def _mark(self, digest: bytes, epoch: int) -> None:
        path = self.path(digest).with_suffix(".epoch")
        if self._epoch_of(digest) >= epoch:
            return
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(f"{epoch}\n")
        os.replace(tmp, path)

    def _epoch_of(self, digest: bytes) -> int:
        try:
            return int(self.path(digest).with_suffix(".epoch").read_text().strip())
        except (FileNotFoundError, ValueError):
            return -1  # unknown: oldest first (a file of an older version of the store, or half-removed)

    def _entries(self) -> list[_Entry]:
        """Every snapshot in the directory, oldest (epoch, then write time) first."""
        out = []
        if not self.directory.is_dir():
            return out
        for path in self.directory.glob("*.pt"):
            if not _NAME.match(path.stem):
                continue
            digest = bytes.fromhex(path.stem)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # removed by another store sharing the directory
            side = path.with_suffix(".epoch")
            size = stat.st_size + (side.stat().st_size if side.exists() else 0)
            out.append(_Entry(digest, self._epoch_of(digest), stat.st_mtime, size))
        return sorted(out, key=lambda e: (e.epoch, e.mtime, e.digest))

    def digests(self) -> list[bytes]:
        """The held snapshots, newest first."""
        return [e.digest for e in reversed(self._entries())]

    def size_bytes(self) -> int:
        """Bytes the store's snapshots (and their epoch files) take on disk now."""
        return sum(e.size for e in self._entries())

    def prune(self, current_epoch: int, protect: bytes = b"", reserve: int = 0) -> list[bytes]:
        """Removes what the limits no longer allow (never ``protect``); returns the removed hashes."""
        keep, cap = self.limits.keep_epochs, self.limits.cap_bytes
        entries = self._entries()
        removed: list[bytes] = []
        if keep > 0:
            for e in entries:
                if e.epoch <= current_epoch - keep and e.digest != protect:
                    self._remove(e.digest)
                    removed.append(e.digest)
        if cap > 0:
            live = [e for e in entries if e.digest not in removed]
            total = sum(e.size for e in live)
            for e in live:
                if total + reserve <= cap:
                    break
                if e.digest == protect:
                    continue
                if keep > 0 and e.epoch > current_epoch - keep:
                    log.warning("snapshot store over its cap (%d > %d bytes): removing the snapshot of epoch %d, within "
                                "the %d epochs validators may still ask for; raise snapshot_cap_mb", total, cap, e.epoch,
                                keep)
                self._remove(e.digest)
                removed.append(e.digest)
                total -= e.size
            if total > cap:
                log.warning("one snapshot (%d bytes) is larger than the store's cap (%d bytes); raise snapshot_cap_mb",
                            total, cap)
        self.pruned += len(removed)
        return removed

    def _remove(self, digest: bytes) -> None:
        path = self.path(digest)
        path.unlink(missing_ok=True)
        path.with_suffix(".epoch").unlink(missing_ok=True)

    def raw_params(self, digest: bytes) -> bytes | None:
        """The raw form of the snapshot ``digest``; None when it is not held or its file does not hash to its name."""
        try:
            tensors = torch.load(self.path(digest), weights_only=True)
        except (FileNotFoundError, RuntimeError, EOFError, OSError) as e:
            log.debug("snapshot %s not readable: %s", digest.hex()[:16], e)
            return None
        if not isinstance(tensors, list) or not all(isinstance(t, torch.Tensor) for t in tensors):
            return None
        raw = b"".join(t.detach().cpu().contiguous().numpy().tobytes() for t in tensors)
        if hashlib.sha256(raw).digest() != digest:
            log.warning("snapshot file %s does not hash to its name; not serving it", self.path(digest))
            return None
        return raw
