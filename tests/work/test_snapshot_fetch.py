"""Snapshots over the network between real local peers (hivemind DHTs + p2pd on loopback, in-process):
found through the DHT, fetched over P2P, verified by hash; wrong bytes, a holder killed mid-transfer and a
snapshot nobody serves."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from hivemind import DHT
from hivemind.utils.crypto import RSAPrivateKey

from node.swarm.snapshot_board import SnapshotBoard
from node.swarm.snapshot_p2p import P2PThread
from node.work.sketch import params_hash
from node.work.snapshot_exchange import SnapshotFetchConfig, SnapshotServer
from node.work.snapshot_fetch import NetworkSnapshotSource
from node.work.snapshot_service import ServedSnapshots, serve_snapshots
from node.work.snapshot_store import SnapshotLimits, SnapshotStore
from tests.waiting import wait_until

pytestmark = [pytest.mark.swarm]

RUN = "snaptest"
WAIT = 60  # seconds: hard ceiling on every network wait below
FAST = SnapshotFetchConfig(deadline_s=30.0, holder_timeout_s=10.0, stall_s=5.0, lookup_every_s=0.2)


def _start(initial: list | None = None) -> DHT:
    return DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], initial_peers=initial or [], await_ready=True)


@pytest.fixture(scope="module")
def swarm() -> Iterator[tuple[list[DHT], list[SnapshotBoard]]]:
    """Two holders and a validator; each holder's board signs with a key of its own (one per DHT)."""
    dhts: list[DHT] = []
    try:
        dhts.append(_start())
        for _ in range(2):
            dhts.append(_start(dhts[0].get_visible_maddrs()))
        boards = [SnapshotBoard(d, RUN, private_key=RSAPrivateKey()) for d in dhts[:2]]
        yield dhts, boards
    finally:
        for d in dhts:
            d.shutdown()


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.Linear(256, 64))  # ~300 KB raw


@contextmanager
def serving(dht: DHT, board: SnapshotBoard, store: SnapshotStore, server: SnapshotServer | None = None,
            ) -> Iterator[ServedSnapshots]:
    """A holder serving ``store`` for the test's duration (its own server class when given)."""
    if server is None:
        served = serve_snapshots(dht, RUN, store, board)
    else:
        link = P2PThread(dht)
        link.run(server.start(link.start()), WAIT)
        served = ServedSnapshots(store, board, link, server)
    try:
        yield served
    finally:
        served.close()


@contextmanager
def network_source(dht: DHT, tmp_path: Path, cfg: SnapshotFetchConfig = FAST) -> Iterator[NetworkSnapshotSource]:
    source = NetworkSnapshotSource(dht, RUN, tmp_path / "validator-cache", cfg)
    try:
        yield source
    finally:
        source.close()


def _announced(board: SnapshotBoard, digest: bytes, holders: int) -> bool:
    return len(board.holders(digest, timeout=5)) >= holders


class WrongBytesServer(SnapshotServer):
    """Answers with bytes of the right length that are not the snapshot."""

    def snapshot_bytes(self, digest: bytes) -> bytes | None:
        raw = self.store.raw_params(digest)
        return None if raw is None else bytes(len(raw))


