"""Merkle trees over chunk hashes: the content id of a shard and per-chunk proofs.

The tree is binary, built level by level; a level with an odd count promotes
its last node unchanged (no duplication, so no CVE-2012-2459-style second
root for the same leaves). Hashes are domain-separated:

    leaf(i)  = SHA-256(0x00 || u64be(i) || chunk_hash_i)   position bound into the leaf
    node     = SHA-256(0x01 || left || right)
    root     = SHA-256(0x02 || u64be(n) || top)            leaf count bound into the root

Binding the index makes a proof valid for its position only, even when two
chunks are identical; binding ``n`` makes a shard's prefix a different id.
``chunk_hash_i`` is the plain SHA-256 of the chunk bytes, what ``sha256sum``
prints for a chunk file.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

HASH_LEN = 32
MAX_LEAVES = 1 << 24  # far above any shard (16 M chunks); bounds proof length at 24 siblings

_LEAF, _NODE, _ROOT = b"\x00", b"\x01", b"\x02"


def chunk_hash(chunk: bytes | memoryview) -> bytes:
    """The SHA-256 digest of one chunk's bytes."""
    return hashlib.sha256(chunk).digest()


def _leaf(index: int, digest: bytes) -> bytes:
    return hashlib.sha256(_LEAF + struct.pack(">Q", index) + digest).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _seal(n_leaves: int, top: bytes) -> bytes:
    return hashlib.sha256(_ROOT + struct.pack(">Q", n_leaves) + top).digest()


def _check_hashes(chunk_hashes: Sequence[bytes]) -> None:
    if not 1 <= len(chunk_hashes) <= MAX_LEAVES:
        raise ValueError(f"a Merkle tree needs 1..{MAX_LEAVES} leaves, got {len(chunk_hashes)}")
    for i, h in enumerate(chunk_hashes):
        if len(h) != HASH_LEN:
            raise ValueError(f"chunk hash {i} is {len(h)} bytes, expected {HASH_LEN}")


def _levels(chunk_hashes: Sequence[bytes]) -> list[list[bytes]]:
    level = [_leaf(i, h) for i, h in enumerate(chunk_hashes)]
    levels = [level]
    while len(level) > 1:
        nxt = [_node(level[k], level[k + 1]) for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(chunk_hashes: Sequence[bytes]) -> bytes:
    """The 32-byte root over ``chunk_hashes`` (at least one)."""
    _check_hashes(chunk_hashes)
    return _seal(len(chunk_hashes), _levels(chunk_hashes)[-1][0])


@dataclass(frozen=True)
class MerkleProof:
    """Evidence that a chunk hash sits at ``index`` of a tree of ``n_leaves`` leaves."""

    index: int
    n_leaves: int
    siblings: tuple[bytes, ...]  # bottom-up; levels where the node is promoted contribute none

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "n_leaves": self.n_leaves, "siblings": [s.hex() for s in self.siblings]}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> MerkleProof:
        """Parse a proof from untrusted JSON; raises ``ValueError`` on any malformed field."""
        index, n_leaves, siblings = data.get("index"), data.get("n_leaves"), data.get("siblings")
        if type(index) is not int or type(n_leaves) is not int or not isinstance(siblings, list):
            raise ValueError("proof needs integer index, n_leaves and a list of siblings")
        if len(siblings) > 64 or not all(isinstance(s, str) and len(s) == 2 * HASH_LEN for s in siblings):
            raise ValueError("proof siblings must be at most 64 hex strings of 32 bytes")
        return cls(index, n_leaves, tuple(bytes.fromhex(s) for s in siblings))


def merkle_proof(chunk_hashes: Sequence[bytes], index: int) -> MerkleProof:
    """The proof for the chunk at ``index``."""
    _check_hashes(chunk_hashes)
    if not 0 <= index < len(chunk_hashes):
        raise IndexError(f"chunk index {index} outside 0..{len(chunk_hashes) - 1}")
    siblings: list[bytes] = []
    pos = index
    for level in _levels(chunk_hashes)[:-1]:
        mate = pos ^ 1
        if mate < len(level):
            siblings.append(level[mate])
        pos //= 2
    return MerkleProof(index, len(chunk_hashes), tuple(siblings))


def verify_proof(root: bytes, digest: bytes, proof: MerkleProof) -> bool:
    """Whether ``digest`` (a chunk hash) is leaf ``proof.index`` of the tree whose root is ``root``."""
    n, pos = proof.n_leaves, proof.index
    if not (1 <= n <= MAX_LEAVES and 0 <= pos < n and len(digest) == HASH_LEN and len(root) == HASH_LEN):
        return False
    node = _leaf(pos, digest)
    rest = list(proof.siblings)
    width = n
    while width > 1:
        mate = pos ^ 1
        if mate < width:
            if not rest:
                return False
            sibling = rest.pop(0)
            if len(sibling) != HASH_LEN:
                return False
            node = _node(sibling, node) if pos & 1 else _node(node, sibling)
        pos //= 2
        width = (width + 1) // 2
    return not rest and _seal(n, node) == root
