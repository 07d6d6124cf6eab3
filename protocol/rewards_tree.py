"""Merkle tree of cumulative rewards, as ``ContributionLedger.claim`` verifies it.

Leaves and layout follow OpenZeppelin's ``StandardMerkleTree`` for the leaf type
``(address, uint256)``: a leaf is ``keccak256(keccak256(abi.encode(account, amount)))``
(double hashing keeps a leaf from passing for an inner node), leaves are sorted by hash
and laid out in one array, and pairs are hashed in sorted order, which is what
``MerkleProof.verify`` expects. A tree built here therefore matches one built by
``@openzeppelin/merkle-tree`` for the same values.

Example::

    tree = RewardsTree.build({"0xAbC...": 10**18})
    tree.root, tree.proof("0xAbC...")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

from protocol.errors import HivenetError

UINT256_MAX = 2**256 - 1


class RewardsTreeError(HivenetError, ValueError):
    """The rewards cannot form a tree (no entries, a bad address or amount, an unknown account)."""


def normalize_address(account: str) -> str:
    """``account`` as lower-case ``0x`` hex, after checking it is 20 bytes."""
    text = account.lower()
    if not text.startswith("0x") or len(text) != 42:
        raise RewardsTreeError(f"not a 20-byte hex address: {account!r}")
    try:
        bytes.fromhex(text[2:])
    except ValueError as exc:
        raise RewardsTreeError(f"not a 20-byte hex address: {account!r}") from exc
    return text


def leaf_hash(account: str, cumulative_amount: int) -> bytes:
    """The leaf of ``(account, cumulative_amount)``, as the contract computes it."""
    if not 0 <= cumulative_amount <= UINT256_MAX:
        raise RewardsTreeError(f"amount out of uint256 range: {cumulative_amount}")
    encoded = bytes(12) + bytes.fromhex(normalize_address(account)[2:]) + cumulative_amount.to_bytes(32, "big")
    return keccak(keccak(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative pair hash: the smaller word first."""
    return keccak(a + b) if a < b else keccak(b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` (``MerkleProof.processProof``)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def verify(root: bytes, account: str, cumulative_amount: int, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` places ``(account, cumulative_amount)`` under ``root``."""
    return process_proof(leaf_hash(account, cumulative_amount), proof) == root


@dataclass(frozen=True)
class RewardsTree:
    """An immutable tree over cumulative rewards; build it with :meth:`build`."""

    amounts: Mapping[str, int]
    nodes: tuple[bytes, ...]
    positions: Mapping[str, int]

    @classmethod
    def build(cls, cumulative: Mapping[str, int]) -> RewardsTree:
        """Builds the tree of ``{account: cumulative amount}`` (accounts in any case)."""
        if not cumulative:
            raise RewardsTreeError("a rewards tree needs at least one account")
        amounts: dict[str, int] = {}
        for account, amount in cumulative.items():
            key = normalize_address(account)
            if key in amounts:
                raise RewardsTreeError(f"account listed twice: {account}")
            amounts[key] = int(amount)
        leaves = sorted((leaf_hash(a, v), a) for a, v in amounts.items())
        size = 2 * len(leaves) - 1
        nodes: list[bytes] = [b""] * size
        positions: dict[str, int] = {}
        for i, (leaf, account) in enumerate(leaves):
            nodes[size - 1 - i] = leaf
            positions[account] = size - 1 - i
        for i in range(size - 1 - len(leaves), -1, -1):
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(amounts=amounts, nodes=tuple(nodes), positions=positions)

    @property
    def root(self) -> bytes:
        return self.nodes[0]

    @property
    def total(self) -> int:
        """Sum of all cumulative amounts (what ``postEpoch`` records as the epoch total)."""
        return sum(self.amounts.values())

    def amount(self, account: str) -> int:
        return self.amounts[self._key(account)]

    def proof(self, account: str) -> list[bytes]:
        """Sibling hashes from the leaf of ``account`` up to the root."""
        index = self.positions[self._key(account)]
        proof: list[bytes] = []
        while index > 0:
            sibling = index + 1 if index % 2 == 1 else index - 1
            proof.append(self.nodes[sibling])
            index = (index - 1) // 2
        return proof

    def _key(self, account: str) -> str:
        key = normalize_address(account)
        if key not in self.amounts:
            raise RewardsTreeError(f"account {account} has no rewards in this tree")
        return key
