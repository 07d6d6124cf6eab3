"""Fast tier: the fetch cache's cap, the run-shards DHT record's schema, `hivenet shard serve`'s refusals."""

from __future__ import annotations

import os
import random

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from node.cli.app import _register_groups, app
from node.data.announce import MAX_OFFERED, RunShardsRecord
from node.data.cache import ShardCache, ShardCacheFull
from node.data.serving import own_port
from node.data.store import ShardStore
from protocol.shards import RecordSchema
from tests.data.conftest import snapshot

_register_groups()
runner = CliRunner()
PEER = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"


def _shard(store: ShardStore, seed: int, n: int = 40) -> str:
    rng = random.Random(seed)
    records = [bytes(rng.randrange(97, 123) for _ in range(200)) for _ in range(n)]
    return store.add_records(records, schema=RecordSchema(kind="text"), license="CC0-1.0").shard_id


def _age(store: ShardStore, shard_id: str, seconds_ago: float) -> None:
    path = store.shard_dir(shard_id) / "manifest.json"
    t = path.stat().st_mtime - seconds_ago
    os.utime(path, (t, t))


def test_make_room_evicts_oldest_others_and_never_the_kept(store):
    old, newer, kept = _shard(store, 1), _shard(store, 2), _shard(store, 3)
    _age(store, old, 100)
    _age(store, newer, 50)
    size = store.manifest(old).total_bytes  # all three have the same size
    cache = ShardCache(store, cap_bytes=3 * size)

    evicted = cache.make_room(incoming=size, keep={kept})

    assert evicted == [old]
    assert set(store.ids()) == {newer, kept}
    assert cache.used_bytes() + size <= cache.cap_bytes


def test_make_room_drops_partial_downloads_of_other_shards_first(store, tmp_path):
    a, b = _shard(store, 1), _shard(store, 2)
    size = store.manifest(a).total_bytes
    partial = store.partial(store.manifest(b))
    partial.write(0, store.read_chunk(b, 0))
    store.remove(b)  # b now exists only as a partial download
    cache = ShardCache(store, cap_bytes=2 * size)

    evicted = cache.make_room(incoming=size, keep={"c" * 64})

    assert evicted == [b]
    assert store.ids() == [a] and not (store.root / "partial" / b).exists()


def test_a_cap_below_the_run_s_own_shards_is_refused_and_nothing_removed(store):
    a, b = _shard(store, 1), _shard(store, 2)
    size = store.manifest(a).total_bytes
    before = snapshot(store.root)

    with pytest.raises(ShardCacheFull, match=r"shard_cache_mb"):
        ShardCache(store, cap_bytes=2 * size).make_room(incoming=2 * size, keep={a})

    assert snapshot(store.root) == before and set(store.ids()) == {a, b}


def test_nothing_evicted_when_it_fits(store):
    a = _shard(store, 1)
    assert ShardCache(store, cap_bytes=10 << 20).make_room(incoming=1 << 20, keep=set()) == []
    assert store.ids() == [a]


@pytest.mark.parametrize("value", [
    {"peer": PEER, "shards": []},  # offers nothing
    {"peer": PEER, "shards": ["ab" * 31]},  # not a shard id
    {"peer": PEER, "shards": ["AB" * 32]},  # ids are lower-case hex
    {"peer": PEER, "shards": ["ab" * 32] * (MAX_OFFERED + 1)},  # too many to parse
    {"peer": "not base58 0OIl", "shards": ["ab" * 32]},
    {"peer": PEER, "shards": ["ab" * 32], "extra": 1},
    {"peer": PEER, "shards": "ab" * 32},
])
def test_run_shards_record_refuses_malformed_values(value):
    with pytest.raises(ValidationError):
        RunShardsRecord.model_validate(value)


def test_run_shards_record_accepts_a_well_formed_offer():
    assert RunShardsRecord.model_validate({"peer": PEER, "shards": ["ab" * 32, "cd" * 32]}).shards == ["ab" * 32, "cd" * 32]


def test_own_port_frees_fixed_ports_only():
    assert own_port(["/ip4/0.0.0.0/tcp/31337", "/ip4/10.0.0.2/udp/4001/quic", "/ip6/::1/tcp/0"]) == (
        "/ip4/0.0.0.0/tcp/0", "/ip4/10.0.0.2/udp/0/quic", "/ip6/::1/tcp/0")


def test_serve_refuses_an_empty_store_with_the_fix(tmp_path):
    missing = tmp_path / "nowhere"  # the command must create nothing for a store that is not there
    out = runner.invoke(app, ["shard", "serve", "--run-id", "demo", "--store", str(missing)])
    assert out.exit_code == 2 and "hivenet shard add" in out.output and not missing.exists()

    (tmp_path / "empty").mkdir()
    out = runner.invoke(app, ["shard", "serve", "--run-id", "demo", "--store", str(tmp_path / "empty")])
    assert out.exit_code == 2 and "no shard in" in out.output and "hivenet shard add" in out.output


def test_serve_refuses_a_bad_run_id_and_a_corrupt_shard(store):
    sid = _shard(store, 1)
    out = runner.invoke(app, ["shard", "serve", "--run-id", "bad id!", "--store", str(store.root)])
    assert out.exit_code == 2 and "run id 'bad id!'" in out.output

    chunk = store.shard_dir(sid) / "chunks" / "000000"
    chunk.write_bytes(b"X" + chunk.read_bytes()[1:])
    out = runner.invoke(app, ["shard", "serve", "--run-id", "demo", "--store", str(store.root)])
    assert out.exit_code == 2 and f"shard {sid[:16]} has 1 chunk(s)" in out.output and "hivenet shard verify" in out.output
