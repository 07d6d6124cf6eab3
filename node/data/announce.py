"""Who holds which shard, and which shards a run offers: signed, expiring announcements in the DHT.

Key ``hivenet_shard_holders:<shard_id>``: who holds a shard. Key ``hivenet_run_shards:<run_id>``: the
shards a peer offers for a run (a data contributor's, or a trainer's that fetched them). One subkey per
holder on both, owned by it
(``node.swarm.dht.owned_subkey``: each DHT node refuses a write to that subkey
unless it is signed by the holder's key): nobody can remove or rewrite another
holder's announcement. Values expire after ``ttl``; holders re-announce.
Values from the DHT are untrusted and parsed strictly; an announcement can at
worst point at a peer that serves bad chunks, which the fetcher refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from node.swarm.dht import DHT, SigningKey, dht_time, owned_subkey
from node.swarm.streams import PeerID, peer_from_base58
from protocol.errors import ShardError
from protocol.types import ShardId

KEY_PREFIX = "hivenet_shard_holders:"
RUN_KEY_PREFIX = "hivenet_run_shards:"
MAX_OFFERED = 256  # shards one peer may offer for a run in its record: bounds what a reader parses per peer
MAX_RUN_SHARDS = 1024  # distinct shards a reader takes from a run's records: a flood of fake ids stops here


@dataclass(frozen=True)
class AnnounceConfig:
    ttl: float = 300.0  # seconds an announcement lives: long enough to span DHT churn, short enough to forget dead peers
    timeout: float = 15.0  # seconds to wait for the DHT on a store or get


class HolderRecord(BaseModel):
    """The value of one holder's subkey."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    peer: str = Field(min_length=20, max_length=128, pattern=r"^[1-9A-HJ-NP-Za-km-z]+$")  # base58 libp2p peer id
    n_chunks: int = Field(ge=1, le=1 << 16)


class RunShardsRecord(BaseModel):
    """The value of one peer's subkey under a run: the shard ids it offers (what they hold is checked on fetch)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    peer: str = Field(min_length=20, max_length=128, pattern=r"^[1-9A-HJ-NP-Za-km-z]+$")
    shards: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(min_length=1, max_length=MAX_OFFERED)


def holders_key(shard_id: str) -> str:
    return KEY_PREFIX + shard_id


def run_key(run_id: str) -> str:
    return RUN_KEY_PREFIX + run_id


class ShardAnnouncer:
    """Announce this peer's shards and look up other holders through one DHT."""

    def __init__(self, dht: DHT, cfg: AnnounceConfig = AnnounceConfig(), private_key: SigningKey | None = None) -> None:
        # A DHT keeps the first signature validator it is given and ignores later ones, so create
        # one announcer per DHT. The key defaults to the process-wide one; tests running several
        # DHTs in one process pass a key per DHT.
        self.dht = dht
        self.cfg = cfg
        self.subkey = owned_subkey(dht, private_key)

    async def announce(self, shards: Iterable[tuple[str, int]], ttl: float | None = None) -> list[str]:
        """Store (shard_id, n_chunks) announcements for ``ttl`` seconds; returns the ids the DHT accepted."""
        expiration = dht_time() + (self.cfg.ttl if ttl is None else ttl)
        record = {"peer": self.dht.peer_id.to_base58()}
        ok = []
        for shard_id, n_chunks in shards:
            fut = self.dht.store(
                holders_key(shard_id), {**record, "n_chunks": n_chunks}, expiration, subkey=self.subkey, return_future=True
            )
            if await asyncio.wait_for(fut, self.cfg.timeout):
                ok.append(shard_id)
        return ok

    async def offer(self, run_id: str, shards: Sequence[tuple[str, int]], ttl: float | None = None) -> list[str]:
        """Announce ``shards`` as held (see ``announce``) and as offered for ``run_id``; returns the ids held."""
        if len(shards) > MAX_OFFERED:
            raise ShardError(f"{len(shards)} shards offered for run {run_id}; at most {MAX_OFFERED} per peer")
        held = await self.announce(shards, ttl)
        if held:
            expiration = dht_time() + (self.cfg.ttl if ttl is None else ttl)
            value = {"peer": self.dht.peer_id.to_base58(), "shards": sorted(held)}
            fut = self.dht.store(run_key(run_id), value, expiration, subkey=self.subkey, return_future=True)
            if not await asyncio.wait_for(fut, self.cfg.timeout):
                return []
        return held

    async def run_shards(self, run_id: str) -> list[ShardId]:
        """Ids of the shards offered for ``run_id`` by any peer whose record has not expired, sorted."""
        found = await asyncio.wait_for(self.dht.get(run_key(run_id), latest=True, return_future=True), self.cfg.timeout)
        if found is None or not isinstance(found.value, dict):
            return []
        now = dht_time()
        ids: set[str] = set()
        for item in found.value.values():
            try:
                rec = RunShardsRecord.model_validate(item.value)
            except ValidationError:
                continue  # malformed record: ignore, never crash on DHT contents
            if item.expiration_time > now:
                ids.update(rec.shards)
        return [ShardId(i) for i in sorted(ids)[:MAX_RUN_SHARDS]]

    async def holders(self, shard_id: str) -> list[PeerID]:
        """Peers that announced ``shard_id`` and whose announcement has not expired (this peer excluded)."""
        found = await asyncio.wait_for(self.dht.get(holders_key(shard_id), latest=True, return_future=True), self.cfg.timeout)
        if found is None or not isinstance(found.value, dict):
            return []
        now = dht_time()
        out = []
        for item in found.value.values():
            value, expiration = item.value, item.expiration_time
            try:
                rec = HolderRecord.model_validate(value)
                peer = peer_from_base58(rec.peer)
            except (ValidationError, ValueError):
                continue  # malformed announcement: ignore, never crash on DHT contents
            if expiration > now and peer != self.dht.peer_id and peer not in out:
                out.append(peer)
        return out
