"""Shard store: packing, verification naming the bad chunk, and bad input refused cleanly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from node.data.store import ShardStore, StoreConfig
from protocol.errors import ChunkCorrupt, ManifestError, ShardInputError, ShardNotFound
from protocol.shards import MAX_RECORD_BYTES
from tests.data.conftest import docs_text, snapshot


def _docs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir(parents=True)
    train, _ = docs_text()
    (d / "a.txt").write_bytes(train[:100_000])
    (d / "sub").mkdir()
    (d / "sub" / "b.txt").write_bytes(train[100_000:150_000])
    (d / "ignored.bin").write_bytes(b"\x00\x01")
    return d


def test_pack_verify_and_read_back(store, tmp_path):
    m = store.add_paths([_docs_dir(tmp_path)], license="PSF-2.0")
    assert m.n_chunks > 10 and m.record_count > 100
    assert store.verify(m.shard_id).ok
    records = list(store.iter_records(m.shard_id))
    assert len(records) == m.record_count
    assert b"\n\n".join(records).startswith(docs_text()[0][:50].strip())
    # Same content -> same id, stored once.
    assert store.add_paths([_docs_dir(tmp_path / "again")], license="PSF-2.0").shard_id == m.shard_id
    assert store.ids() == [m.id]


def test_one_changed_byte_in_any_chunk_is_named(store, tmp_path):
    m = store.add_paths([_docs_dir(tmp_path)], license="PSF-2.0")
    for index in (0, m.n_chunks // 2, m.n_chunks - 1):
        path = store.shard_dir(m.shard_id) / "chunks" / f"{index:06d}"
        original = path.read_bytes()
        data = bytearray(original)
        data[len(data) // 3] ^= 0x01
        path.write_bytes(bytes(data))
        result = store.verify(m.shard_id)
        assert not result.ok and result.bad_chunks == (index,)
        with pytest.raises(ChunkCorrupt, match=f"chunk\\(s\\) {index} ") as err:
            list(store.iter_records(m.shard_id))
        assert err.value.chunks == [index]
        path.write_bytes(original)
    assert store.verify(m.shard_id).ok


def test_jsonl_and_npy_inputs(store, tmp_path):
    (tmp_path / "r.jsonl").write_text('{"text": "hello there"}\n\n{"text": "second"}\n')
    m = store.add_paths([tmp_path / "r.jsonl"], license="MIT")
    assert m.record_schema.kind == "json" and list(store.iter_records(m.shard_id)) == [b'{"text": "hello there"}', b'{"text": "second"}']
    arr = np.arange(24, dtype=np.uint16).reshape(4, 6)
    np.save(tmp_path / "t.npy", arr)
    m = store.add_paths([tmp_path / "t.npy"], license="MIT")
    assert (m.record_schema.dtype, m.record_schema.shape, m.record_count) == ("<u2", (6,), 4)
    assert np.frombuffer(list(store.iter_records(m.shard_id))[2], dtype="<u2").tolist() == arr[2].tolist()


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[list[Path], str]]:
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk.txt"
    junk.write_bytes(os.urandom(4096) + b"\x00")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café au lait\n".encode("latin-1"))
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:  # 100 MB single record, sparse: no blank line anywhere
        f.truncate(100 * 1024 * 1024)
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "x.txt").write_text("fine text.\n")
    (loop / "again").symlink_to(loop, target_is_directory=True)
    selfloop = tmp_path / "self.txt"
    selfloop.symlink_to(selfloop)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"a": 1}\n[1, 2]\n')
    npy = tmp_path / "bad.npy"
    npy.write_bytes(b"not an array")
    (tmp_path / "bad.bin").write_bytes(b"x")
    return {
        "empty dir": ([empty], "no .txt, .jsonl or .npy files"),
        "binary junk": ([junk], "invalid UTF-8|binary"),
        "invalid utf-8": ([latin], "invalid UTF-8 at byte 3"),
        "100 MB record": ([big], "larger than the 1048576-byte limit"),
        "directory symlink loop": ([loop], "symlink loop"),
        "self symlink": ([selfloop], "symlink loop"),
        "jsonl not object": ([jsonl], "bad.jsonl:2: each line must be a JSON object"),
        "junk npy": ([npy], "not a readable .npy"),
        "unsupported": ([tmp_path / "bad.bin"], "unsupported file type .bin"),
        "missing": ([tmp_path / "nope.txt"], "no such file"),
        "mixed kinds": ([tmp_path / "loop" / "x.txt", jsonl], "mix record kinds"),
    }


def test_bad_inputs_fail_clearly_leaving_nothing_partial(store, tmp_path):
    good = store.add_paths([_docs_dir(tmp_path)], license="PSF-2.0")
    before = snapshot(store.root)
    for name, (paths, message) in _bad_inputs(tmp_path).items():
        with pytest.raises(ShardInputError, match=message):
            store.add_paths(paths, license="MIT")
        assert snapshot(store.root) == before, name
        assert list((store.root / "tmp").iterdir()) == [], name
    assert store.ids() == [good.id] and store.verify(good.shard_id).ok


def test_oversized_record_is_bounded_in_memory(tmp_path):
    import resource
    import time

    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(100 * 1024 * 1024)
    store = ShardStore(StoreConfig(tmp_path / "s"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(ShardInputError, match="larger than"):
        store.add_paths([big], license="MIT")
    assert time.monotonic() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * 1024  # KiB: < 50 MB growth


def test_manifest_of_unknown_version_or_wrong_root_is_refused(store, tmp_path):
    m = store.add_paths([_docs_dir(tmp_path)], license="PSF-2.0")
    path = store.shard_dir(m.shard_id) / "manifest.json"
    original = path.read_bytes()
    raw = json.loads(original)
    for change, message in (({"version": 9}, "unknown manifest version 9"), ({"chunk_hashes": raw["chunk_hashes"][::-1]}, "wrong root")):
        path.write_text(json.dumps({**raw, **change}))
        with pytest.raises(ManifestError, match=message):
            store.verify(m.shard_id)
        with pytest.raises(ManifestError, match=message):
            list(store.iter_records(m.shard_id))
    path.write_bytes(original)
    assert store.verify(m.shard_id).ok


def test_remove_and_resolve(store, tmp_path):
    m = store.add_paths([_docs_dir(tmp_path)], license="PSF-2.0")
    assert store.resolve(m.shard_id[:8]) == m.shard_id
    store.remove(m.shard_id)
    assert store.ids() == []
    with pytest.raises(ShardNotFound, match="no shard matching"):
        store.resolve(m.shard_id[:8])
    with pytest.raises(ShardNotFound):
        store.remove(m.shard_id)
    assert MAX_RECORD_BYTES >= StoreConfig(tmp_path).max_record_bytes
