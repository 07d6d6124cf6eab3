"""The snapshot protocol's server and fetcher over plain asyncio loopback streams (fast: no p2p daemon; the
same classes over hivemind's P2P are in test_snapshot_fetch.py): wrong length, wrong hash, a stalled and a
vanished holder, and the order in which holders are asked."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from node.work import snapshot_exchange
from node.work.snapshot_exchange import SnapshotFetchConfig, SnapshotFetcher, SnapshotFetchReport, SnapshotServer
from node.work.snapshot_store import SnapshotStore, raw_size

CFG = SnapshotFetchConfig(deadline_s=10.0, holder_timeout_s=5.0, stall_s=0.5)


class Peer:
    """A holder's name, as PeerID gives it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def to_base58(self) -> str:
        return self.name


class TruncatingServer(SnapshotServer):
    """Announces the full length, sends half, then ends the stream."""

    async def _serve(self, info, reader, writer) -> None:
        digest = await reader.readexactly(32)
        raw = self.store.raw_params(digest)
        assert raw is not None
        writer.write(bytes([0]) + len(raw).to_bytes(8, "big") + raw[: len(raw) // 2])
        await writer.drain()
        writer.close()


class StallingServer(SnapshotServer):
    """Announces the full length and then sends nothing."""

    async def _serve(self, info, reader, writer) -> None:
        digest = await reader.readexactly(32)
        raw = self.store.raw_params(digest)
        assert raw is not None
        writer.write(bytes([0]) + len(raw).to_bytes(8, "big"))
        await writer.drain()
        await asyncio.sleep(60)  # a holder that hangs: the fetcher's stall timeout must end it


class WrongLengthServer(SnapshotServer):
    def snapshot_bytes(self, digest: bytes) -> bytes | None:
        raw = self.store.raw_params(digest)
        return None if raw is None else raw + b"\x00" * 4


class WrongHashServer(SnapshotServer):
    def snapshot_bytes(self, digest: bytes) -> bytes | None:
        raw = self.store.raw_params(digest)
        return None if raw is None else bytes(len(raw))


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 8))


async def _fetch(monkeypatch, servers: dict[str, SnapshotServer | None], digest: bytes, size: int,
                 cfg: SnapshotFetchConfig = CFG) -> tuple[bytes | None, SnapshotFetchReport]:
    """Runs each server on a loopback port (None: a peer nobody answers for) and fetches from them in order."""
    ports: dict[str, int] = {}
    listening = []
    for name, server in servers.items():
        if server is None:
            continue

        async def handle(reader, writer, server=server):
            await server._handle(SimpleNamespace(peer_id=name), reader, writer)

        s = await asyncio.start_server(handle, "127.0.0.1", 0)
        listening.append(s)
        ports[name] = s.sockets[0].getsockname()[1]

    async def open_stream(p2p, peer, protocol):
        assert protocol == snapshot_exchange.PROTOCOL
        if peer.name not in ports:
            raise ConnectionRefusedError(f"{peer.name} is gone")
        return await asyncio.open_connection("127.0.0.1", ports[peer.name])

    monkeypatch.setattr(snapshot_exchange, "open_stream", open_stream)
    report = SnapshotFetchReport(digest)
    try:
        raw = await SnapshotFetcher(None, cfg).fetch(digest, size, [Peer(n) for n in servers], report,
                                                     time.monotonic() + cfg.deadline_s)
    finally:
        for s in listening:
            s.close()
    return raw, report


@pytest.fixture
def held(tmp_path: Path) -> tuple[SnapshotStore, bytes, int]:
    store = SnapshotStore(tmp_path / "holder")
    model = _model(1)
    return store, store.put(model, 0), raw_size(model)


@pytest.mark.parametrize("bad_server, complaint", [(WrongLengthServer, "where the snapshot has"),
                                                   (WrongHashServer, "not to the snapshot's id")])
def test_wrong_bytes_mark_the_holder_faulty_and_the_next_one_serves(monkeypatch, held, bad_server, complaint) -> None:
    store, digest, size = held
    raw, report = asyncio.run(_fetch(monkeypatch, {"bad": bad_server(store), "good": SnapshotServer(store)}, digest, size))
    assert raw == store.raw_params(digest)
    assert report.served_by == "good"
    assert complaint in report.faulty["bad"] and report.unavailable == {}


def test_gone_truncating_stalling_and_not_holding_peers_are_skipped_without_blame(monkeypatch, held, tmp_path) -> None:
    store, digest, size = held
    empty = SnapshotStore(tmp_path / "empty")
    servers = {"gone": None, "truncating": TruncatingServer(store), "stalling": StallingServer(store),
               "empty": SnapshotServer(empty), "good": SnapshotServer(store)}
    raw, report = asyncio.run(_fetch(monkeypatch, servers, digest, size))
    assert raw == store.raw_params(digest) and report.served_by == "good"
    assert set(report.unavailable) == {"gone", "truncating", "stalling", "empty"} and report.faulty == {}
    assert "does not hold it" in report.unavailable["empty"]


def test_no_honest_holder_gives_none_and_a_reason_naming_each(monkeypatch, held) -> None:
    store, digest, size = held
    raw, report = asyncio.run(_fetch(monkeypatch, {"bad": WrongHashServer(store), "gone": None}, digest, size))
    assert raw is None and report.served_by is None
    reason = report.reason()
    assert digest.hex()[:16] in reason and "bad sent bytes hashing to" in reason and "gone was unreachable" in reason
    assert "no peer announced it" in SnapshotFetchReport(digest).reason()


def test_holder_records_parse_as_the_dht_returns_them_and_refuse_malformed_ones() -> None:
    from pydantic import ValidationError

    from node.swarm.snapshot_board import MAX_HELD, HolderRecord

    peer = "12D3KooWN6oJNFNRjxzxpRVCZBceXa5U9gf7isZuZssd7pd5bvuK"
    record = HolderRecord.model_validate({"peer": peer, "held": ["ab" * 32]})  # msgpack gives lists
    assert record.holds(bytes.fromhex("ab" * 32)) and not record.holds(b"\x00" * 32)
    for bad in ({"peer": peer, "held": ["not hex"]}, {"peer": peer, "held": ["ab" * 32] * (MAX_HELD + 1)},
                {"peer": "0OIl" * 10, "held": []}, {"peer": peer, "held": [], "extra": 1}):
        with pytest.raises(ValidationError):
            HolderRecord.model_validate(bad)
