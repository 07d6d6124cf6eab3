"""Shard exchange between real local peers (hivemind DHT + p2pd): verified chunks, faulty holders, resume."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hivemind import DHT
from hivemind.utils.crypto import RSAPrivateKey

from node.data.announce import ShardAnnouncer
from node.data.exchange import ExchangeConfig, ShardFetcher, ShardServer
from node.data.store import ShardStore, StoreConfig
from protocol.errors import ShardUnavailable
from protocol.shards import RecordSchema
from tests.waiting import wait_until, wait_until_async

pytestmark = [pytest.mark.swarm]

WAIT = 60  # seconds: hard ceiling on every network wait below


@contextmanager
def dht_swarm(n: int) -> Iterator[list[DHT]]:
    dhts: list[DHT] = []
    try:
        first = DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], await_ready=True)
        dhts.append(first)
        peers = first.get_visible_maddrs()
        for _ in range(n - 1):
            dhts.append(DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], initial_peers=peers, await_ready=True))
        yield dhts
    finally:
        for d in dhts:
            d.shutdown()


@pytest.fixture(scope="module")
def swarm():
    loop = asyncio.new_event_loop()
    with dht_swarm(3) as dhts:
        p2ps = [loop.run_until_complete(asyncio.wait_for(d.replicate_p2p(), WAIT)) for d in dhts]
        announcers = [ShardAnnouncer(d, private_key=RSAPrivateKey()) for d in dhts]  # one per DHT
        try:
            yield loop, dhts, p2ps, announcers
        finally:
            for p in p2ps:
                loop.run_until_complete(asyncio.wait_for(p.shutdown(), WAIT))
            # Let the replicas' cancelled tasks finish before the loop closes (a straggler only costs a warning).
            loop.run_until_complete(wait_until_async(lambda: asyncio.all_tasks() == {asyncio.current_task()}, 5))
    loop.close()


def _records(seed: int, n: int = 120) -> list[bytes]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(rng.randint(20, 120))).encode() for _ in range(n)]


def _stores(tmp_path: Path, k: int) -> list[ShardStore]:
    return [ShardStore(StoreConfig(tmp_path / f"peer{i}", chunk_size=4096)) for i in range(k)]


def _run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, WAIT))


class Serving:
    """Start servers on peers for the duration of a test, and always stop them."""

    def __init__(self, loop, pairs):
        self.loop, self.pairs = loop, pairs

    def __enter__(self):
        for server, p2p in self.pairs:
            _run(self.loop, server.start(p2p))
        return self

    def __exit__(self, *exc):
        for server, _ in self.pairs:
            _run(self.loop, server.stop())


def test_tampered_chunk_is_refused_and_fetched_from_an_honest_holder(swarm, tmp_path):
    loop, dhts, p2ps, announcers = swarm
    bad, good, trainer = _stores(tmp_path, 3)
    records = _records(1)
    m = bad.add_records(records, schema=RecordSchema(kind="text"), license="MIT")
    good.add_records(records, schema=RecordSchema(kind="text"), license="MIT")
    path = bad.shard_dir(m.shard_id) / "chunks" / "000004"  # in the bad holder's first batch (stripe 0, 2, 4)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))

    for a in announcers[:2]:
        assert _run(loop, a.announce([(m.shard_id, m.n_chunks)])) == [m.shard_id]
    holders = _run(loop, announcers[2].holders(m.shard_id))
    assert set(holders) == {dhts[0].peer_id, dhts[1].peer_id}
    holders = [dhts[0].peer_id, dhts[1].peer_id]  # the tampering holder first, so it is asked

    with Serving(loop, [(ShardServer(bad), p2ps[0]), (ShardServer(good), p2ps[1])]):
        manifest, report = _run(loop, ShardFetcher(p2ps[2], trainer, ExchangeConfig(batch=3)).fetch(m.id, holders))
    assert report.faulty == {dhts[0].peer_id.to_base58()}
    assert report.fetched[dhts[1].peer_id.to_base58()] >= 1
    assert sum(report.fetched.values()) == m.n_chunks
    assert trainer.verify(m.shard_id).ok
    assert list(trainer.iter_records(m.shard_id)) == records  # the trainer never sees the bad bytes
    assert trainer.read_chunk(m.shard_id, 4) == good.read_chunk(m.shard_id, 4) != bytes(data)


class DroppingServer(ShardServer):
    """A holder whose connection drops after serving ``limit`` chunks."""

    def __init__(self, store, limit):
        super().__init__(store)
        self.limit = limit

    def chunk_bytes(self, shard_id, index):
        if self.served_chunks >= self.limit:
            raise ConnectionResetError("peer went away")
        return super().chunk_bytes(shard_id, index)


def test_interrupted_transfer_resumes_without_refetching(swarm, tmp_path):
    loop, dhts, p2ps, announcers = swarm
    a, b, trainer = _stores(tmp_path, 3)
    records = _records(2)
    m = a.add_records(records, schema=RecordSchema(kind="text"), license="MIT")
    b.add_records(records, schema=RecordSchema(kind="text"), license="MIT")
    fetcher = ShardFetcher(p2ps[2], trainer, ExchangeConfig(batch=3))
    with Serving(loop, [(DroppingServer(a, limit=5), p2ps[0])]):
        with pytest.raises(ShardUnavailable, match=f"{m.n_chunks - 5} of {m.n_chunks} chunks could not be fetched"):
            _run(loop, fetcher.fetch(m.id, [dhts[0].peer_id]))
    assert not trainer.has(m.shard_id)  # nothing partial in the store proper
    with Serving(loop, [(ShardServer(b), p2ps[1])]):
        _, report = _run(loop, fetcher.fetch(m.id, [dhts[1].peer_id]))
    assert report.resumed == 5
    assert report.fetched == {dhts[1].peer_id.to_base58(): m.n_chunks - 5}
    assert list(trainer.iter_records(m.shard_id)) == records


def test_only_dishonest_holders_means_no_shard_and_no_bad_bytes(swarm, tmp_path):
    loop, dhts, p2ps, announcers = swarm
    bad, trainer = _stores(tmp_path, 2)
    m = bad.add_records(_records(3), schema=RecordSchema(kind="text"), license="MIT")
    for i in range(m.n_chunks):
        path = bad.shard_dir(m.shard_id) / "chunks" / f"{i:06d}"
        path.write_bytes(path.read_bytes()[::-1])
    with Serving(loop, [(ShardServer(bad), p2ps[0])]):
        with pytest.raises(ShardUnavailable, match="faulty"):
            _run(loop, ShardFetcher(p2ps[2], trainer).fetch(m.id, [dhts[0].peer_id]))
    assert not trainer.has(m.shard_id)
    assert list((trainer.root / "partial" / m.shard_id / "chunks").iterdir()) == []


def test_unknown_shard_and_expired_announcements(swarm, tmp_path):
    loop, dhts, p2ps, announcers = swarm
    (store,) = _stores(tmp_path, 1)
    with pytest.raises(ShardUnavailable, match="no holder sent a valid manifest"):
        _run(loop, ShardFetcher(p2ps[2], store).fetch("ab" * 32, [dhts[0].peer_id]))
    short, reader = announcers[0], announcers[1]
    assert _run(loop, short.announce([("cd" * 32, 3)], ttl=1.0)) == ["cd" * 32]
    assert _run(loop, reader.holders("cd" * 32)) == [dhts[0].peer_id]
    assert wait_until(lambda: _run(loop, reader.holders("cd" * 32)) == [], 10), "the announcement never expired"


def test_nobody_can_write_another_holders_announcement(swarm):
    loop, dhts, p2ps, announcers = swarm
    from hivemind.utils import get_dht_time

    from node.data.announce import holders_key

    sid = "ef" * 32
    assert _run(loop, announcers[0].announce([(sid, 2)])) == [sid]
    forged = {"peer": dhts[2].peer_id.to_base58(), "n_chunks": 2}

    async def forge() -> bool:
        # Peer 2 writes under peer 0's subkey (its public key): unsigned by that key, so DHT nodes refuse it.
        # The store's MPFuture binds to the event loop current where it is made: make it inside ``loop``, since
        # outside one it falls back to the thread's default loop, which an earlier asyncio.run() leaves unset.
        return await dhts[2].store(holders_key(sid), forged, get_dht_time() + 60, subkey=announcers[0].subkey, return_future=True)

    try:  # hivemind keeps looking for a node that accepts a refused record: bound the wait
        accepted = loop.run_until_complete(asyncio.wait_for(forge(), 3))
    except asyncio.TimeoutError:
        accepted = False
    assert accepted is False
    assert _run(loop, announcers[1].holders(sid)) == [dhts[0].peer_id]  # the real holder, not the forger
