"""Where a validator gets the epoch-start parameters a receipt names: ``SnapshotSource``.

    LocalSnapshotSource(dir)    a folder (``--snapshot-dir``): the single-machine default
    NetworkSnapshotSource(...)  the peers that announced the snapshot in the DHT, over P2P, verified by
                                hash, kept in a bounded local cache (``node.work.snapshot_fetch``)

``load(model, digest, epoch)`` fills ``model`` with the snapshot and returns None, or returns why it could
not (failures are data: a receipt whose snapshot nobody serves earns nothing for its epoch, and the
validator records this reason). This module loads no hivemind; the network source lives in
``node.work.snapshot_fetch``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch

from node.work.snapshots import load_snapshot


class SnapshotSource(ABC):
    @abstractmethod
    def load(self, model: torch.nn.Module, digest: bytes, epoch: int) -> str | None:
        """Loads the snapshot ``digest`` (named by a receipt of ``epoch``) into ``model``: None when done and
        verified, else the reason it could not."""

    def close(self) -> None:
        """Releases what the source holds (connections, threads)."""


class LocalSnapshotSource(SnapshotSource):
    """Snapshots in a folder, checked against their name on load (``node.work.snapshots``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self, model: torch.nn.Module, digest: bytes, epoch: int) -> str | None:
        if load_snapshot(model, self.directory, digest):
            return None
        return f"snapshot {digest.hex()[:16]} not in {self.directory} (or not hashing to its name)"
