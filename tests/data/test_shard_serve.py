"""Shard services on real local DHTs: a contributor serves a run's shards, trainers fetch, vet, cache, serve on.

    .venv/bin/python -m pytest tests/data/test_shard_serve.py -q
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hivemind import DHT
from hivemind.utils.crypto import RSAPrivateKey

from node.data.cache import ShardCacheFull
from node.data.exchange import ShardServer
from node.data.ingest import text_records
from node.data.replicate import replicate_run, run_vet_inputs
from node.data.runs import vet_shard
from node.data.serving import ServiceConfig, ShardService
from node.data.store import ShardStore, StoreConfig
from node.data.vetted import split_text, training_bytes, vetted_shards
from protocol.errors import ShardUnavailable
from protocol.shards import RecordSchema
from tests.data.conftest import docs_text

pytestmark = [pytest.mark.swarm]

TIMEOUT = 120.0  # seconds: ceiling of one replicate_run on a loaded 2-core machine


class CorruptServer(ShardServer):
    """Serves every chunk with its first byte flipped."""

    def chunk_bytes(self, shard_id: str, index: int) -> bytes:
        data = super().chunk_bytes(shard_id, index)
        return bytes([data[0] ^ 0xFF]) + data[1:]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[list[str]]:
    dht = DHT(start=True, host_maddrs=["/ip4/127.0.0.1/tcp/0"], await_ready=True)
    try:
        yield [str(m) for m in dht.get_visible_maddrs()]
    finally:
        dht.shutdown()


@pytest.fixture(scope="module")
def texts() -> tuple[list[bytes], bytes]:
    train, evals = docs_text()
    return split_text(train[:160_000], 2), evals


def _store(root: Path) -> ShardStore:
    return ShardStore(StoreConfig(root, chunk_size=4096))


def _pack(store: ShardStore, contributions: list[bytes]) -> list[str]:
    return sorted(store.add_records(text_records(t), schema=RecordSchema(kind="text"), license="PSF-2.0").shard_id
                  for t in contributions)


@contextmanager
def service(
    stack: ExitStack, run: str, store: ShardStore, peers: list[str], server: ShardServer | None = None
) -> Iterator[ShardService]:
    # Each test has a run id of its own: the module's DHT keeps earlier tests' offers until they expire.
    svc = ShardService(store, ServiceConfig(run_id=run, initial_peers=tuple(peers)), server=server,
                       signing_key=RSAPrivateKey())  # one key per DHT: several share this process
    svc.start()
    stack.callback(svc.stop)
    yield svc


def _offering(svc: ShardService, store: ShardStore, ids: list[str]) -> ShardService:
    assert sorted(svc.offer([(s, store.manifest(s).n_chunks) for s in ids])) == ids
    return svc


def test_fetch_vet_cache_and_serve_on_after_the_contributor_leaves(tmp_path, bootstrap, texts):
    run = "replicated"
    contributions, evals = texts
    source = _store(tmp_path / "contributor")
    ids = _pack(source, contributions)
    with ExitStack() as stack:
        contributor = stack.enter_context(service(stack, run, source, bootstrap))
        _offering(contributor, source, ids)
        store_a = _store(tmp_path / "a")
        trainer_a = stack.enter_context(service(stack, run, store_a, bootstrap))

        got = replicate_run(trainer_a, store_a, cap_bytes=8 << 20, eval_text=evals, timeout=TIMEOUT)

        assert got.shard_ids == ids and got.passed == ids
        assert {sid: set(r.fetched) for sid, r in got.fetched.items()} == {sid: {contributor.peer_id} for sid in ids}
        assert all(store_a.verify(sid).ok for sid in ids)
        assert [s.shard_id for s in vetted_shards(store_a, run)] == ids
        corpus_a = training_bytes(store_a, vetted_shards(store_a, run))
        key = Ed25519PrivateKey.generate()  # the same verdicts as vetting at the source, which trusts nobody either
        for sid in ids:
            vet_shard(source, sid, run_id=run, key=key, inputs=run_vet_inputs(evals))
        assert corpus_a == training_bytes(source, vetted_shards(source, run))
        assert contributor.served_chunks == sum(source.manifest(s).n_chunks for s in ids)

        contributor.stop()  # offline after replication: trainer A now holds and offers the shards
        store_b = _store(tmp_path / "b")
        trainer_b = stack.enter_context(service(stack, run, store_b, [*trainer_a.maddrs]))
        got_b = replicate_run(trainer_b, store_b, cap_bytes=8 << 20, eval_text=evals, timeout=TIMEOUT)

        assert got_b.passed == ids
        assert {h for r in got_b.fetched.values() for h in r.fetched} == {trainer_a.peer_id}
        assert training_bytes(store_b, vetted_shards(store_b, run)) == corpus_a  # the same corpus, the same windows


def test_a_holder_serving_corrupt_chunks_is_refused_and_another_used(tmp_path, bootstrap, texts):
    run = "corrupt"
    contributions, evals = texts
    honest_store, bad_store = _store(tmp_path / "honest"), _store(tmp_path / "bad")
    ids = _pack(honest_store, contributions[:1])
    assert _pack(bad_store, contributions[:1]) == ids
    with ExitStack() as stack:
        honest = _offering(stack.enter_context(service(stack, run, honest_store, bootstrap)), honest_store, ids)
        bad = _offering(stack.enter_context(service(stack, run, bad_store, bootstrap, CorruptServer(bad_store))), bad_store, ids)
        store = _store(tmp_path / "trainer")
        trainer = stack.enter_context(service(stack, run, store, bootstrap))

        got = replicate_run(trainer, store, cap_bytes=8 << 20, eval_text=evals, timeout=TIMEOUT)

        report = got.fetched[ids[0]]
        assert report.faulty == {bad.peer_id}
        assert set(report.fetched) == {honest.peer_id}
        assert store.verify(ids[0]).ok and got.passed == ids
        assert bad.served_chunks >= 1  # it was asked, and what it sent was refused


def test_a_cap_below_the_run_s_shards_stops_before_any_chunk_moves(tmp_path, bootstrap, texts):
    run = "capped"
    contributions, evals = texts
    source = _store(tmp_path / "contributor")
    ids = _pack(source, contributions)
    with ExitStack() as stack:
        contributor = _offering(stack.enter_context(service(stack, run, source, bootstrap)), source, ids)
        store = _store(tmp_path / "trainer")
        trainer = stack.enter_context(service(stack, run, store, bootstrap))
        need = sum(source.manifest(s).total_bytes for s in ids)

        with pytest.raises(ShardCacheFull, match=r"shard_cache_mb"):
            replicate_run(trainer, store, cap_bytes=need - 1, eval_text=evals, timeout=TIMEOUT)

        assert store.ids() == [] and not any((store.root / "partial").iterdir())
        assert contributor.served_chunks == 0


def test_a_run_nobody_offers_shards_for_names_the_fix(tmp_path, bootstrap, texts):
    run = "nobody"
    _, evals = texts
    with ExitStack() as stack:
        store = _store(tmp_path / "trainer")
        trainer = stack.enter_context(service(stack, run, store, bootstrap))
        with pytest.raises(ShardUnavailable, match=r"no peer offers shards for run 'nobody'.*hivenet shard serve"):
            replicate_run(trainer, store, cap_bytes=8 << 20, eval_text=evals, timeout=TIMEOUT)
        assert store.ids() == []
