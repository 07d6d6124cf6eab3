"""Who holds which epoch-start snapshot: one signed, expiring DHT record per holder.

Key ``{run_id}_snapshot_holders``; one subkey per holder, owned by it (``node.swarm.dht.owned_subkey``:
nobody can rewrite or remove another holder's record). The value lists the params hashes the holder
serves, newest first (at most ``MAX_HELD``); a holder re-announces after each snapshot it stores, so a
pruned snapshot leaves the list. Values from the DHT are untrusted and parsed strictly; a record can at
worst point at a peer that serves wrong bytes, which the fetcher refuses by hash.

    board = SnapshotBoard(dht, run_id)
    board.announce(store.digests())          # a trainer, from the thread that uses its DHT; does not wait
    board.holders(digest, timeout=10.0)      # a validator: peers that announced ``digest``
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.swarm.dht import DHT, SigningKey, dht_time, owned_subkey
from node.swarm.streams import PeerID, peer_from_base58

log = logging.getLogger(__name__)

MAX_HELD = 64  # hashes one record lists (2 KB of DHT value): far more epochs than validators lag behind


@dataclass(frozen=True)
class SnapshotBoardConfig:
    # Seconds a holder's record lives; each new snapshot renews it, so it outlives a holder that is gone by
    # at most this (fetchers then find that holder dead and try the next).
    ttl: float = 3600.0
    timeout: float = 10.0  # seconds a lookup waits for the DHT


class HolderRecord(BaseModel):
    """The value of one holder's subkey."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    peer: str = Field(min_length=20, max_length=128, pattern=r"^[1-9A-HJ-NP-Za-km-z]+$")  # base58 libp2p peer id
    held: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(max_length=MAX_HELD)  # msgpack gives lists

    def holds(self, digest: bytes) -> bool:
        return digest.hex() in self.held


def holders_key(run_id: str) -> str:
    return f"{run_id}_snapshot_holders"


class SnapshotBoard:
    """Announce the snapshots this peer serves, and find who serves one, through one DHT."""

    def __init__(self, dht: DHT, run_id: str, cfg: SnapshotBoardConfig = SnapshotBoardConfig(),
                 private_key: SigningKey | None = None) -> None:
        # A DHT keeps the first signature validator it is given: the key defaults to the process-wide one
        # (the optimizer's and the receipt board's); tests running several DHTs in one process pass one each.
        # The signature validator goes in for readers too: a node reads owned records through it.
        self.dht, self.run_id, self.cfg = dht, run_id, cfg
        self._subkey = owned_subkey(dht, private_key)
        self._pending: Any = None  # the last announcement's future, checked at the next one

    def announce(self, held: Sequence[bytes]) -> None:
        """Stores this peer's record listing ``held`` (newest first); returns at once, without waiting for the
        DHT (a hung DHT must not stall training). A refused or failed earlier store is logged here."""
        previous = self._pending
        if previous is not None and previous.done():
            try:
                if not previous.result():
                    log.warning("the DHT refused this peer's snapshot announcement; validators may not find it")
            except OSError as e:
                log.warning("snapshot announcement failed: %s", e)
        record = {"peer": self.dht.peer_id.to_base58(), "held": [d.hex() for d in held[:MAX_HELD]]}
        try:
            self._pending = self.dht.store(holders_key(self.run_id), record, dht_time() + self.cfg.ttl,
                                           subkey=self._subkey, return_future=True)
        except OSError as e:  # the pipe to a DHT process that is gone
            log.warning("snapshot announcement not sent: %s", e)
            self._pending = None

    def records(self, timeout: float | None = None) -> list[HolderRecord]:
        """Every well-formed, unexpired holder record (malformed ones are skipped, never trusted)."""
        try:
            future = self.dht.get(holders_key(self.run_id), latest=True, return_future=True)
            found = future.result(timeout=self.cfg.timeout if timeout is None else timeout)
        except OSError as e:  # TimeoutError, or the DHT process is gone
            log.info("snapshot holders not read from the DHT: %s", type(e).__name__)
            return []
        if found is None or not isinstance(found.value, dict):
            return []
        now = dht_time()
        out = []
        for item in found.value.values():
            if item.expiration_time <= now:
                continue
            try:
                out.append(HolderRecord.model_validate(item.value))
            except ValidationError:
                continue
        return out

    def holders(self, digest: bytes, timeout: float | None = None) -> list[PeerID]:
        """Peers whose record lists ``digest`` (this peer excluded), in the DHT's order."""
        out: list[PeerID] = []
        for rec in self.records(timeout):
            if not rec.holds(digest):
                continue
            try:
                peer = peer_from_base58(rec.peer)
            except ValueError:
                continue
            if peer != self.dht.peer_id and peer not in out:
                out.append(peer)
        return out
