"""A trainer's snapshots, served: ``ServedSnapshots`` stores each epoch-start snapshot in a bounded
``SnapshotStore``, serves the store over P2P (``node.work.snapshot_exchange``) and announces what it holds
in the DHT (``node.swarm.snapshot_board``), so that validators on other machines can fetch them.

    snapshots = serve_snapshots(dht, run_id, SnapshotStore(dir, SnapshotLimits(cap_bytes=..., keep_epochs=8)))
    digest = snapshots.put(model, epoch)      # the recorder, at each epoch start (main thread)
    snapshots.close()                          # also run at interpreter exit

``put`` sends the announcement from the calling thread (the one that uses the DHT) and does not wait
for it; serving runs in a thread of its own (``node.swarm.snapshot_p2p.P2PThread``).
"""

from __future__ import annotations

import atexit
import logging
from typing import Any

import torch

from node.swarm.snapshot_board import SnapshotBoard
from node.swarm.snapshot_p2p import P2PThread
from node.work.snapshot_exchange import SnapshotServer
from node.work.snapshot_store import SnapshotStore

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0  # connecting to the local p2p daemon takes milliseconds; far longer means it is gone


class ServedSnapshots:
    def __init__(self, store: SnapshotStore, board: SnapshotBoard, link: P2PThread, server: SnapshotServer) -> None:
        self.store, self.board, self.link, self.server = store, board, link, server
        self._closed = False

    def put(self, model: torch.nn.Module, epoch: int) -> bytes:
        """Stores the epoch's starting parameters, prunes, and announces what the store now holds."""
        digest = self.store.put(model, epoch)
        self.board.announce(self.store.digests())
        return digest

    def size_bytes(self) -> int:
        return self.store.size_bytes()

    def close(self, timeout: float = 1.0) -> None:
        """Stops serving (open transfers end; their fetchers ask another holder) and the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            self.link.run(self.server.stop(timeout), timeout + 1)
        except Exception as e:  # noqa: BLE001 - the daemon went first (the DHT stopped): nothing is left to stop
            log.debug("snapshot server stop: %r", e)
        self.link.close(timeout)


def serve_snapshots(dht: Any, run_id: str, store: SnapshotStore, board: SnapshotBoard | None = None) -> ServedSnapshots:
    """Starts serving ``store`` through ``dht``'s p2p daemon and returns the keeper the recorder puts into.
    Call it from the thread that uses ``dht`` (see the module docstring)."""
    link = P2PThread(dht, name="hivenet-snapshot-serve")
    p2p = link.start(START_TIMEOUT_S)
    server = SnapshotServer(store)
    link.run(server.start(p2p), START_TIMEOUT_S)
    served = ServedSnapshots(store, board or SnapshotBoard(dht, run_id), link, server)
    if store.digests():  # a restarted trainer serves what it kept
        served.board.announce(store.digests())
    atexit.register(served.close)
    log.info("serving epoch-start snapshots from %s", store.directory)
    return served
