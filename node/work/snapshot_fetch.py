"""A validator's snapshots from the network: ``NetworkSnapshotSource`` (a ``SnapshotSource``).

The peers that announced a snapshot in the DHT (``node.swarm.snapshot_board``) are asked for it over P2P
(``node.work.snapshot_exchange``); what arrives is verified by size and hash before use and kept in a
bounded local cache (``node.work.snapshot_store``).

    source = NetworkSnapshotSource(dht, run_id, Path("validator/snapshots"))
    checker = ReceiptChecker(cfg, corpus, snapshots=source)
    ...
    source.close()

    .venv/bin/python -m pytest tests/work/test_snapshot_fetch.py -q
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import torch

from node.swarm.snapshot_board import SnapshotBoard, SnapshotBoardConfig
from node.swarm.snapshot_p2p import P2PThread
from node.work.snapshot_exchange import SnapshotFetchConfig, SnapshotFetcher, SnapshotFetchReport
from node.work.snapshot_source import SnapshotSource
from node.work.snapshot_store import SnapshotLimits, SnapshotStore, load_raw, raw_size
from node.work.snapshots import load_snapshot

log = logging.getLogger(__name__)


class NetworkSnapshotSource(SnapshotSource):
    """Fetches snapshots from the peers that announced them; keeps what it verified in ``cache_dir``.

    Holders are looked up in the DHT (again every ``lookup_every_s`` while none has served) and asked in
    turn; the first whose bytes have the model's size and hash to the wanted id serves. It gives up at
    ``deadline_s``, or at ``unannounced_s`` when no peer has announced the snapshot at all. ``reports`` keeps
    every fetch's outcome (who served, who was refused and why).
    """

    def __init__(self, dht: Any, run_id: str, cache_dir: Path, cfg: SnapshotFetchConfig = SnapshotFetchConfig(),
                 cache_limits: SnapshotLimits = SnapshotLimits(keep_epochs=16),
                 board_cfg: SnapshotBoardConfig = SnapshotBoardConfig()) -> None:
        self.cfg = cfg
        self.board = SnapshotBoard(dht, run_id, board_cfg)
        self.cache = SnapshotStore(cache_dir, cache_limits)
        self.link = P2PThread(dht, name="hivenet-snapshot-fetch")
        self.fetcher = SnapshotFetcher(self.link.start(), cfg)
        self.reports: list[SnapshotFetchReport] = []
        self._prefetch_failed: set[bytes] = set()
        self._wait = threading.Event()  # never set: a bounded pause between lookups that close() can cut short

    def load(self, model: torch.nn.Module, digest: bytes, epoch: int) -> str | None:
        if load_snapshot(model, self.cache.directory, digest):
            return None
        report = SnapshotFetchReport(digest)
        self.reports.append(report)
        started = time.monotonic()
        raw = self._fetch(digest, raw_size(model), report)
        report.elapsed_s = time.monotonic() - started
        if raw is None:
            reason = report.reason()
            log.warning("%s", reason)
            return reason
        load_raw(model, raw)  # the size was checked against this model before the bytes were read
        self.cache.put(model, epoch)
        log.info("snapshot %s fetched from %s", digest.hex()[:16], report.served_by)
        return None

    def prefetch(self, model: torch.nn.Module, wanted: list[tuple[bytes, int]]) -> int:
        """Fetches into the cache the snapshots (params hash, epoch) that are not there yet, using ``model`` as
        scratch space; returns how many it fetched. A validator calls it as soon as receipts name a snapshot,
        while the trainers that hold it are still up; one that failed here is not tried again here (the check
        itself asks once more)."""
        fetched = 0
        for digest, epoch in dict(wanted).items():
            if digest in self._prefetch_failed or self.cache.has(digest):
                continue
            if self.load(model, digest, epoch) is None:
                fetched += 1
            else:
                self._prefetch_failed.add(digest)
        return fetched

    def _fetch(self, digest: bytes, size: int, report: SnapshotFetchReport) -> bytes | None:
        started = time.monotonic()
        deadline = started + self.cfg.deadline_s
        announced = False
        while not self._wait.is_set():
            now = time.monotonic()
            if now >= deadline or (not announced and now - started >= self.cfg.unannounced_s):
                return None
            report.lookups += 1
            holders = self.board.holders(digest, timeout=min(deadline - now, self.board.cfg.timeout))
            announced = announced or bool(holders)
            fresh = [h for h in holders if h.to_base58() not in report.tried()]
            if fresh:
                left = deadline - time.monotonic()
                try:
                    raw = self.link.run(self.fetcher.fetch(digest, size, fresh, report, deadline), timeout=max(left, 0) + 5)
                except TimeoutError:
                    return None
                if raw is not None:
                    return raw
            self._wait.wait(min(self.cfg.lookup_every_s, max(deadline - time.monotonic(), 0)))
        return None

    def close(self) -> None:
        self._wait.set()
        self.link.close()
