"""Merkle proofs over chunk hashes: a proof verifies for its own chunk and position only."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.merkle import MerkleProof, chunk_hash, merkle_proof, merkle_root, verify_proof

chunk_lists = st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=40)


@st.composite
def tree_and_index(draw):
    chunks = draw(chunk_lists)
    return chunks, draw(st.integers(0, len(chunks) - 1))


@given(tree_and_index())
def test_proof_verifies_for_its_chunk(case):
    chunks, i = case
    hashes = [chunk_hash(c) for c in chunks]
    root = merkle_root(hashes)
    assert verify_proof(root, hashes[i], merkle_proof(hashes, i))


@given(tree_and_index(), st.data())
def test_proof_verifies_for_index_i_only(case, data):
    # Even identical chunks at other positions do not verify: the index is bound into the leaf.
    chunks, i = case
    hashes = [chunk_hash(c) for c in chunks]
    root = merkle_root(hashes)
    proof = merkle_proof(hashes, i)
    j = data.draw(st.integers(0, len(chunks) - 1).filter(lambda j: j != i)) if len(chunks) > 1 else None
    if j is not None:
        moved = MerkleProof(j, proof.n_leaves, proof.siblings)
        assert not verify_proof(root, hashes[i], moved)
        assert not verify_proof(root, hashes[j], moved)
    assert not verify_proof(root, hashes[i], MerkleProof(i, proof.n_leaves + 1, proof.siblings))


@given(tree_and_index(), st.binary(min_size=1, max_size=8))
def test_changed_chunk_breaks_proof(case, suffix):
    chunks, i = case
    hashes = [chunk_hash(c) for c in chunks]
    root = merkle_root(hashes)
    assert not verify_proof(root, chunk_hash(chunks[i] + suffix), merkle_proof(hashes, i))


@settings(max_examples=200)
@given(tree_and_index(), st.data())
def test_any_changed_proof_byte_breaks_it(case, data):
    chunks, i = case
    hashes = [chunk_hash(c) for c in chunks]
    root = merkle_root(hashes)
    proof = merkle_proof(hashes, i)
    if not proof.siblings:
        return  # a one-chunk tree has an empty proof; nothing to flip
    k = data.draw(st.integers(0, len(proof.siblings) - 1))
    pos = data.draw(st.integers(0, 31))
    bit = data.draw(st.integers(0, 7))
    sib = bytearray(proof.siblings[k])
    sib[pos] ^= 1 << bit
    bad = MerkleProof(i, proof.n_leaves, proof.siblings[:k] + (bytes(sib),) + proof.siblings[k + 1 :])
    assert not verify_proof(root, hashes[i], bad)
    assert not verify_proof(root, hashes[i], MerkleProof(i, proof.n_leaves, proof.siblings[:-1]))
    assert not verify_proof(root, hashes[i], MerkleProof(i, proof.n_leaves, proof.siblings + (hashes[0],)))


@given(chunk_lists, st.data())
def test_root_changes_with_any_chunk(chunks, data):
    hashes = [chunk_hash(c) for c in chunks]
    i = data.draw(st.integers(0, len(chunks) - 1))
    changed = hashes[:i] + [chunk_hash(chunks[i] + b"x")] + hashes[i + 1 :]
    assert merkle_root(changed) != merkle_root(hashes)
    assert merkle_root(hashes + [hashes[-1]]) != merkle_root(hashes)  # no second root by duplication


@given(tree_and_index())
def test_proof_json_round_trip(case):
    chunks, i = case
    hashes = [chunk_hash(c) for c in chunks]
    proof = merkle_proof(hashes, i)
    assert MerkleProof.from_json(proof.to_json()) == proof


def test_chunk_hash_is_plain_sha256_and_bad_shapes_are_refused():
    assert chunk_hash(b"abc") == hashlib.sha256(b"abc").digest()
    with pytest.raises(ValueError, match="1\\.\\."):
        merkle_root([])
    with pytest.raises(ValueError, match="chunk hash 0 is 3 bytes"):
        merkle_root([b"abc"])
    with pytest.raises(IndexError):
        merkle_proof([chunk_hash(b"")], 1)
    with pytest.raises(ValueError):
        MerkleProof.from_json({"index": "0", "n_leaves": 1, "siblings": []})
