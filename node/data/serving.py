"""A peer that serves its shards for a run: its own DHT node, a chunk server, and announcements kept fresh.

    service = ShardService(store, ServiceConfig(run_id="demo", initial_peers=("/ip4/.../p2p/Qm...",)))
    service.start()                                   # DHT joined, chunks served; raises BootstrapError
    service.offer([(shard_id, n_chunks), ...])        # announced now, and again every ttl/3 until stop()
    summary = service.call(lambda: some_coroutine(service), timeout=600)
    service.stop()                                    # announcements stop (they expire), streams end

`hivenet shard serve` runs one for a data contributor; a trainer started with ``--fetch-shards`` runs one
to fetch the run's shards and then serves what it fetched, so a contributor that goes offline after its
shard was replicated does not take the shard with it.

The service's asyncio loop runs in a thread of its own, with its own DHT process: the caller's thread
(a trainer's main thread, a CLI waiting for SIGTERM) never blocks on the network except in ``call``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from node.data.announce import MAX_OFFERED, AnnounceConfig, ShardAnnouncer
from node.data.exchange import ExchangeConfig, ShardServer
from node.data.store import ShardStore
from node.swarm.config import SwarmConfig
from node.swarm.dht import DHT, SigningKey, start_dht, visible_maddrs
from node.swarm.streams import P2P, StreamError
from protocol.errors import ShardError

log = logging.getLogger(__name__)

T = TypeVar("T")

STOP_TIMEOUT_S = 10.0  # stopping: streams end and the DHT process exits within this


@dataclass(frozen=True)
class ServiceConfig:
    run_id: str  # the run whose shards are offered (DHT key ``hivenet_run_shards:<run_id>``)
    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)  # multiaddrs of this service's own p2p daemon
    initial_peers: tuple[str, ...] = ()  # any peer of the run's DHT (a trainer, a contributor); empty: a new DHT
    announce: AnnounceConfig = field(default_factory=AnnounceConfig)
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    extra_dht_options: dict[str, object] = field(default_factory=dict)  # passed to hivemind.DHT verbatim (tests)


def own_port(listen: Sequence[str]) -> tuple[str, ...]:
    """``listen`` with every TCP/UDP port made 0: a second daemon in a process beside a peer's must not take its port."""
    return tuple(re.sub(r"/(tcp|udp)/\d+", r"/\1/0", a) for a in listen)


class ShardService:
    def __init__(
        self, store: ShardStore, cfg: ServiceConfig, server: ShardServer | None = None, signing_key: SigningKey | None = None
    ) -> None:
        # ``server`` and ``signing_key`` are seams for tests (a server that corrupts chunks, one key per DHT
        # when several services share a process); a real peer takes the defaults.
        self.store, self.cfg = store, cfg
        self.server = server or ShardServer(store)
        self._signing_key = signing_key
        self.dht: DHT | None = None
        self.p2p: P2P | None = None
        self.announcer: ShardAnnouncer | None = None
        self.offered: dict[str, int] = {}  # shard id -> chunks, announced every ttl/3 while the service runs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._refresh: asyncio.Task[None] | None = None

    @property
    def peer_id(self) -> str:
        assert self.dht is not None, "start() first"
        return self.dht.peer_id.to_base58()

    @property
    def maddrs(self) -> list[str]:
        """Addresses other peers can give as --initial-peers."""
        assert self.dht is not None, "start() first"
        return visible_maddrs(self.dht)

    @property
    def served_chunks(self) -> int:
        return self.server.served_chunks

    def start(self) -> None:
        """Join the DHT and serve chunks; raises BootstrapError (with the fix) when the DHT cannot start."""
        swarm = SwarmConfig(run_id=self.cfg.run_id, listen=self.cfg.listen, initial_peers=self.cfg.initial_peers,
                            extra_dht_options=self.cfg.extra_dht_options)
        self.dht = start_dht(swarm)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hivenet-shards", daemon=True)
        self._thread.start()
        try:
            self.call(self._open, timeout=STOP_TIMEOUT_S * 6)
        except BaseException:
            self.stop()
            raise

    async def _open(self) -> None:
        assert self.dht is not None
        self.announcer = ShardAnnouncer(self.dht, self.cfg.announce, self._signing_key)
        self.p2p = await self.dht.replicate_p2p()
        await self.server.start(self.p2p)
        self._refresh = asyncio.get_running_loop().create_task(self._refresh_forever())

    def call(self, make: Callable[[], Awaitable[T]], timeout: float) -> T:
        """Run the coroutine ``make()`` on the service's loop and wait for its result (at most ``timeout`` s)."""
        assert self._loop is not None, "start() first"

        async def bounded() -> T:
            return await asyncio.wait_for(make(), timeout)

        fut: Future[T] = asyncio.run_coroutine_threadsafe(bounded(), self._loop)
        return fut.result(timeout + 5)

    def offer(self, shards: Sequence[tuple[str, int]]) -> list[str]:
        """Announce ``shards`` (id, chunks) for the run now and keep announcing them; returns the ids the DHT took."""
        offered = {**self.offered, **dict(shards)}
        if len(offered) > MAX_OFFERED:
            raise ShardError(f"{len(offered)} shards offered for run {self.cfg.run_id}; at most {MAX_OFFERED} per peer")
        self.offered = offered  # replaced, never mutated: the loop thread reads it
        return self.call(self._announce, timeout=self.cfg.announce.timeout * 3)

    async def _announce(self) -> list[str]:
        assert self.announcer is not None
        return await self.announcer.offer(self.cfg.run_id, sorted(self.offered.items()))

    async def _refresh_forever(self) -> None:
        # Announcements expire after ttl; refreshing at a third of it survives two lost refreshes.
        while True:
            await asyncio.sleep(self.cfg.announce.ttl / 3)
            if self.offered:
                try:
                    await self._announce()
                except (OSError, asyncio.TimeoutError, StreamError) as e:
                    log.warning("could not refresh the shard announcements (next try in %.0f s): %s",
                                self.cfg.announce.ttl / 3, e)

    def stop(self) -> None:
        """Stop announcing and serving, leave the DHT. Announcements already stored expire after their ttl."""
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(STOP_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - stopping goes on: the thread and the DHT process must end
                log.warning("the shard service did not close cleanly: %r", e)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT_S)
        if loop is not None and not loop.is_running():
            loop.close()
        self._loop = self._thread = None
        if self.dht is not None:
            self.dht.shutdown()
            self.dht = None

    async def _close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)
        await self.server.stop()
        if self.p2p is not None:
            await self.p2p.shutdown()
            self.p2p = None
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=STOP_TIMEOUT_S / 2)

    def status(self) -> dict[str, Any]:
        """What the service offers and has served: for the status line and ``--json``."""
        return {"run_id": self.cfg.run_id, "peer_id": self.peer_id if self.dht else None,
                "shards": sorted(self.offered), "served_chunks": self.served_chunks,
                "served_peers": len(self.server.served_peers)}