class DyingServer(SnapshotServer):
    """Sends half the snapshot, then its peer dies (its DHT and p2p daemon shut down)."""

    def __init__(self, store: SnapshotStore, dht: DHT) -> None:
        super().__init__(store)
        self.dht = dht

    async def _serve(self, info, reader, writer) -> None:
        digest = await reader.readexactly(32)
        raw = self.store.raw_params(digest)
        assert raw is not None
        writer.write(bytes([0]) + len(raw).to_bytes(8, "big") + raw[: len(raw) // 2])
        await writer.drain()
        await asyncio.to_thread(self.dht.shutdown)  # killed mid-transfer


def _load_in_background(source: NetworkSnapshotSource, model: torch.nn.Module, digest: bytes):
    pool = concurrent.futures.ThreadPoolExecutor(1)
    return pool, pool.submit(source.load, model, digest, 0)


def test_a_snapshot_held_by_two_peers_is_fetched_from_one_verified_and_cached(swarm, tmp_path: Path) -> None:
    dhts, boards = swarm
    model = _model(1)
    stores = [SnapshotStore(tmp_path / f"holder{i}") for i in range(2)]
    with serving(dhts[0], boards[0], stores[0]) as a, serving(dhts[1], boards[1], stores[1]) as b:
        digest = a.put(model, 0)
        assert b.put(model, 0) == digest
        with network_source(dhts[2], tmp_path) as source:
            assert wait_until(lambda: _announced(source.board, digest, 2), WAIT), "holders never announced"
            target = _model(2)
            assert source.load(target, digest, 0) is None
            assert params_hash(target) == digest
            report = source.reports[-1]
            assert report.served_by in {dhts[0].peer_id.to_base58(), dhts[1].peer_id.to_base58()}
            assert not report.faulty
            assert wait_until(lambda: a.server.served + b.server.served == 1, WAIT)
            assert source.cache.has(digest)
            assert source.load(_model(3), digest, 0) is None  # from the cache: nothing asked
            assert len(source.reports) == 1


def test_pruned_snapshots_leave_the_holders_record(swarm, tmp_path: Path) -> None:
    dhts, boards = swarm
    store = SnapshotStore(tmp_path / "holder", SnapshotLimits(keep_epochs=2))
    with serving(dhts[0], boards[0], store) as served:
        digests = [served.put(_model(10 + epoch), epoch) for epoch in range(4)]
        reader = SnapshotBoard(dhts[2], RUN)
        assert wait_until(lambda: _announced(reader, digests[3], 1), WAIT)
        assert reader.holders(digests[0], timeout=5) == []  # pruned at epoch 2: no longer announced
        assert not store.has(digests[0]) and store.has(digests[2])


def test_wrong_bytes_are_refused_the_server_logged_and_another_holder_serves(swarm, tmp_path: Path, caplog) -> None:
    dhts, boards = swarm
    model = _model(4)
    bad_store, good_store = SnapshotStore(tmp_path / "bad"), SnapshotStore(tmp_path / "good")
    caplog.set_level(logging.WARNING, logger="node.work.snapshot_exchange")
    with serving(dhts[0], boards[0], bad_store, WrongBytesServer(bad_store)) as bad, \
            serving(dhts[1], boards[1], good_store) as good, network_source(dhts[2], tmp_path) as source:
        digest = good_store.put(model, 0)  # stored, not announced yet
        bad_store.put(model, 0)
        bad.board.announce([digest])  # only the bad holder at first: it is asked first
        target = _model(5)
        pool, result = _load_in_background(source, target, digest)
        with pool:
            assert wait_until(lambda: source.reports and source.reports[-1].faulty, WAIT), "bad holder never asked"
            good.board.announce([digest])
            assert result.result(WAIT) is None
        report = source.reports[-1]
        bad_name = dhts[0].peer_id.to_base58()
        assert bad_name in report.faulty and "not to the snapshot's id" in report.faulty[bad_name]
        assert report.served_by == dhts[1].peer_id.to_base58()
        assert params_hash(target) == digest
        assert any(bad_name in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


def test_a_holder_killed_mid_transfer_is_left_for_another(swarm, tmp_path: Path) -> None:
    dhts, boards = swarm
    doomed = _start(dhts[0].get_visible_maddrs())
    try:
        model = _model(6)
        dying_store, good_store = SnapshotStore(tmp_path / "dying"), SnapshotStore(tmp_path / "good")
        doomed_board = SnapshotBoard(doomed, RUN, private_key=RSAPrivateKey())
        doomed_name = doomed.peer_id.to_base58()
        with serving(doomed, doomed_board, dying_store, DyingServer(dying_store, doomed)), \
                serving(dhts[1], boards[1], good_store) as good, network_source(dhts[2], tmp_path) as source:
            digest = good_store.put(model, 0)  # stored, not announced yet
            dying_store.put(model, 0)
            doomed_board.announce([digest])
            target = _model(7)
            pool, result = _load_in_background(source, target, digest)
            with pool:
                assert wait_until(lambda: source.reports and doomed_name in source.reports[-1].unavailable, WAIT), \
                    "the dying holder was never asked"
                good.board.announce([digest])
                assert result.result(WAIT) is None
            assert source.reports[-1].served_by == dhts[1].peer_id.to_base58()
            assert params_hash(target) == digest
    finally:
        if doomed.is_alive():
            doomed.shutdown()


@pytest.mark.parametrize("deadline_s, unannounced_s", [(3.0, 30.0), (30.0, 3.0)], ids=["deadline", "unannounced"])
def test_a_snapshot_nobody_serves_fails_at_the_deadline_with_a_reason(swarm, tmp_path: Path, deadline_s: float,
                                                                      unannounced_s: float) -> None:
    dhts, _ = swarm
    cfg = SnapshotFetchConfig(deadline_s=deadline_s, holder_timeout_s=2.0, stall_s=1.0, lookup_every_s=0.5,
                              unannounced_s=unannounced_s)
    limit = min(deadline_s, unannounced_s)
    digest = params_hash(_model(8))
    with network_source(dhts[2], tmp_path, cfg) as source:
        started = time.monotonic()
        reason = source.load(_model(9), digest, 0)
        elapsed = time.monotonic() - started
    assert reason is not None and digest.hex()[:16] in reason and "no peer announced it" in reason
    assert limit <= elapsed < limit + 10  # gave up at the limit, not before, not much later
    assert not source.cache.has(digest)
