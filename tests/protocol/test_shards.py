"""Manifests: round trip, strict parsing with bounds; record framing; attestations."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ManifestError, ShardError
from protocol.merkle import chunk_hash
from protocol.shards import (
    RecordSchema,
    ShardAttestation,
    build_manifest,
    decode_records,
    frame_records,
    manifest_bytes,
    parse_manifest,
)

schemas = st.one_of(
    st.just(RecordSchema(kind="text")),
    st.just(RecordSchema(kind="json")),
    st.builds(
        lambda dt, shape: RecordSchema(kind="array", dtype=dt, shape=shape),
        st.sampled_from(["<u2", "<f4", "|u1"]),
        st.lists(st.integers(1, 64), min_size=1, max_size=3).map(tuple),
    ),
)


@st.composite
def manifests(draw):
    chunk_size = 1 << draw(st.integers(10, 16))
    n = draw(st.integers(1, 12))
    last = draw(st.integers(1, chunk_size))
    total = chunk_size * (n - 1) + last
    hashes = [chunk_hash(draw(st.binary(max_size=8)) + bytes([i % 256])) for i in range(n)]
    return build_manifest(
        hashes,
        chunk_size=chunk_size,
        total_bytes=total,
        record_count=draw(st.integers(0, total // 4)),
        record_schema=draw(schemas),
        license=draw(st.sampled_from(["CC-BY-4.0", "CC0-1.0", "MIT", "proprietary"])),
        owner=draw(st.one_of(st.none(), st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()))),
        created_at=draw(st.integers(0, 2**33)),
    )


@given(manifests())
def test_manifest_round_trips(m):
    assert parse_manifest(manifest_bytes(m)) == m
    assert parse_manifest(manifest_bytes(m), expected_id=m.shard_id).shard_id == m.shard_id


@given(manifests(), st.data())
def test_changed_chunk_hash_gives_wrong_root(m, data):
    raw = json.loads(manifest_bytes(m))
    i = data.draw(st.integers(0, m.n_chunks - 1))
    raw["chunk_hashes"][i] = chunk_hash(b"tampered").hex()
    with pytest.raises(ManifestError, match="wrong root"):
        parse_manifest(json.dumps(raw).encode())


def _raw(**changes):
    m = build_manifest(
        [chunk_hash(b"a"), chunk_hash(b"b")],
        chunk_size=1024, total_bytes=1500, record_count=3,
        record_schema=RecordSchema(kind="text"), license="MIT", owner=None, created_at=1,
    )
    raw = json.loads(manifest_bytes(m))
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 2}, "unknown manifest version 2"),
        ({"version": "1"}, "unknown manifest version '1'"),
        ({"shard_id": "00" * 32}, "wrong root"),
        ({"chunk_size": 1536}, "not a power of two"),
        ({"chunk_size": 512}, "chunk_size"),
        ({"total_bytes": 5000}, "expected 5"),
        ({"record_count": 10_000}, "cannot fit"),
        ({"record_count": 3.0}, "record_count"),
        ({"license": ""}, "license"),
        ({"owner": "0x123"}, "owner"),
        ({"extra": 1}, "extra"),
        ({"record_schema": {"kind": "array"}}, "dtype and a shape"),
    ],
)
def test_bad_manifests_are_rejected_with_reason(changes, message):
    with pytest.raises(ManifestError, match=message):
        parse_manifest(_raw(**changes))


def test_non_json_oversized_and_wrong_id_manifests_are_rejected():
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(b"\xff\xfe")
    with pytest.raises(ManifestError, match="JSON object"):
        parse_manifest(b"[1]")
    with pytest.raises(ManifestError, match="bytes, more than"):
        parse_manifest(b" " * (9 << 20))
    with pytest.raises(ManifestError, match="expected"):
        parse_manifest(_raw(), expected_id="ab" * 32)


@given(st.lists(st.binary(max_size=300), max_size=30), st.integers(1, 64))
def test_record_framing_round_trips_across_any_split(records, step):
    from protocol.shards import RecordDecoder

    stream = frame_records(records)
    assert decode_records(stream) == records
    decoder = RecordDecoder()
    out = [r for k in range(0, len(stream), step) for r in decoder.feed(stream[k : k + step])]
    decoder.finish()
    assert out == records


def test_truncated_or_oversized_record_stream_is_rejected():
    stream = frame_records([b"hello", b"world"])
    with pytest.raises(ShardError, match="ends inside record 1"):
        decode_records(stream[:-1])
    with pytest.raises(ShardError, match="above the limit"):
        decode_records(frame_records([b"x" * 100]), max_record_bytes=10)


def test_attestation_bounds():
    ok = ShardAttestation(shard_id="ab" * 32, passed=True, score=9000, report_hash=b"\0" * 32, n_records=5)
    assert ok.passed and ok.score == 9000
    with pytest.raises(ValueError, match="basis points"):
        ShardAttestation(shard_id="ab" * 32, passed=True, score=10001, report_hash=b"\0" * 32, n_records=5)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ShardAttestation(shard_id="xyz", passed=True, score=1, report_hash=b"\0" * 32, n_records=5)
